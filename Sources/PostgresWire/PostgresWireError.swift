/// Errors of the PostgreSQL client protocol. Callers (a sink, a source) add what they were doing
/// and what the operator should do.
public enum PostgresWireError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The server answered with an ErrorResponse.
    case server(PostgresServerError)
    /// The server sent something the protocol does not allow here.
    case protocolViolation(String)
    /// The connection closed before the exchange finished (by the server, the network, or
    /// `PostgresCloser.close()`).
    case connectionClosed(String)
    /// Could not open the TCP connection.
    case connectFailed(host: String, port: Int, reason: String)
    /// `sslmode=require` and the server does not offer TLS, or the handshake failed.
    case tls(String)
    /// The server asked for an authentication method ferry does not implement, or its SCRAM
    /// answer did not prove it knows the password.
    case authentication(String)

    public var description: String {
        switch self {
        case .server(let error): return error.description
        case .protocolViolation(let text): return "unexpected reply from PostgreSQL: \(text)"
        case .connectionClosed(let text): return "the connection to PostgreSQL closed \(text)"
        case .connectFailed(let host, let port, let reason): return "cannot connect to \(host):\(port): \(reason)"
        case .tls(let text): return "TLS: \(text)"
        case .authentication(let text): return "authentication: \(text)"
        }
    }

    /// Whether trying again on a new connection can succeed: the connection was lost, the server
    /// is shutting down or starting, or the transaction lost a serialization conflict or a
    /// deadlock.
    public var isTransient: Bool {
        switch self {
        case .connectionClosed, .connectFailed: return true
        case .server(let error):
            let state = error.sqlState
            return state == "40001" || state == "40P01" || state.hasPrefix("08") || state.hasPrefix("57P") || state == "53300"
        case .protocolViolation, .tls, .authentication: return false
        }
    }
}

/// The fields of an ErrorResponse (or NoticeResponse), by their one-letter codes.
public struct PostgresServerError: Sendable, Equatable, CustomStringConvertible {
    public var fields: [UInt8: String]

    public init(fields: [UInt8: String]) { self.fields = fields }

    /// The SQLSTATE code, e.g. `23505`.
    public var sqlState: String { fields[UInt8(ascii: "C")] ?? "" }
    public var severity: String { fields[UInt8(ascii: "V")] ?? fields[UInt8(ascii: "S")] ?? "" }
    public var message: String { fields[UInt8(ascii: "M")] ?? "" }
    public var detail: String? { fields[UInt8(ascii: "D")] }
    public var hint: String? { fields[UInt8(ascii: "H")] }

    public var description: String {
        "\(sqlState) \(message)" + (detail.map { " (\($0))" } ?? "") + (hint.map { " hint: \($0)" } ?? "")
    }
}
