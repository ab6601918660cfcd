import ControlPlane
import FerryCore
import Logging

/// What the control plane asks of the saved records the same way alone and in a cluster: both
/// hand in their `OperatorStore`.
enum OperatorRequests {
    static func snapshot(configuration: FerryConfiguration, pipeline: String, tables: [String], store: any OperatorStore, actor: String,
                         logger: Logger) async throws -> [String] {
        try await refusing([.cliBadTable: .badRequest, .cliTableNotReplicated: .notFound, .cliUnknownPipeline: .notFound]) {
            try await Snapshots.request(configuration: configuration, pipeline: pipeline, tables: tables, store: store, actor: actor, logger: logger)
                .map(\.description)
        }
    }

    /// Records the rewind; the caller restarts the pipeline so it takes effect.
    static func rewind(configuration: FerryConfiguration, pipeline: String, sink: String, position: String, store: any OperatorStore,
                       actor: String) async throws {
        try await refusing([.cliBadPosition: .badRequest, .pipelineRewindAhead: .conflict, .cliUnknownSink: .notFound, .cliUnknownPipeline: .notFound]) {
            try await SinkRewind.request(configuration: configuration, pipeline: pipeline, sink: sink, position: position, store: store, actor: actor)
        }
    }

    static func auditLog(store: any OperatorStore, pipeline: String?, limit: Int) async throws -> [AuditEntryView] {
        try await store.auditLog(pipeline: pipeline, limit: limit)
    }

    static func token(store: any OperatorStore, hash: String) async throws -> APIToken? {
        guard let stored = try await store.token(hash: hash), let role = Role(rawValue: stored.role) else { return nil }
        return APIToken(name: stored.name, role: role)
    }

    /// Errors a user caused, by code, become refusals with the error's message and fix.
    private static func refusing<T>(_ kinds: [FerryError.Code: ControlRequestError.Kind], _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as FerryError {
            guard let kind = kinds[error.code] else { throw error }
            throw ControlRequestError(kind, error.message + (error.fix.map { "; \($0)" } ?? ""))
        }
    }
}
