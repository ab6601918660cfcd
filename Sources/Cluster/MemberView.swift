/// The members one node sees, and since when (on its own clock), kept from its reads of
/// `members/` every round; `ages` feeds `PipelineAssignment`. A member missing from one read and
/// back in a later one starts its cool-down again.
public struct MemberView: Sendable, Equatable {
    private(set) var firstSeen: [String: ContinuousClock.Instant] = [:]

    public init() {}

    public var names: [String] { firstSeen.keys.sorted() }

    /// The members read at once (a range of `members/`): new ones are seen from `now`, gone ones dropped.
    public mutating func reset(to names: some Sequence<String>, at now: ContinuousClock.Instant) {
        let current = Set(names)
        firstSeen = firstSeen.filter { current.contains($0.key) }
        for name in current where firstSeen[name] == nil { firstSeen[name] = now }
    }

    public func ages(at now: ContinuousClock.Instant) -> [String: Duration] {
        firstSeen.mapValues { now - $0 }
    }
}
