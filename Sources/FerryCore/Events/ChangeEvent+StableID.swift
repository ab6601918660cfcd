extension ChangeEvent {
    /// The event's id, the same on every replay and different for every event: the position's
    /// place and the row, `FILE:POS:ROW` (`FILE:POS#STEP:ROW` for a snapshot chunk delivered
    /// between source transactions), and `.PART` for the parts a rule split a change into.
    /// Append-only sinks carry it so consumers can drop duplicates.
    public func appendStableID(to out: inout [UInt8]) {
        source.position.appendPlace(to: &out)
        out.append(UInt8(ascii: ":"))
        JSONBuffer.appendInteger(Int64(source.row), to: &out)
        if source.part > 0 {
            out.append(UInt8(ascii: "."))
            JSONBuffer.appendUnsigned(UInt64(source.part), to: &out)
        }
    }

    public var stableID: String {
        var out: [UInt8] = []
        appendStableID(to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
