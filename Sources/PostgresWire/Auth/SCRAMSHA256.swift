import Crypto
import _CryptoExtras
import Foundation

/// The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) without channel binding, as PostgreSQL
/// uses it: a pure exchange of three messages, the last of which proves the server knows the
/// password too.
public struct SCRAMSHA256 {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        case serverNotProven

        public var description: String {
            switch self {
            case .malformed(let text): return "malformed SCRAM message from the server: \(text)"
            case .serverNotProven: return "the server's SCRAM signature is wrong: it does not know the password (or a proxy interferes)"
            }
        }
    }

    private let password: String
    private let clientNonce: String
    private let clientFirstBare: String
    private var authMessage = ""
    private var saltedPassword: [UInt8] = []

    /// PostgreSQL takes the user from the startup message; `user` is sent empty as libpq does.
    public init(user: String = "", password: String, clientNonce: String? = nil) {
        self.password = password
        self.clientNonce = clientNonce ?? Self.makeNonce()
        let escaped = user.replacingOccurrences(of: "=", with: "=3D").replacingOccurrences(of: ",", with: "=2C")
        self.clientFirstBare = "n=\(escaped),r=\(self.clientNonce)"
    }

    static func makeNonce() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<18).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString()
    }

    /// The client-first message: no channel binding (`n,,`).
    public var clientFirstMessage: [UInt8] { Array(("n,," + clientFirstBare).utf8) }

    /// The client-final message answering the server-first message.
    public mutating func clientFinalMessage(serverFirst: [UInt8]) throws -> [UInt8] {
        let serverFirstText = String(decoding: serverFirst, as: UTF8.self)
        var attributes: [Character: String] = [:]
        for part in serverFirstText.split(separator: ",") {
            guard let key = part.first, part.dropFirst().first == "=" else { throw Failure.malformed(serverFirstText) }
            attributes[key] = String(part.dropFirst(2))
        }
        guard let nonce = attributes["r"], nonce.hasPrefix(clientNonce), nonce.count > clientNonce.count,
              let saltText = attributes["s"], let salt = Data(base64Encoded: saltText),
              let iterationsText = attributes["i"], let iterations = Int(iterationsText), iterations > 0
        else { throw Failure.malformed(serverFirstText) }
        let key = try KDF.Insecure.PBKDF2.deriveKey(from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: 32,
                                                    unsafeUncheckedRounds: iterations)
        saltedPassword = key.withUnsafeBytes { Array($0) }
        let withoutProof = "c=biws,r=\(nonce)"
        authMessage = clientFirstBare + "," + serverFirstText + "," + withoutProof
        let clientKey = Self.hmac(saltedPassword, "Client Key")
        let storedKey = Array(SHA256.hash(data: clientKey))
        let signature = Self.hmac(storedKey, authMessage)
        let proof = zip(clientKey, signature).map { $0 ^ $1 }
        return Array((withoutProof + ",p=" + Data(proof).base64EncodedString()).utf8)
    }

    /// Checks the server-final message's signature.
    public func verify(serverFinal: [UInt8]) throws {
        let text = String(decoding: serverFinal, as: UTF8.self)
        if text.hasPrefix("e=") { throw Failure.malformed("the server refused: \(text.dropFirst(2))") }
        guard text.hasPrefix("v="), let signature = Data(base64Encoded: String(text.dropFirst(2).prefix { $0 != "," })) else {
            throw Failure.malformed(text)
        }
        let serverKey = Self.hmac(saltedPassword, "Server Key")
        guard Array(signature) == Self.hmac(serverKey, authMessage) else { throw Failure.serverNotProven }
    }

    static func hmac(_ key: [UInt8], _ message: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array(message.utf8), using: SymmetricKey(data: key)))
    }
}
