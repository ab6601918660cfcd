/// The members one node sees, and since when (on its own clock), kept from its reads of
/// `members/` every round; `ages` feeds `PipelineAssignment`. A member is known by its name and
/// its registration (the key's create revision): one that restarted — missing from a read, or
/// back under a new registration between two reads — starts its cool-down again, as it does on
/// every other node, so no node plans pipelines for a member that does not yet take them.
public struct MemberView: Sendable {
    private(set) var firstSeen: [String: (registered: Int64, at: ContinuousClock.Instant)] = [:]

    public init() {}

    public var names: [String] { firstSeen.keys.sorted() }

    /// The members read at once (name → registration): new ones are seen from `now`, gone ones
    /// dropped.
    public mutating func reset(to members: [String: Int64], at now: ContinuousClock.Instant) {
        firstSeen = firstSeen.filter { members[$0.key] == $0.value.registered }
        for (name, registered) in members where firstSeen[name] == nil { firstSeen[name] = (registered, now) }
    }

    public func ages(at now: ContinuousClock.Instant) -> [String: Duration] {
        firstSeen.mapValues { now - $0.at }
    }
}
