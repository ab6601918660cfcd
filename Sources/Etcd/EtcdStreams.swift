import Foundation
import NIOCore

/// Which endpoint requests go to: the one that last answered, and on its failure the next in
/// the list, round and round.
struct EndpointRing: Sendable, Equatable {
    let count: Int
    private(set) var preferred = 0

    init(count: Int) { self.count = max(count, 1) }

    /// Endpoint `index` failed: move on unless another caller already has.
    mutating func failed(_ index: Int) {
        if index == preferred { preferred = (preferred + 1) % count }
    }
}

/// Splits a streamed answer into its newline-separated JSON messages.
struct LineSplitter {
    private var pending: [UInt8] = []
    /// A message longer than this means the stream is not the gateway's.
    static let maximumLine = 64 << 20

    /// The complete lines `part` finishes, without their newlines; empty lines are skipped.
    mutating func append(_ part: ByteBuffer) throws -> [Data] {
        pending.append(contentsOf: part.readableBytesView)
        var lines: [Data] = []
        var start = 0
        while let end = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
            if end > start { lines.append(Data(pending[start..<end])) }
            start = end + 1
        }
        pending.removeFirst(start)
        if pending.count > Self.maximumLine { throw LineTooLong(length: pending.count) }
        return lines
    }

    struct LineTooLong: Error, CustomStringConvertible {
        var length: Int
        var description: String { "a streamed message of more than \(length) bytes" }
    }
}

/// Where a watch stands: the first revision it has not delivered. A watch reconnected after a
/// failure starts there, so nothing is missed and nothing repeated.
struct WatchCursor: Sendable, Equatable {
    /// 0 until the server says which revision "now" is.
    private(set) var nextRevision: Int64

    init(nextRevision: Int64) { self.nextRevision = nextRevision }

    /// Takes one watch answer; returns its events (none for a creation or progress notice).
    mutating func accept(_ result: WireWatchMessage.Result, endpoint: String) throws -> [EtcdWatchEvent] {
        if let compacted = result.compact_revision?.value, compacted > 0 {
            throw EtcdError.compacted(requested: nextRevision, compactRevision: compacted)
        }
        if result.canceled == true {
            throw EtcdError.watchCanceled(endpoint: endpoint, reason: result.cancel_reason ?? "no reason given")
        }
        let headerRevision = result.header?.revision?.value ?? 0
        let events = (result.events ?? []).map { event in
            EtcdWatchEvent(kind: event.type == "DELETE" ? .delete : .put, keyValue: event.kv.keyValue)
        }
        if let last = events.last {
            nextRevision = max(nextRevision, last.keyValue.modRevision + 1)
        } else if result.created == true {
            // Created from "now": the server's revision is the last one not to be sent.
            if nextRevision == 0 { nextRevision = headerRevision + 1 }
        } else if headerRevision > 0 {
            // A progress notice: every change up to the header's revision has been sent.
            nextRevision = max(nextRevision, headerRevision + 1)
        }
        return events
    }
}
