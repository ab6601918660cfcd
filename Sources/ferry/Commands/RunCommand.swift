import ArgumentParser
import FerryApp
import FerryCore
import Logging
import MySQLSource

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run every pipeline of a configuration file until SIGTERM or SIGINT (then drain, commit and exit 0).",
        discussion: """
        Each pipeline resumes after the lowest position its sinks have applied (SQL sinks keep it
        in their own ferry_offsets table), so a crash or kill at any moment loses and doubles nothing.

        Examples:
          ferry run -c ferry.yml
          SHOP_PASSWORD=secret ferry run -c /etc/ferry/ferry.yml --log-level info
          ferry run -c ferry.yml --from mariadb-bin.000042:4    # start position for pipelines without one
        """
    )

    @OptionGroup var configFile: ConfigurationFileOption

    @Option(name: .long, help: "Start position for pipelines that have no saved position (overrides `start:`).")
    var from: String?

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap(defaultLevel: .notice)
        try await reportingErrors {
            var configuration = try configFile.load()
            if let from {
                let start = try StartPosition(parsing: from)
                for index in configuration.pipelines.indices { configuration.pipelines[index].start = start }
            }
            try await Run.run(configuration: configuration, logger: logger)
        }
    }
}
