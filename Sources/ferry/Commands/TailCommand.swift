import ArgumentParser
import FerryApp
import FerryCore
import Logging
import MySQLSource

#if canImport(Glibc)
import Glibc
#endif

struct TailCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tail",
        abstract: "Print every committed row change of a MySQL/MariaDB or PostgreSQL source as one JSON line.",
        discussion: """
        Registers as a replica and follows the binlog. Positions printed in each line
        (source.file/source.pos, or source.gtid_pos) can be given to --from to resume
        exactly after that transaction. The password may come from FERRY_SOURCE_PASSWORD.

        Examples:
          ferry tail --source mysql://ferry@127.0.0.1:3306
          ferry tail --source mysql://ferry@db:3306 --from earliest --to current --include 'shop.*'
          ferry tail --source mysql://ferry@db:3306 --from mariadb-bin.000003:1234 --format compact
          ferry tail --source mysql://ferry@db:3306 --from 0-1-1500 --ddl
          ferry tail --source 'mysql://ferry@db:3306?tls=verify-full&ssl-ca=/etc/ssl/ca.pem'

        A PostgreSQL source is followed through a temporary logical replication slot
        (pgoutput) from the current position, for the tables of a publication:
          ferry tail --source 'postgres://ferry@db:5432/shop?publication=ferry'
        """
    )

    @Option(name: .long, help: "Source URL: mysql://USER[:PASSWORD]@HOST:PORT[?tls=disable|prefer|require|verify-ca|verify-full&ssl-ca=FILE], or postgres://USER[:PASSWORD]@HOST:PORT/DATABASE?publication=NAME[&sslmode=…].")
    var source: String

    @Option(name: .long, help: "Where to start: earliest, current, FILE:OFFSET, or a GTID position. Resumes after it.")
    var from: String = "current"

    @Option(name: .long, help: "Stop after this position; only 'current' (the server's end of log at start) is supported.")
    var to: String?

    @Option(name: .long, help: "Only tables matching this glob (db.table, * and ?); repeatable.")
    var include: [String] = []

    @Option(name: .long, help: "Skip tables matching this glob; repeatable.")
    var exclude: [String] = []

    @Option(name: .long, help: "Output format: debezium, debezium-schema (with Kafka Connect's schema block), compact, or none (decode and count only, for benchmarks).")
    var format: String = "debezium"

    @Flag(name: .long, help: "Also print DDL statements as {\"op\":\"ddl\",…} lines.")
    var ddl = false

    @Option(name: .long, help: "Replica server_id to register with (default: derived from the process id).")
    var serverID: UInt32?

    @Option(name: .long, help: "Name put in source.name.")
    var name: String = "ferry"

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap()
        try await reportingErrors {
            let countOnly = format == "none"
            guard let writerFormat = countOnly ? EventJSONWriter.Format.compact : EventJSONWriter.Format(rawValue: format) else {
                throw FerryError(code: .cliInvalidOption, message: "--format \(format) is not debezium, debezium-schema, compact or none")
            }
            if let to, to.lowercased() != "current" {
                throw FerryError(code: .cliInvalidOption, message: "--to \(to) is not supported", fix: "use --to current")
            }
            let start = try StartPosition(parsing: from)
            FileDescriptorOutput.ignoreBrokenPipeSignal()
            let options = TailOptions(sourceURL: source, password: sourcePassword(), from: start, toCurrent: to != nil,
                                      include: include, exclude: exclude, format: writerFormat, countOnly: countOnly, includeDDL: ddl,
                                      serverID: serverID ?? UInt32(1_000_000 + getpid() % 1_000_000), sourceName: name)
            try await Tail.run(options, output: FileDescriptorOutput(descriptor: 1), logger: logger)
        }
    }
}
