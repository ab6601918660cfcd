#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's limit on open file descriptors. systemd and most shells start a process with a
/// soft limit of 1,024 under a far higher hard one; ferry raises the soft limit to the hard one at
/// start, and gives the web port only what leaves a reserve for the source, the sinks, the state
/// store and the disk buffer — so no number of web clients can starve replication of descriptors.
struct DescriptorLimit: Equatable {
    /// The soft limit before and after raising it.
    var before: Int
    var now: Int

    /// Raises the soft limit to the hard limit (capped at 1,048,576) where it is lower.
    static func raise() -> DescriptorLimit {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return DescriptorLimit(before: 1024, now: 1024) }
        let before = Int(clamping: limit.rlim_cur)
        let wanted = min(limit.rlim_max, 1 << 20)
        guard limit.rlim_cur < wanted else { return DescriptorLimit(before: before, now: before) }
        var raised = limit
        raised.rlim_cur = wanted
        guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 else { return DescriptorLimit(before: before, now: before) }
        return DescriptorLimit(before: before, now: Int(clamping: wanted))
    }

    /// Descriptors kept from the web port: a quarter of the limit, and at least 256.
    var reserve: Int { max(256, now / 4) }

    /// The web connection cap: the configured one, lowered to what the reserve leaves (at least 8).
    func webConnections(configured: Int) -> Int {
        min(configured, max(8, now - reserve))
    }
}
