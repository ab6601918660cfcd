import FerryCore
import Logging
import Metrics
import MySQLBinlog
import Synchronization

/// Reports text the source stored ill-formed (a utf8mb4 column holding bytes such as `ED A0 BD`,
/// written under a lax `sql_mode`): MariaDB, SQLite and ClickHouse targets get the exact bytes, but
/// JSON and PostgreSQL get U+FFFD for them, so every such value is counted (`ferry_source_text_repaired_total`) and each column is logged once, with its
/// table and the position where it was first met.
final class TextRepairReporter: Sendable {
    private let source: String
    private let logger: Logger
    private let reported = Mutex<Set<String>>([])

    init(source: String, logger: Logger) {
        self.source = source
        self.logger = logger
    }

    /// Takes what `decoder` recorded since the last call and reports it at `position`.
    func report(_ decoder: TableDecoder, position: @autoclosure () -> String) {
        let repairs = decoder.textRepairs.take()
        guard !repairs.isEmpty else { return }
        let schema = decoder.schema
        for (index, count) in repairs {
            let column = schema.columnName(index)
            Counter(label: "ferry_source_text_repaired_total", dimensions: [("source", source), ("table", "\(schema.name)"), ("column", column)])
                .increment(by: count)
            let first = reported.withLock { $0.insert("\(schema.name)\u{0}\(column)").inserted }
            guard first else { continue }
            logger.warning("text is not well-formed UTF-8: MariaDB, SQLite and ClickHouse targets get its exact bytes, JSON and PostgreSQL get U+FFFD for each ill-formed sequence (logged once per column; ferry_source_text_repaired_total counts every value)", metadata: [
                LoggingKeys.source: "\(source)", LoggingKeys.table: "\(schema.name)", "ferry.column": "\(column)",
                LoggingKeys.position: "\(position())",
                "ferry.fix": "correct the stored bytes on the source, or make the column VARBINARY or BLOB if it holds bytes rather than text",
            ])
        }
    }
}
