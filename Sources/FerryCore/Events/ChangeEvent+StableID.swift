extension ChangeEvent {
    /// The event's id, the same on every replay and different for every event: the position's
    /// place and the row, `FILE:POS:ROW` (`FILE:POS#STEP:ROW` for a snapshot chunk delivered
    /// between source transactions), and `.PART` for the parts a rule split a change into.
    /// Append-only sinks carry it so consumers can drop duplicates.
    public func appendStableID(to out: inout [UInt8]) {
        source.appendStableID(to: &out)
    }

    public var stableID: String {
        var out: [UInt8] = []
        appendStableID(to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

extension ChangeEvent {
    /// An update that moves its row (to another target, or to another key's subject) as a delete
    /// where it was and a create where it is now: parts 1 and 2 of the change, so each has an id
    /// of its own.
    public var splitIntoRemovalAndArrival: (removal: ChangeEvent, arrival: ChangeEvent) {
        var removal = self
        removal.operation = .delete
        removal.after = nil
        removal.source.part = 1
        var arrival = self
        arrival.operation = .create
        arrival.before = nil
        arrival.source.part = 2
        return (removal, arrival)
    }
}

extension ChangeSource {
    /// The id of the change this describes (`ChangeEvent.appendStableID`).
    public func appendStableID(to out: inout [UInt8]) {
        position.appendPlace(to: &out)
        out.append(UInt8(ascii: ":"))
        JSONBuffer.appendInteger(Int64(row), to: &out)
        if part > 0 {
            out.append(UInt8(ascii: "."))
            JSONBuffer.appendUnsigned(UInt64(part), to: &out)
        }
    }
}
