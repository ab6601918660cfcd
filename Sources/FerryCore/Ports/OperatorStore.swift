/// One entry of the audit log: who did what to which pipeline (`*`: to none in particular).
public struct AuditRecord: Codable, Sendable, Equatable {
    public var at: String
    public var pipeline: String
    public var action: String
    public var detail: String
    /// The token's name for calls through the API; `ferry` for the engine itself, `cli` for commands.
    public var actor: String

    public init(at: String, pipeline: String, action: String, detail: String, actor: String) {
        self.at = at
        self.pipeline = pipeline
        self.action = action
        self.detail = detail
        self.actor = actor
    }
}

/// An API token as stored: its name and role, never the token (only its SHA-256 is kept).
public struct TokenRecord: Sendable, Equatable {
    public var name: String
    public var role: String
    public var createdAt: String

    public init(name: String, role: String, createdAt: String) {
        self.name = name
        self.role = role
        self.createdAt = createdAt
    }
}

/// What operators' commands and the control plane keep beside the pipelines' own records: their
/// requests (snapshots, rewinds), the audit log and the API tokens. The SQLite state file has it
/// for one process, etcd for a cluster, so every command works the same on both.
public protocol OperatorStore: CheckpointStore, SnapshotStore, SchemaHistoryStore {
    /// A snapshot asked for by `actor` (an operator's request: any node may make it).
    func requestSnapshot(pipeline: String, tables: [TableName], reason: String, atMillis: Int64, actor: String) async throws
    /// Asks the pipeline to replay a sink from `position` when it next starts; audited.
    func requestRewind(pipeline: String, sink: String, position: SourcePosition, actor: String) async throws
    func audit(pipeline: String, action: String, detail: String, actor: String) async throws
    /// The live figures the pipeline last saved.
    func progress(pipeline: String) async throws -> PipelineProgress?
    /// The most recent entries of one pipeline (all when nil), newest first.
    func auditLog(pipeline: String?, limit: Int) async throws -> [AuditRecord]
    /// Stores a token's hash under `name`; false when the name is taken.
    func createToken(name: String, role: String, hash: String) async throws -> Bool
    /// False when no token has that name.
    func revokeToken(name: String) async throws -> Bool
    func tokens() async throws -> [TokenRecord]
    /// The name and role of the token with this SHA-256.
    func token(hash: String) async throws -> (name: String, role: String)?
}
