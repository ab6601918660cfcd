import Crypto
import Foundation

/// Password proofs for the authentication plugins Ferry speaks.
public enum PasswordScramble {
    /// `mysql_native_password`: SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))).
    public static func nativePassword(password: String, scramble: [UInt8]) -> [UInt8] {
        guard !password.isEmpty else { return [] }
        let stage1 = Array(Insecure.SHA1.hash(data: Array(password.utf8)))
        let stage2 = Array(Insecure.SHA1.hash(data: stage1))
        let mix = Array(Insecure.SHA1.hash(data: Array(scramble.prefix(20)) + stage2))
        return zip(stage1, mix).map { $0 ^ $1 }
    }

    /// `caching_sha2_password` fast path: SHA256(password) XOR SHA256(SHA256(SHA256(password)) + scramble).
    public static func cachingSHA2(password: String, scramble: [UInt8]) -> [UInt8] {
        guard !password.isEmpty else { return [] }
        let stage1 = Array(SHA256.hash(data: Array(password.utf8)))
        let stage2 = Array(SHA256.hash(data: stage1))
        let mix = Array(SHA256.hash(data: stage2 + Array(scramble.prefix(20))))
        return zip(stage1, mix).map { $0 ^ $1 }
    }

    /// The cleartext password, NUL-terminated, XOR-ed with the scramble repeated — what
    /// `caching_sha2_password` encrypts with the server's RSA key when there is no TLS.
    public static func obfuscated(password: String, scramble: [UInt8]) -> [UInt8] {
        let plain = Array(password.utf8) + [0]
        let key = Array(scramble.prefix(20))
        guard !key.isEmpty else { return plain }
        return plain.enumerated().map { $0.element ^ key[$0.offset % key.count] }
    }
}
