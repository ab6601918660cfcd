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
        let parsed: PostgresURL
        do {
            parsed = try PostgresURL(url, password: password)
        } catch {
            throw invalid(error.reason)
        }
        self.init(name: name, pipeline: pipeline,
                  connection: parsed.connection, schema: parsed.settings["schema"] ?? "public", targetTable: targetTable, schemaChanges: schemaChanges, lane: lane, epoch: epoch)
    }
}
