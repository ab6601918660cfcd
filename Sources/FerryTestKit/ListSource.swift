import FerryCore
import Foundation

/// A source that replays a fixed list of transactions after the resume position, then waits to
/// be cancelled like a live source. More transactions can be added while it runs.
public final class ListSource: TransactionSource, @unchecked Sendable {
    private let lock = NSLock()
    private var transactions: [Transaction]
    private var resumes: [SourcePosition?] = []
    /// Advanced as transactions are delivered, like a real source's stream.
    public let logEnd: SourceLogEnd? = SourceLogEnd()

    public init(_ transactions: [Transaction]) {
        self.transactions = transactions
    }

    /// The positions each run resumed after, in order.
    public var resumedAfter: [SourcePosition?] {
        lock.withLock { resumes }
    }

    public func add(_ more: [Transaction]) {
        lock.withLock { transactions += more }
    }

    public func run(after position: SourcePosition?, deliver: @Sendable (Transaction) async throws -> Void) async throws {
        lock.withLock { resumes.append(position) }
        var next = 0
        while true {
            try Task.checkCancellation()
            let pending = lock.withLock {
                defer { next = transactions.count }
                return Array(transactions[next...])
            }
            for transaction in pending where position.map({ transaction.position > $0 }) ?? true {
                logEnd?.reached(transaction.position)
                try await deliver(transaction)
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
