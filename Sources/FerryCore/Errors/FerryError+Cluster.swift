extension FerryError {
    /// `cluster.fenced`: a write this node may not make because another node may own the
    /// pipeline now. Fatal for the pipeline on this node: the owner carries on.
    public static func fenced(_ message: String, context: [(key: String, value: String)]) -> FerryError {
        FerryError(code: .clusterFenced, message: message, context: context,
                   fix: "nothing after a failover: the node that owns the pipeline now writes it; if it repeats, look for pauses on this node or its path to etcd, or raise cluster.lease_seconds",
                   disposition: .fatal)
    }

    /// `cluster.fenced` from a target: it holds `stored`, a newer owner's epoch, in `where`
    /// (`the target's ferry_offsets`, a Redis key), so this sink's write at `epoch` is refused.
    public static func fencedByTarget(sink: String, pipeline: String, epoch: Int64, stored: String, where place: String, lane: Int? = nil) -> FerryError {
        .fenced("sink \(sink) refused a write of pipeline \(pipeline) at epoch \(epoch): \(place) holds epoch \(stored), a newer owner's",
                context: [("pipeline", pipeline), ("sink", sink)] + (lane.map { [("lane", String($0))] } ?? []))
    }

    /// `cluster.unavailable`: etcd, where cluster mode keeps its claims and state, failed a
    /// request (`detail` says how); retried.
    public static func clusterUnavailable(_ detail: String, context: [(key: String, value: String)] = []) -> FerryError {
        FerryError(code: .clusterUnavailable, message: detail, context: context,
                   fix: "check that most etcd members run and this node reaches them, and cluster.etcd.user's permissions on the cluster prefix",
                   disposition: .retry)
    }
}
