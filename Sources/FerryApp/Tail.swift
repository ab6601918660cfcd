import FerryCore
import Logging
import MySQLSource
import MySQLWire
import PostgresSource

/// `ferry tail`: follow a source and print each change as one JSON line.
public struct TailOptions: Sendable {
    public var sourceURL: String
    /// From `FERRY_SOURCE_PASSWORD` when the URL has none.
    public var password: String?
    public var from: StartPosition
    public var toCurrent: Bool
    public var include: [String]
    public var exclude: [String]
    public var format: EventJSONWriter.Format
    /// Decode every change but print nothing (benchmarks).
    public var countOnly: Bool
    public var includeDDL: Bool
    public var serverID: UInt32
    public var sourceName: String
    public var heartbeatSeconds: Double

    public init(sourceURL: String, password: String?, from: StartPosition, toCurrent: Bool, include: [String], exclude: [String],
                format: EventJSONWriter.Format, countOnly: Bool = false, includeDDL: Bool, serverID: UInt32, sourceName: String,
                heartbeatSeconds: Double = 5) {
        self.sourceURL = sourceURL
        self.password = password
        self.from = from
        self.toCurrent = toCurrent
        self.include = include
        self.exclude = exclude
        self.format = format
        self.countOnly = countOnly
        self.includeDDL = includeDDL
        self.serverID = serverID
        self.sourceName = sourceName
        self.heartbeatSeconds = heartbeatSeconds
    }

    var isPostgres: Bool { PostgresSourceConfiguration.isPostgresURL(sourceURL) }

    /// The changes of the source the URL names, handed to `deliver` a transaction at a time.
    func produce(logger: Logger) throws -> @Sendable (_ deliver: (Transaction) async throws -> Void) async throws -> Void {
        guard isPostgres else {
            let source = MySQLSource(configuration: try sourceConfiguration(), logger: logger)
            return { [from = self.from, toCurrent = self.toCurrent] deliver in _ = try await source.run(from: from, stopAtCurrent: toCurrent, deliver: deliver) }
        }
        let configuration = try PostgresSourceConfiguration(name: sourceName, url: sourceURL, password: password,
                                                            filter: TableFilter(include: include, exclude: exclude))
        // A slot decides where a PostgreSQL stream begins: a temporary one where it is made, a
        // named one (?slot=NAME, read and never moved on) at its confirmed position.
        guard case .current = from else {
            throw FerryError(code: .cliInvalidOption, message: "--from does not apply to a PostgreSQL source: it starts at its slot's confirmed position (?slot=NAME), or at the current position with a temporary slot",
                             fix: "leave out --from")
        }
        if toCurrent, configuration.slot == nil {
            throw FerryError(code: .cliInvalidOption, message: "--to current needs a named slot (?slot=NAME): a temporary slot begins at the current position, with nothing before it",
                             fix: "add ?slot=NAME of an existing logical slot (pgoutput) to the URL, or leave out --to")
        }
        let source = PostgresSource(configuration: configuration, logger: logger)
        return { [includeDDL = self.includeDDL, toCurrent = self.toCurrent] deliver in
            try await source.run(PostgresSource.Follow(stopAtCurrent: toCurrent)) { transaction in
                var shown = transaction
                if !includeDDL { shown.events.removeAll { $0.operation == .ddl } }
                try await deliver(shown)
            }
        }
    }

    func sourceConfiguration() throws -> MySQLSourceConfiguration {
        let connection = try MySQLConnectionConfiguration(url: sourceURL, password: password)
        return MySQLSourceConfiguration(name: sourceName, connection: connection, serverID: serverID,
                                        filter: TableFilter(include: include, exclude: exclude),
                                        heartbeatSeconds: heartbeatSeconds, includeDDL: includeDDL)
    }
}

public enum Tail {
    /// Runs until the stop position (with `toCurrent`), the reader closes the output, or an error.
    /// The source decodes in a task of its own while this one encodes and writes, so the two use
    /// separate cores; at most `handoffEvents` decoded changes wait between them.
    /// - Returns: the number of change lines written.
    @discardableResult
    public static func run(_ options: TailOptions, output: FileDescriptorOutput, logger: Logger, handoffEvents: Int = 4_096,
                           clock: @escaping @Sendable () -> Int64 = WallClock.millisecondsSinceEpoch) async throws -> Int {
        let produce = try options.produce(logger: logger)
        if options.countOnly {
            var lines = 0
            try await produce { lines += $0.events.count }
            return lines
        }
        let writer = EventJSONWriter(format: options.format)
        let handoff = BoundedHandoff<Transaction>(capacity: handoffEvents)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { handoff.finish() }
                try await produce { transaction in
                    guard !transaction.events.isEmpty else { return }
                    // The writer is gone (the reader closed the output): stop reading.
                    guard await handoff.send(transaction, weight: transaction.events.count) else { throw CancellationError() }
                }
            }
            var lines = 0
            do {
                while let transactions = await handoff.take() {
                    let now = clock()
                    for transaction in transactions {
                        // A part at a time, so a 10,000-row transaction's JSON is never all in memory.
                        for start in stride(from: 0, to: transaction.events.count, by: 256) {
                            let part = start..<min(start + 256, transaction.events.count)
                            try output.append { buffer in writer.write(transaction, events: part, processedAtMillis: now, into: &buffer) }
                        }
                        lines += transaction.events.count
                    }
                    try output.flush()
                }
                try output.flush()
            } catch is FileDescriptorOutput.OutputClosed {
                handoff.close()
                group.cancelAll()
                return lines
            }
            try await group.waitForAll()
            return lines
        }
    }
}
