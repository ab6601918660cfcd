import FerryCore
import Logging
import MySQLWire
import NIOCore

/// How long the source keeps the oldest binlog file a pipeline still needs.
///
/// A server purges a binlog file once its last write (its modification time) is older than the
/// expiry setting; the current file is never purged. A file's last write is when the server
/// rotated to the next file, and the next file's first real event (its format description) is
/// stamped with that moment — so the time left is `rotation + expiry − now`, read over the
/// replication protocol without access to the server's disk. After a server restart the next
/// file starts at the restart, later than the old file's last write, so the figure is too high by
/// the downtime for that one file.
public enum BinlogRetention {
    /// What the source says about one pipeline's oldest needed file.
    public struct Report: Sendable, Equatable {
        /// The file the pipeline resumes from after a restart (its safe position's file).
        public var neededFile: String
        /// The server's expiry setting, in seconds.
        public var expireSeconds: Double
        /// Seconds until the server may purge `neededFile`; 0 when it may do so already (it does
        /// at its next rotation or `FLUSH BINARY LOGS`).
        public var secondsLeft: Double

        /// Below this the run logs a warning and `ferry status` flags it: half the expiry, at
        /// most six hours — time to catch up, or to raise the expiry, before changes are lost.
        public var warningSeconds: Double { min(6 * 3600, expireSeconds / 2) }

        public var isLow: Bool { secondsLeft < warningSeconds }

        /// `mariadb-bin.000012 may be purged in 5 h 12 min (expiry 7 d)`.
        public var summary: String {
            let when = secondsLeft > 0 ? "in \(DurationText.span(secondsLeft))" : "now (at the server's next rotation)"
            return "\(neededFile) may be purged \(when) (expiry \(DurationText.span(expireSeconds)))"
        }

        /// What to do while the figure is low.
        public static let fix = "let the pipeline catch up (resume it, or fix what holds its sinks), or keep binlogs longer: SET GLOBAL binlog_expire_logs_seconds = …; and the same under [mysqld]"
    }

    /// The server's expiry in seconds from its variables; 0 when binlogs never expire.
    /// `binlog_expire_logs_seconds` (MySQL 8, MariaDB 10.6+) wins; else `expire_logs_days`
    /// (a fraction of a day is allowed on MariaDB).
    public static func expireSeconds(_ variables: [String: String]) -> Double {
        if let seconds = variables["binlog_expire_logs_seconds"].flatMap(Double.init), seconds > 0 { return seconds }
        if let days = variables["expire_logs_days"].flatMap(Double.init), days > 0 { return days * 86400 }
        return 0
    }

    /// The file after `file` among the server's files, if `file` is one and not the last (the
    /// current file, which is never purged).
    public static func fileAfter(_ file: String, in serverFiles: [String]) -> String? {
        guard let index = serverFiles.firstIndex(of: file), index + 1 < serverFiles.count else { return nil }
        return serverFiles[index + 1]
    }

    /// The report for a pipeline that needs `neededFile`, given when the server rotated away from
    /// it (seconds since the epoch); `nil` when nothing will be purged (no expiry) or the needed
    /// file is the current one.
    public static func report(neededFile: String, serverFiles: [String], expireSeconds: Double, rotatedAt: Double?, now: Double) -> Report? {
        guard expireSeconds > 0, fileAfter(neededFile, in: serverFiles) != nil, let rotatedAt else { return nil }
        return Report(neededFile: neededFile, expireSeconds: expireSeconds, secondsLeft: max(0, rotatedAt + expireSeconds - now))
    }

    /// The expiry variables as the server reports them.
    public static func expiryVariables(_ connection: MySQLConnection) async throws -> [String: String] {
        let result = try await connection.query("SHOW GLOBAL VARIABLES WHERE Variable_name IN ('binlog_expire_logs_seconds', 'expire_logs_days')")
        var values: [String: String] = [:]
        for row in result.rows {
            if let name = row[0], let value = row[1] { values[name.lowercased()] = value }
        }
        return values
    }

    /// When `file` was started (seconds since the epoch): the timestamp of its format description
    /// event, read with a short non-blocking binlog dump that registers no replica.
    public static func startTime(of file: String, connection configuration: MySQLConnectionConfiguration, logger: Logger) async throws -> Double {
        try await MySQLConnection.withConnection(configuration, logger: logger) { binlog in
            try await binlog.execute("SET @master_binlog_checksum = @@global.binlog_checksum")
            try await binlog.startBinlogDump(.binlogDump(position: 4, flags: Command.nonBlockingFlag, serverID: 0, file: file))
            // The dump starts with an artificial rotate (timestamp 0), then the format description.
            for _ in 0..<4 {
                guard case .event(let bytes) = try await binlog.nextBinlogPacket() else { break }
                if let time = formatDescriptionTime(bytes) { return time }
            }
            throw FerryError(code: .sourceMySQLProtocol, message: "binlog file \(file) did not start with a format description event",
                             context: [("file", file)])
        }
    }

    /// The header timestamp of a format description event (type 15); `nil` for any other event.
    static func formatDescriptionTime(_ event: ByteBuffer) -> Double? {
        guard event.readableBytes >= 19,
              event.getInteger(at: event.readerIndex + 4, as: UInt8.self) == 15,
              let timestamp = event.getInteger(at: event.readerIndex, endianness: .little, as: UInt32.self), timestamp > 0 else { return nil }
        return Double(timestamp)
    }
}
