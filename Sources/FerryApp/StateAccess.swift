import Cluster
import Etcd
import FerryCore
import Logging
import StateStore

/// Where a configuration's saved records are: its SQLite state file, or etcd in cluster mode.
/// Commands (`ferry status`, `snapshot`, `sink rewind`, `token`) go through here, so they work
/// the same on one process and on a cluster.
enum StateAccess {
    static func with<T>(_ configuration: FerryConfiguration, readOnly: Bool = false, logger: Logger,
                        _ body: (any OperatorStore) async throws -> T) async throws -> T {
        if let cluster = configuration.cluster {
            let client = try ClusterRun.client(cluster, logger: logger)
            do {
                let result = try await body(EtcdStateStore(client: client, prefix: cluster.prefix, node: cluster.node))
                try await client.shutdown()
                return result
            } catch {
                try? await client.shutdown()
                throw error
            }
        }
        let store = try await SQLiteCheckpointStore.open(path: configuration.statePath, logger: logger, readOnly: readOnly)
        do {
            let result = try await body(store)
            try await store.close()
            return result
        } catch {
            try? await store.close()
            throw error
        }
    }
}
