import NIOCore

/// ROTATE_EVENT (type 4): the log continues in `nextFile` at `position`.
///
/// position u64 (post-header) · next file name (rest of the body)
public struct RotateEvent: Sendable, Equatable {
    public var position: UInt64
    public var nextFile: String

    public init(position: UInt64, nextFile: String) {
        self.position = position
        self.nextFile = nextFile
    }

    static func decode(from body: inout ByteBuffer) throws -> RotateEvent {
        let position: UInt64 = try body.readLE()
        let name = body.readRemainingText()
        guard !name.isEmpty else { throw BinlogDecodingError(.invalid("ROTATE event without a file name")) }
        return RotateEvent(position: position, nextFile: name)
    }
}
