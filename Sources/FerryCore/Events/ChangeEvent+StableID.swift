extension ChangeEvent {
    /// The event's id, the same on every replay: the position's place and the row, `FILE:POS:ROW` (`FILE:POS#STEP:ROW` for a snapshot
    /// chunk delivered between source transactions). Append-only sinks carry it so consumers can
    /// drop duplicates (DESIGN §2.3).
    public func appendStableID(to out: inout [UInt8]) {
        source.position.appendPlace(to: &out)
        out.append(UInt8(ascii: ":"))
        JSONBuffer.appendInteger(Int64(source.row), to: &out)
    }

    public var stableID: String {
        var out: [UInt8] = []
        appendStableID(to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
