/// What went wrong talking to etcd; each says where and what to do.
public enum EtcdError: Error, Sendable, CustomStringConvertible {
    /// The configuration is unusable (an endpoint that is not an http(s) URL, a TLS file).
    case configuration(String)
    /// No endpoint answered within the request's deadline.
    case unavailable(operation: String, endpoints: [String], lastError: String)
    /// The server refused the request (`code` is the gRPC status code).
    case server(operation: String, endpoint: String, code: Int, message: String)
    /// The user name or password was refused.
    case authentication(endpoint: String, user: String, message: String)
    /// The lease is gone: expired or revoked. Keys bound to it are deleted.
    case leaseExpired(id: Int64)
    /// A watch asked for revisions the server has compacted away; read the current state again
    /// and watch from its revision.
    case compacted(requested: Int64, compactRevision: Int64)
    /// The server cancelled a watch for a reason of its own.
    case watchCanceled(endpoint: String, reason: String)
    /// The answer was not what etcd's JSON gateway sends.
    case malformedResponse(operation: String, endpoint: String, detail: String)

    public var description: String {
        switch self {
        case .configuration(let text):
            return "etcd configuration: \(text)"
        case .unavailable(let operation, let endpoints, let lastError):
            return "etcd \(operation): no endpoint answered (\(endpoints.joined(separator: ", "))); last error: \(lastError). Check that the etcd members run and are reachable from this node, and that a majority of them is up"
        case .server(let operation, let endpoint, let code, let message):
            let hint: String
            switch code {
            case 7: hint = "; grant the user readwrite on the cluster prefix (etcdctl role grant-permission ROLE --prefix=true readwrite PREFIX)"
            case 8: hint = "; the request is larger than the server accepts (--max-request-bytes)"
            default: hint = ""
            }
            return "etcd \(operation) at \(endpoint) failed: \(message) (gRPC code \(code))\(hint)"
        case .authentication(let endpoint, let user, let message):
            return "etcd at \(endpoint) refused user '\(user)': \(message); check cluster.etcd.user and cluster.etcd.password"
        case .leaseExpired(let id):
            return "etcd lease \(String(id, radix: 16)) expired or was revoked; its keys are gone"
        case .compacted(let requested, let compactRevision):
            return "etcd watch from revision \(requested): the history up to \(compactRevision) is compacted; read the current state and watch again from there"
        case .watchCanceled(let endpoint, let reason):
            return "etcd at \(endpoint) cancelled a watch: \(reason)"
        case .malformedResponse(let operation, let endpoint, let detail):
            return "etcd \(operation) at \(endpoint): unexpected answer (\(detail)); is this an etcd 3.4+ client URL?"
        }
    }
}
