import FerryCore
import SinkSupport
import Foundation
import PostgresWire
import WireTLS

extension PostgresSink.Configuration {
    /// From `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|prefer|require|verify-ca|verify-full&sslrootcert=FILE&schema=NAME]`.
    /// - Parameter password: used when the URL has none.
    public init(name: String, pipeline: String, url: String, password: String?,
                targetTable: @escaping @Sendable (TableName) -> String, schemaChanges: SchemaChangePolicy = SchemaChangePolicy(), lane: Int = 0,
                epoch: Int64? = nil) throws {
        func invalid(_ what: String) -> FerryError {
            FerryError(code: .configInvalid, message: "sink \(name): \(what)",
                       fix: "use postgres://USER@HOST:PORT/DATABASE[?sslmode=disable|prefer|require|verify-ca|verify-full&sslrootcert=FILE&schema=NAME]")
        }
        guard let schemeEnd = url.range(of: "://"), ["postgres", "postgresql"].contains(String(url[..<schemeEnd.lowerBound])) else {
            throw invalid("the URL must start with postgres://")
        }
        var rest = Substring(url[schemeEnd.upperBound...])
        var options: [String: String] = [:]
        if let mark = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: mark)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                options[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
            }
            rest = rest[..<mark]
        }
        guard let slash = rest.firstIndex(of: "/"), let at = rest[..<slash].lastIndex(of: "@") else {
            throw invalid("the URL needs a user and a database")
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
            guard let parsed = Int(hostPort[hostPort.index(after: colon)...]) else { throw invalid("invalid port") }
            host = String(hostPort[..<colon])
            port = parsed
        }
        guard !user.isEmpty, !host.isEmpty, !database.isEmpty else { throw invalid("the URL needs a user, a host and a database") }
        guard let tls = TLSMode(rawValue: options["sslmode"] ?? "disable") else {
            throw invalid("sslmode must be one of " + TLSMode.allCases.map(\.rawValue).joined(separator: ", "))
        }
        self.init(name: name, pipeline: pipeline,
                  connection: PostgresWireConfiguration(host: host, port: port, user: user, password: secret, database: database, tls: tls,
                                                        tlsCAFile: options["sslrootcert"]),
                  schema: options["schema"] ?? "public", targetTable: targetTable, schemaChanges: schemaChanges, lane: lane, epoch: epoch)
    }
}
