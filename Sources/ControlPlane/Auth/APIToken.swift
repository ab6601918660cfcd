import Crypto
import Foundation

/// What a token may do; each role includes the ones before it.
public enum Role: String, Codable, Sendable, CaseIterable, Comparable {
    /// Read everything but the configuration.
    case viewer
    /// Also pause, resume, restart and start snapshots.
    case `operator`
    /// Also rewind sinks and read the (redacted) configuration.
    case admin

    public static func < (lhs: Role, rhs: Role) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// A named API token. Only its SHA-256 is stored: the token itself is shown once, when made.
public struct APIToken: Sendable, Equatable {
    public var name: String
    public var role: Role

    public init(name: String, role: Role) {
        self.name = name
        self.role = role
    }

    /// `ferry_` and 64 hex digits of 32 random bytes: far too many to guess, so a plain SHA-256
    /// (not a slow password hash) is the right way to store it.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return "ferry_" + (0..<32).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max, using: &generator)) }.joined()
    }

    public static func hash(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
