/// Until when a node may write under its lease, on its own monotonic clock.
///
/// etcd starts a lease's time to live when it handles the grant or keep-alive, which is after
/// this node sent it; counting from the moment of sending therefore ends no later than the
/// server's count. The margin covers clock-rate drift between the machines and the time a write
/// already begun takes to land, so a node that cannot renew stops before anyone else can claim
/// what it holds.
public struct LeaseDeadline: Sendable, Equatable {
    public let margin: Duration
    public private(set) var writableUntil: ContinuousClock.Instant?

    public init(margin: Duration) { self.margin = margin }

    /// A grant or keep-alive sent at `sentAt` was answered with `ttlSeconds` to live.
    public mutating func renewed(sentAt: ContinuousClock.Instant, ttlSeconds: Int64) {
        let until = sentAt + .seconds(ttlSeconds) - margin
        writableUntil = max(writableUntil ?? until, until)
    }

    /// The lease is gone (revoked, expired, or its keep-alive said so): no more writes.
    public mutating func lost() { writableUntil = nil }

    public func isWritable(at now: ContinuousClock.Instant) -> Bool {
        guard let writableUntil else { return false }
        return now < writableUntil
    }
}
