import FerryCore

/// Errors of the MySQL client protocol.
public enum MySQLWireError: Error, Sendable, CustomStringConvertible, FerryErrorConvertible {
    /// The server answered with an ERR packet.
    case server(ERRPacket, context: String)
    /// The server sent something the protocol does not allow here.
    case protocolViolation(String)
    /// The connection closed before the exchange finished.
    case connectionClosed(String)
    /// Could not open the TCP connection.
    case connectFailed(host: String, port: Int, reason: String)
    /// The server requires something Ferry's configuration does not allow, or the reverse.
    case tlsUnavailable(String)
    case tlsFailed(String)
    /// The server asked for an authentication method Ferry does not implement.
    case unsupportedAuthentication(plugin: String)
    /// No packet arrived for longer than the configured read timeout.
    case readTimeout(seconds: Double)
    /// A malformed URL or option.
    case invalidConfiguration(String)

    public var description: String { ferryError.description }

    public var ferryError: FerryError {
        switch self {
        case .server(let packet, let context):
            return FerryError(code: .sourceMySQLServerError, message: "server refused \(context): \(packet.errorCode) (\(packet.sqlState)) \(packet.message)",
                              fix: MySQLWireError.fix(for: packet))
        case .protocolViolation(let text):
            return FerryError(code: .sourceMySQLProtocol, message: "unexpected reply from the server: \(text)",
                              fix: "check that the address points to a MySQL or MariaDB server")
        case .connectionClosed(let text):
            return FerryError(code: .sourceMySQLConnectionClosed, message: "the server closed the connection \(text)",
                              fix: "check the server's error log; Ferry reconnects automatically while following a binlog")
        case .connectFailed(let host, let port, let reason):
            return FerryError(code: .sourceMySQLUnreachable, message: "cannot connect to \(host):\(port): \(reason)",
                              fix: "check the host and port, that the server is running, and that a firewall allows the connection")
        case .tlsUnavailable(let text):
            return FerryError(code: .sourceMySQLTLSUnavailable, message: text,
                              fix: "enable TLS on the server (ssl_cert/ssl_key) or connect with ?tls=prefer or ?tls=disable")
        case .tlsFailed(let text):
            return FerryError(code: .sourceMySQLTLSFailed, message: "TLS handshake failed: \(text)",
                              fix: "check the server certificate, ?ssl-ca=FILE, and the host name for tls=verify-full")
        case .unsupportedAuthentication(let plugin):
            return FerryError(code: .sourceMySQLAuthPlugin, message: "the server asks for authentication plugin \(plugin), which Ferry does not support",
                              fix: "create the replication user with mysql_native_password or caching_sha2_password, e.g. ALTER USER 'ferry'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('…')")
        case .readTimeout(let seconds):
            return FerryError(code: .sourceMySQLReadTimeout, message: "no data or heartbeat from the server for \(seconds) s",
                              fix: "check the network; Ferry reconnects automatically while following a binlog")
        case .invalidConfiguration(let text):
            return FerryError(code: .configSource, message: text)
        }
    }

    static func fix(for packet: ERRPacket) -> String? {
        switch packet.errorCode {
        case 1045: return "check the user name and password (the source's url or password: in the configuration; FERRY_SOURCE_PASSWORD for --source)"
        case 1227, 1044, 1142, 1143:
            return "the source user lacks a privilege: Ferry needs REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.*; `ferry check --source URL` prints the GRANT for your account"
        case 1236: return "the requested binlog position is not available on the server (purged or never written); start from a current position or re-snapshot"
        case 1049: return "create the database or remove it from the URL"
        case 1129: return "the host is blocked after too many errors; run FLUSH HOSTS on the server"
        default: return nil
        }
    }
}
