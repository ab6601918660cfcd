import WireTLS

/// Where and how to connect to PostgreSQL.
public struct PostgresWireConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var tls: TLSMode
    /// CA certificates (PEM) for `verify-ca` and `verify-full`; the system's when `nil`.
    public var tlsCAFile: String?
    public var connectTimeoutSeconds: Int64
    /// Extra startup parameters (run-time settings such as `statement_timeout`).
    public var options: [(String, String)]

    public init(host: String, port: Int = 5432, user: String, password: String?, database: String, tls: TLSMode = .disable,
                tlsCAFile: String? = nil, connectTimeoutSeconds: Int64 = 10, options: [(String, String)] = []) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.tls = tls
        self.tlsCAFile = tlsCAFile
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.options = options
    }
}
