/// `GET /api/v1/cluster`: the members, who owns which pipeline at which epoch, this node's
/// lease, and the recent changes of ownership — the same on every node, read from etcd.
public struct ClusterView: Codable, Sendable, Equatable {
    public struct Member: Codable, Sendable, Equatable {
        public var name: String
        /// When its process started (ISO 8601, UTC), as it registered.
        public var started: String?
        /// The pipelines it owns.
        public var pipelines: [String]

        public init(name: String, started: String?, pipelines: [String]) {
            self.name = name
            self.started = started
            self.pipelines = pipelines
        }
    }

    public struct Ownership: Codable, Sendable, Equatable {
        public var pipeline: String
        /// Absent while no node owns it (between owners, or paused).
        public var owner: String?
        public var epoch: Int64?
        /// An operator paused it: no node runs it until it is resumed.
        public var paused: Bool

        public init(pipeline: String, owner: String?, epoch: Int64?, paused: Bool) {
            self.pipeline = pipeline
            self.owner = owner
            self.epoch = epoch
            self.paused = paused
        }
    }

    /// The node that answered.
    public var node: String
    public var leaseSeconds: Int
    /// How long this node may still write without renewing its lease; 0 once it is lost.
    public var writableSeconds: Double
    public var members: [Member]
    public var pipelines: [Ownership]
    /// Claims and hand-backs, newest first: who took which pipeline, and from whom.
    public var history: [AuditEntryView]

    public init(node: String, leaseSeconds: Int, writableSeconds: Double, members: [Member], pipelines: [Ownership], history: [AuditEntryView]) {
        self.node = node
        self.leaseSeconds = leaseSeconds
        self.writableSeconds = writableSeconds
        self.members = members
        self.pipelines = pipelines
        self.history = history
    }
}
