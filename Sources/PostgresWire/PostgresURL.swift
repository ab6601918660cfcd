import WireTLS

/// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=…&sslrootcert=FILE&name=value…]`,
/// as the sink and the source take it: the connection, plus the query's other settings
/// (`schema`, `publication`, `slot`) for the caller to read.
public struct PostgresURL: Sendable {
    public var connection: PostgresWireConfiguration
    /// Query settings other than `sslmode` and `sslrootcert`.
    public var settings: [String: String]

    /// What is wrong with a URL, in a few words; the caller says whose URL and how to write one.
    public struct Invalid: Error, Sendable, Equatable {
        public var reason: String
    }

    /// - Parameter password: used when the URL has none.
    public init(_ url: String, password: String?) throws(Invalid) {
        guard let scheme = ["postgres://", "postgresql://"].first(where: url.hasPrefix) else {
            throw Invalid(reason: "the URL must start with postgres://")
        }
        var rest = url.dropFirst(scheme.count)
        var settings: [String: String] = [:]
        if let mark = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: mark)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                settings[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
            }
            rest = rest[..<mark]
        }
        guard let slash = rest.firstIndex(of: "/"), let at = rest[..<slash].lastIndex(of: "@") else {
            throw Invalid(reason: "the URL needs a user and a database")
        }
        let database = String(rest[rest.index(after: slash)...])
        let userInfo = rest[..<at]
        let hostPort = rest[rest.index(after: at)..<slash]
        var user = String(userInfo), secret = password
        if let colon = userInfo.firstIndex(of: ":") {
            user = String(userInfo[..<colon])
            secret = String(userInfo[userInfo.index(after: colon)...])
        }
        var host = String(hostPort), port = 5432
        if let colon = hostPort.lastIndex(of: ":") {
            guard let parsed = Int(hostPort[hostPort.index(after: colon)...]) else { throw Invalid(reason: "invalid port") }
            host = String(hostPort[..<colon])
            port = parsed
        }
        guard !user.isEmpty, !host.isEmpty, !database.isEmpty else { throw Invalid(reason: "the URL needs a user, a host and a database") }
        guard let tls = TLSMode(rawValue: settings.removeValue(forKey: "sslmode") ?? "disable") else {
            throw Invalid(reason: "sslmode must be one of " + TLSMode.allCases.map(\.rawValue).joined(separator: ", "))
        }
        connection = PostgresWireConfiguration(host: host, port: port, user: user, password: secret, database: database, tls: tls,
                                               tlsCAFile: settings.removeValue(forKey: "sslrootcert"))
        self.settings = settings
    }
}
