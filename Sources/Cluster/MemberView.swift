import Etcd

/// The members one node sees, and since when (on its own clock), kept from a `members/` read
/// and the watch after it; `ages` feeds `PipelineAssignment`.
public struct MemberView: Sendable, Equatable {
    public let membersPrefix: String
    private(set) var firstSeen: [String: ContinuousClock.Instant] = [:]

    public init(membersPrefix: String) { self.membersPrefix = membersPrefix }

    public var names: [String] { firstSeen.keys.sorted() }

    /// The members read at once (a range of `members/`): new ones are seen from `now`, gone ones dropped.
    public mutating func reset(to names: some Sequence<String>, at now: ContinuousClock.Instant) {
        let current = Set(names)
        firstSeen = firstSeen.filter { current.contains($0.key) }
        for name in current where firstSeen[name] == nil { firstSeen[name] = now }
    }

    /// Applies a watch batch on `members/`. A member that leaves and comes back starts its
    /// cool-down again.
    public mutating func apply(_ events: [EtcdWatchEvent], at now: ContinuousClock.Instant) {
        for event in events {
            let key = event.keyValue.keyText
            guard key.hasPrefix(membersPrefix) else { continue }
            let name = String(key.dropFirst(membersPrefix.count))
            switch event.kind {
            case .put: if firstSeen[name] == nil { firstSeen[name] = now }
            case .delete: firstSeen[name] = nil
            }
        }
    }

    public func ages(at now: ContinuousClock.Instant) -> [String: Duration] {
        firstSeen.mapValues { now - $0 }
    }
}
