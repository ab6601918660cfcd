import FerryCore
import Foundation

/// A table sink in memory: rows by key per table, the applied position kept with the data (like
/// `ferry_offsets`), and a rule that rejects some rows for good — to test the engine without a
/// database.
public actor MemoryTableSink: DeadLetterSink, StatelessSink {
    public nonisolated let name: String
    /// Rows rejected for good: the sink throws a permanent error for any change whose new row
    /// makes this return a reason.
    private let rejects: @Sendable (ChangeEvent) -> String?
    public private(set) var tables: [String: [[Value]: Row]] = [:]
    public private(set) var position: SourcePosition?
    public private(set) var batches = 0
    public private(set) var letters: [DeadLetter] = []
    /// Transient failures to raise before applying anything.
    public var transientFailures = 0

    /// - Parameter position: what the target already says it applied.
    public init(name: String, position: SourcePosition? = nil, rejects: @escaping @Sendable (ChangeEvent) -> String? = { _ in nil }) {
        self.name = name
        self.position = position
        self.rejects = rejects
    }

    /// Times `open` fails as if the target were unreachable.
    public var openFailures = 0

    public func failNext(_ count: Int) { transientFailures = count }

    public func failOpen(_ count: Int) { openFailures = count }

    public func open() async throws -> SourcePosition? {
        if openFailures > 0 {
            openFailures -= 1
            throw MemorySinkError(message: "connection refused", isTransient: true)
        }
        return position
    }

    public func close() async throws {}

    public func apply(_ transactions: [Transaction]) async throws {
        if transientFailures > 0 {
            transientFailures -= 1
            throw MemorySinkError(message: "target busy", isTransient: true)
        }
        var staged = tables
        for transaction in transactions {
            for event in transaction.events {
                if let reason = rejects(event) { throw MemorySinkError(message: reason, isTransient: false) }
                guard let schema = event.schema else { continue }
                let table = schema.name.description
                func key(_ row: Row) -> [Value] { schema.primaryKey.map { row[$0] } }
                if let before = event.before { staged[table, default: [:]][key(before)] = nil }
                if let after = event.after { staged[table, default: [:]][key(after)] = after }
            }
        }
        tables = staged
        position = transactions.last?.position ?? position
        batches += 1
    }

    public func deadLetter(_ letters: [DeadLetter]) async throws {
        self.letters += letters
    }

    /// The rows of a table, sorted by their first column's text.
    public func rows(_ table: String) -> [Row] {
        (tables[table] ?? [:]).values.sorted { "\($0.first!)" < "\($1.first!)" }
    }
}

public struct MemorySinkError: ClassifiedError, CustomStringConvertible {
    public var message: String
    public var isTransient: Bool
    public var description: String { message }

    public init(message: String, isTransient: Bool) {
        self.message = message
        self.isTransient = isTransient
    }
}
