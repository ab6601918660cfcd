import ArgumentParser
import FerryApp
import FerryCore
import Logging
import MySQLSource

struct ReadBinlogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "read-binlog",
        abstract: "Decode MySQL/MariaDB binlog files from disk and print their row changes as JSON lines.",
        discussion: """
        Uses the same decoder as `ferry tail`. Column names come from the files' TABLE_MAP
        metadata (binlog_row_metadata=FULL); without it columns are named col_1, col_2, …

        Examples:
          ferry read-binlog /var/lib/mysql/mariadb-bin.000042
          ferry read-binlog --format compact --include 'shop.*' mariadb-bin.000001 mariadb-bin.000002
          ferry read-binlog --format none --stats mariadb-bin.000007     # decode and count only
        """
    )

    @Argument(help: "Binlog files, in order.")
    var files: [String]

    @Option(name: .long, help: "Output: debezium, compact, or none (decode to typed rows, print nothing).")
    var format: String = "debezium"

    @Option(name: .long, help: "Only tables matching this glob; repeatable.")
    var include: [String] = []

    @Option(name: .long, help: "Skip tables matching this glob; repeatable.")
    var exclude: [String] = []

    @Flag(name: .long, help: "Print files, bytes, events and rows on stderr when done.")
    var stats = false

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        _ = logging.bootstrap()
        try await reportingErrors {
            guard let output = BinlogFileDecoder.Output(rawValue: format) else {
                throw FerryError(code: .cliInvalidOption, message: "--format \(format) is not debezium, compact or none")
            }
            FileDescriptorOutput.ignoreBrokenPipeSignal()
            do {
                let statistics = try BinlogFileDecoder.run(paths: files, output: output, filter: TableFilter(include: include, exclude: exclude),
                                                           writer: FileDescriptorOutput(descriptor: 1))
                if stats {
                    FileHandleStandardError.write("files=\(statistics.files) bytes=\(statistics.bytes) events=\(statistics.events) rows=\(statistics.rows)\n")
                }
            } catch is FileDescriptorOutput.OutputClosed {
                return
            }
        }
    }
}
