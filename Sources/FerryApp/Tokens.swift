import ControlPlane
import FerryCore
import Logging
import StateStore

/// `ferry token create|list|revoke`: API tokens for the web page and the API, kept in the state
/// store (etcd in cluster mode) as SHA-256 hashes; the token itself is printed once, when made.
public enum Tokens {
    public static func create(configuration: FerryConfiguration, name: String, role: String, logger: Logger) async throws -> String {
        guard let role = Role(rawValue: role) else {
            throw FerryError(code: .cliBadRole, message: "'\(role)' is not a role", fix: "use --role viewer, operator or admin")
        }
        guard !name.isEmpty, name.count <= 64, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.@".contains($0) }) else {
            throw FerryError(code: .cliBadTokenName, message: "'\(name)' is not a usable token name",
                             fix: "use up to 64 letters, digits and - _ . @ (it appears in the audit log)")
        }
        // The audit log's own actors: the engine and the command line.
        guard !["ferry", "cli"].contains(name) else {
            throw FerryError(code: .cliBadTokenName, message: "'\(name)' names ferry itself in the audit log, so it cannot name a token",
                             fix: "choose another name, e.g. the person's or the tool's")
        }
        let token = APIToken.generate()
        let created = try await withStore(configuration, logger) { try await $0.createToken(name: name, role: role.rawValue, hash: APIToken.hash(token)) }
        guard created else {
            throw FerryError(code: .cliTokenExists, message: "a token named \(name) exists already",
                             fix: "choose another name, or `ferry token revoke -c \(configuration.file) --name \(name)` first")
        }
        return token
    }

    public static func list(configuration: FerryConfiguration, logger: Logger) async throws -> [(name: String, role: String, createdAt: String)] {
        try await withStore(configuration, logger) { try await $0.tokens() }.map { ($0.name, $0.role, $0.createdAt) }
    }

    public static func revoke(configuration: FerryConfiguration, name: String, logger: Logger) async throws {
        guard try await withStore(configuration, logger, { try await $0.revokeToken(name: name) }) else {
            throw FerryError(code: .cliUnknownToken, message: "no token named \(name)", fix: "`ferry token list -c \(configuration.file)` shows them")
        }
    }

    static func withStore<T>(_ configuration: FerryConfiguration, _ logger: Logger, _ body: (any OperatorStore) async throws -> T) async throws -> T {
        try await StateAccess.with(configuration, logger: logger, body)
    }
}
