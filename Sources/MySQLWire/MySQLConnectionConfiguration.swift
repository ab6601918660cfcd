import FerryCore
import WireTLS

/// Where and how to connect to a MySQL or MariaDB server.
public struct MySQLConnectionConfiguration: Sendable {
    public var host: String
    /// Default 3306.
    public var port: Int
    public var username: String
    /// Never printed; `description` masks it.
    public var password: String
    public var database: String?
    /// Default `prefer`.
    public var tls: TLSMode
    /// PEM file of CA certificates for `verify-ca` / `verify-full`; the system store otherwise.
    public var tlsCAFile: String?
    /// Default 10 s.
    public var connectTimeoutSeconds: Int64

    public init(host: String, port: Int = 3306, username: String, password: String = "", database: String? = nil,
                tls: TLSMode = .prefer, tlsCAFile: String? = nil, connectTimeoutSeconds: Int64 = 10) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
        self.tlsCAFile = tlsCAFile
        self.connectTimeoutSeconds = connectTimeoutSeconds
    }

    /// Parses `mysql://USER[:PASSWORD]@HOST[:PORT][/DATABASE][?tls=MODE&ssl-ca=FILE]`.
    /// - Parameter password: used when the URL carries none (e.g. from `FERRY_SOURCE_PASSWORD`).
    public init(url: String, password fallbackPassword: String? = nil) throws {
        let scheme = ["mysql://", "mariadb://"].first { url.hasPrefix($0) }
        guard let scheme else {
            throw MySQLWireError.invalidConfiguration("a MySQL URL must start with mysql:// (got \(Secrets.redactedURL(url)))")
        }
        var rest = Substring(url.dropFirst(scheme.count))
        var query: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        var database: String? = nil
        if let slash = rest.firstIndex(of: "/") {
            let name = rest[rest.index(after: slash)...]
            database = name.isEmpty ? nil : String(name).removingPercentEncodingLossy
            rest = rest[..<slash]
        }
        guard let at = rest.lastIndex(of: "@") else {
            throw MySQLWireError.invalidConfiguration("a MySQL URL needs a user: mysql://USER[:PASSWORD]@HOST:PORT (got \(Secrets.redactedURL(url)))")
        }
        let userInfo = rest[..<at]
        let hostPort = rest[rest.index(after: at)...]
        var username = String(userInfo).removingPercentEncodingLossy
        var password = fallbackPassword ?? ""
        if let colon = userInfo.firstIndex(of: ":") {
            username = String(userInfo[..<colon]).removingPercentEncodingLossy
            password = String(userInfo[userInfo.index(after: colon)...]).removingPercentEncodingLossy
        }
        var host = String(hostPort)
        var port = 3306
        if hostPort.hasPrefix("[") , let close = hostPort.firstIndex(of: "]") {
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            if after.hasPrefix(":") {
                guard let parsed = Int(after.dropFirst()), (1...65535).contains(parsed) else {
                    throw MySQLWireError.invalidConfiguration("invalid port in MySQL URL \(Secrets.redactedURL(url))")
                }
                port = parsed
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = String(hostPort[..<colon])
            guard let parsed = Int(hostPort[hostPort.index(after: colon)...]), (1...65535).contains(parsed) else {
                throw MySQLWireError.invalidConfiguration("invalid port in MySQL URL \(Secrets.redactedURL(url))")
            }
            port = parsed
        }
        guard !host.isEmpty, !username.isEmpty else {
            throw MySQLWireError.invalidConfiguration("a MySQL URL needs a user and a host: mysql://USER@HOST:PORT (got \(Secrets.redactedURL(url)))")
        }
        var tls = TLSMode.prefer
        var caFile: String? = nil
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            let key = String(parts[0]), value = parts.count > 1 ? String(parts[1]) : ""
            switch key {
            case "tls", "ssl-mode", "sslmode":
                guard let mode = TLSMode(rawValue: value.lowercased().replacingOccurrences(of: "_", with: "-")) else {
                    throw MySQLWireError.invalidConfiguration("tls=\(value) is not one of \(TLSMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                tls = mode
            case "ssl-ca", "sslrootcert":
                caFile = value.removingPercentEncodingLossy
            default:
                throw MySQLWireError.invalidConfiguration("unknown MySQL URL option '\(key)' (known: tls, ssl-ca)")
            }
        }
        self.init(host: host, port: port, username: username, password: password, database: database, tls: tls, tlsCAFile: caFile)
    }
}

extension String {
    var removingPercentEncodingLossy: String {
        guard contains("%") else { return self }
        var bytes: [UInt8] = []
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
               let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: Character(target), omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
