import FerryCore

/// The position every sink has applied: the lowest of the sinks' applied positions
/// (invariant 1). Pure; the runner persists what it returns.
public struct LowWatermark: Sendable {
    private var applied: [String: SourcePosition?]

    public init(sinks: [String], applied initial: [String: SourcePosition] = [:]) {
        applied = Dictionary(uniqueKeysWithValues: sinks.map { ($0, initial[$0]) })
    }

    /// Records a sink's progress; positions only move forward.
    public mutating func sinkApplied(_ sink: String, _ position: SourcePosition) {
        if let current = applied[sink] ?? nil, position <= current { return }
        applied[sink] = position
    }

    /// The safe resume position, or `nil` while some sink has applied nothing.
    public var safePosition: SourcePosition? {
        var lowest: SourcePosition? = nil
        for position in applied.values {
            guard let position else { return nil }
            if lowest == nil || position < lowest! { lowest = position }
        }
        return lowest
    }

    public func applied(_ sink: String) -> SourcePosition? { applied[sink] ?? nil }
}
