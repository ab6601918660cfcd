extension ChangeEvent {
    /// The event's id, the same on every replay: `FILE:POS:ROW` (`FILE:POS#STEP:ROW` for a snapshot
    /// chunk delivered between source transactions). Append-only sinks carry it so consumers can
    /// drop duplicates (DESIGN §2.3).
    public func appendStableID(to out: inout [UInt8]) {
        out.append(contentsOf: source.position.coordinates.file.utf8)
        out.append(UInt8(ascii: ":"))
        JSONBuffer.appendUnsigned(source.position.coordinates.offset, to: &out)
        if source.position.snapshotStep > 0 {
            out.append(UInt8(ascii: "#"))
            JSONBuffer.appendUnsigned(UInt64(source.position.snapshotStep), to: &out)
        }
        out.append(UInt8(ascii: ":"))
        JSONBuffer.appendInteger(Int64(source.row), to: &out)
    }

    public var stableID: String {
        var out: [UInt8] = []
        appendStableID(to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
