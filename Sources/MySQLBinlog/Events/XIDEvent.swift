import NIOCore

/// XID_EVENT (type 16): commit of a transactional (InnoDB) transaction. xid u64.
public struct XIDEvent: Sendable, Equatable {
    public var xid: UInt64

    public init(xid: UInt64) { self.xid = xid }

    static func decode(from body: inout ByteBuffer) throws -> XIDEvent {
        XIDEvent(xid: try body.readLE())
    }
}
