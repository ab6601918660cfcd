import ArgumentParser
import FerryApp
import FerryCore
import Logging

#if canImport(Glibc)
import Glibc
#endif

struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Check a source, list its tables (rows, size, key) and write a commented starter configuration.",
        discussion: """
        The file runs as written: one pipeline from the source's databases into the sinks named.
        Tables without a key are flagged in it. Passwords are not written: the file reads them from
        the environment (FERRY_SOURCE_PASSWORD, FERRY_<SINK>_PASSWORD).

        Examples:
          ferry init --source mysql://ferry@127.0.0.1:3306 --database shop
          ferry init --source mysql://ferry@db:3306 --sink postgres://ferry@pg:5432/replica --sink jsonl:./changes -o shop.yml
        """
    )

    @Option(name: .long, help: "Source URL: mysql://USER[:PASSWORD]@HOST:PORT (the password may come from FERRY_SOURCE_PASSWORD).")
    var source: String

    @Option(name: .long, help: "A database to replicate; repeat for several. Default: every database but the server's own.")
    var database: [String] = []

    @Option(name: .long, help: "A sink: sqlite:PATH, jsonl:DIRECTORY, or a postgres://, mysql://, mariadb://, redis:// or nats:// URL; repeat for several. Default: sqlite:./replica.sqlite.")
    var sink: [String] = []

    @Option(name: .long, help: "The data_dir the file sets (state file, disk buffers).")
    var dataDir: String = "./ferry-data"

    @Option(name: [.short, .long], help: "The file to write.")
    var output: String = "ferry.yml"

    @Flag(name: .long, help: "Replace the file if it exists.")
    var force = false

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap()
        try await reportingErrors {
            let ready = try await Init.run(sourceURL: source, password: sourcePassword(), databases: database, sinkSpecs: sink,
                                           dataDirectory: dataDir, output: output, overwrite: force, logger: logger) { print($0) }
            if !ready { throw ExitCode(1) }
        }
    }
}
