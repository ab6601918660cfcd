/// Where and how to connect to PostgreSQL.
public struct PostgresWireConfiguration: Sendable {
    /// libpq's `sslmode` values that ferry supports.
    public enum TLSMode: String, Sendable, CaseIterable {
        case disable
        /// TLS when the server offers it, without checking its certificate.
        case prefer
        /// TLS or no connection, without checking the certificate (libpq's meaning).
        case require
        /// TLS with a certificate signed by the CA (`sslrootcert`), any host name.
        case verifyCA = "verify-ca"
        /// TLS with a certificate signed by the CA for this host name.
        case verifyFull = "verify-full"
    }

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
