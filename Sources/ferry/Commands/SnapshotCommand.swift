import ArgumentParser
import FerryApp
import FerryCore
import Logging

#if canImport(Glibc)
import Glibc
#endif

struct SnapshotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Snapshot tables of a running pipeline while it streams, and show the progress.",
        discussion: """
        The request is kept in the state store; the running pipeline (`ferry run`) starts it within a
        second, reading the tables in key-range chunks without locks while changes keep flowing.
        With no TABLE, every table the pipeline replicates is read again. Progress is shown until
        the tables are done: live bars on a terminal, a line per table every 5 s otherwise.

        Examples:
          ferry snapshot -c ferry.yml shop-to-replica shop.orders shop.customers
          ferry snapshot -c ferry.yml shop-to-replica --no-wait
          ferry snapshot -c ferry.yml shop-to-replica --watch     # the initial snapshot of `ferry run`
        """
    )

    @OptionGroup var configFile: ConfigurationFileOption

    @Argument(help: "Pipeline name.")
    var pipeline: String

    @Argument(help: "Tables as DATABASE.TABLE; none means all the pipeline replicates.")
    var tables: [String] = []

    @Flag(name: .long, help: "Return after recording the request instead of following the progress.")
    var noWait = false

    @Flag(name: .long, help: "Request nothing; follow the snapshots already running (e.g. the initial one of `ferry run`).")
    var watch = false

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap()
        try await reportingErrors {
            let configuration = try configFile.load()
            if watch {
                try await Snapshots.follow(configuration: configuration, pipeline: pipeline, tables: [], terminal: isatty(STDOUT_FILENO) == 1, logger: logger)
                return
            }
            let requested = try await Snapshots.request(configuration: configuration, pipeline: pipeline, tables: tables, logger: logger)
            print("snapshot of \(requested.count) table(s) requested for pipeline \(pipeline); `ferry run` starts it within a second")
            guard !noWait else { return }
            try await Snapshots.follow(configuration: configuration, pipeline: pipeline, tables: Set(requested),
                                       terminal: isatty(STDOUT_FILENO) == 1, logger: logger)
        }
    }
}
