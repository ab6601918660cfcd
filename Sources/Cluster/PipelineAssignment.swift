/// Which node should own which pipeline: a pure function of the pipelines, the live members and
/// how long each member has been seen, so every node computes it alone and all agree once they
/// see the same members.
///
/// Rendezvous hashing ranks the members for each pipeline by a hash of the pair; each pipeline
/// goes to its best-ranked member that still has room, with room for ⌈P/N⌉ pipelines on only
/// P mod N members and ⌊P/N⌋ on the rest, so loads differ by at most one. Removing a member
/// moves its pipelines and, to keep loads even, only a few others.
///
/// A member seen for less than `coolDown` gets nothing unless no member is older (a cluster
/// starting up): a node that flaps in and out does not pull pipelines back and forth. The answer
/// is advice: who owns a pipeline is decided by the claim in etcd, which only one node can hold.
public enum PipelineAssignment {
    /// - Parameters:
    ///   - pipelines: every pipeline of the configuration.
    ///   - members: each live member's name and how long this node has seen it.
    /// - Returns: owner by pipeline; empty when there are no members.
    public static func assign(pipelines: [String], members: [String: Duration], coolDown: Duration) -> [String: String] {
        let settled = members.filter { $0.value >= coolDown }.map(\.key)
        let eligible = (settled.isEmpty ? Array(members.keys) : settled).sorted()
        guard !eligible.isEmpty else { return [:] }
        let floor = pipelines.count / eligible.count
        var roomForOneMore = pipelines.count % eligible.count
        var load = Dictionary(uniqueKeysWithValues: eligible.map { ($0, 0) })
        var owners: [String: String] = [:]
        // Pipelines in name order, so every node fills the members the same way.
        for pipeline in Set(pipelines).sorted() {
            let ranked = eligible.sorted { score(pipeline, $0) > score(pipeline, $1) || (score(pipeline, $0) == score(pipeline, $1) && $0 < $1) }
            for member in ranked {
                let held = load[member]!
                if held < floor {
                    load[member] = held + 1
                    owners[pipeline] = member
                    break
                }
                if held == floor, roomForOneMore > 0 {
                    roomForOneMore -= 1
                    load[member] = held + 1
                    owners[pipeline] = member
                    break
                }
            }
        }
        return owners
    }

    /// The rendezvous weight of a (pipeline, member) pair: FNV-1a over both names, then a
    /// 64-bit finaliser so near names spread. Fixed, unlike Swift's per-process `Hasher`, so
    /// every node and every release computes the same.
    static func score(_ pipeline: String, _ member: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in pipeline.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        hash = (hash ^ 0) &* 0x0000_0100_0000_01B3
        for byte in member.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        hash ^= hash >> 33
        hash &*= 0xff51_afd7_ed55_8ccd
        hash ^= hash >> 33
        hash &*= 0xc4ce_b9fe_1a85_ec53
        hash ^= hash >> 33
        return hash
    }
}
