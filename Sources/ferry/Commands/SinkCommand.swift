import ArgumentParser
import FerryApp
import FerryCore
import Logging

struct SinkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sink",
        abstract: "Operate on one sink of a pipeline.",
        subcommands: [SinkRewindCommand.self]
    )
}

struct SinkRewindCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rewind",
        abstract: "Replay a sink from an earlier position (from the disk buffer while it reaches back).",
        discussion: """
        The request is kept in the state store and honoured when the pipeline next starts; other
        sinks of the pipeline are not affected. Replay is harmless: table sinks upsert, file sinks
        carry stable event ids.

        Examples:
          ferry sink rewind -c ferry.yml shop-to-replica replica mariadb-bin.000042:4
        """
    )

    @OptionGroup var configFile: ConfigurationFileOption

    @Argument(help: "Pipeline name.")
    var pipeline: String

    @Argument(help: "Sink name.")
    var sink: String

    @Argument(help: "Position FILE:OFFSET; every change after it is applied again.")
    var position: String

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap()
        try await reportingErrors {
            print(try await SinkRewind.request(configuration: try configFile.load(), pipeline: pipeline, sink: sink,
                                               position: position, logger: logger))
        }
    }
}
