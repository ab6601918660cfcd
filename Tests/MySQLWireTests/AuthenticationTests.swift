import _CryptoExtras
import FerryCore
import Foundation
@testable import MySQLWire
import NIOCore
import Testing
import WireTLS

/// The connection phase, with the test playing the server (messages from the protocol documents).
@Suite struct AuthenticationTests {
    static let scramble: [UInt8] = Array(1...20)

    /// A HandshakeV10 as a server sends it.
    static func handshakePayload(plugin: String, capabilities: CapabilityFlags, version: String = "8.0.36") -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(10))
        buffer.writeNullTerminatedString(version)
        buffer.writeInteger(UInt32(77), endianness: .little)
        buffer.writeBytes(scramble.prefix(8))
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt16(truncatingIfNeeded: capabilities.rawValue), endianness: .little)
        buffer.writeInteger(UInt8(45))
        buffer.writeInteger(UInt16(2), endianness: .little)
        buffer.writeInteger(UInt16(truncatingIfNeeded: capabilities.rawValue >> 16), endianness: .little)
        buffer.writeInteger(UInt8(21))
        buffer.writeRepeatingByte(0, count: 10)
        buffer.writeBytes(scramble.dropFirst(8))
        buffer.writeInteger(UInt8(0))
        buffer.writeNullTerminatedString(plugin)
        return buffer
    }

    static let serverCapabilities: CapabilityFlags = [.longPassword, .protocol41, .secureConnection, .pluginAuth,
                                                      .pluginAuthLengthEncodedData, .transactions, .multiResults, .connectAttributes]

    func machine(password: String = "secret", tls: TLSMode = .disable) -> AuthenticationStateMachine {
        AuthenticationStateMachine(credentials: .init(username: "ferry", password: password, database: nil), tlsMode: tls)
    }

    func handshake(_ plugin: String, capabilities: CapabilityFlags = serverCapabilities) throws -> HandshakeV10 {
        try HandshakeV10.decode(from: Self.handshakePayload(plugin: plugin, capabilities: capabilities))
    }

    @Test func decodesHandshake() throws {
        let handshake = try HandshakeV10.decode(from: Self.handshakePayload(plugin: "caching_sha2_password", capabilities: Self.serverCapabilities,
                                                                           version: "5.5.5-10.11.6-MariaDB"))
        #expect(handshake.authPluginData == Self.scramble)
        #expect(handshake.authPluginName == "caching_sha2_password")
        #expect(handshake.connectionID == 77)
        #expect(handshake.isMariaDB && handshake.displayVersion == "10.11.6-MariaDB")
    }

    @Test func scramblesMatchIndependentVectors() {
        // Computed with Python's hashlib from the same password and scramble.
        #expect(PasswordScramble.nativePassword(password: "secret", scramble: Self.scramble).hex == "b32bb3a583e1340c0a1108d58b1be49781ad8c2f")
        #expect(PasswordScramble.cachingSHA2(password: "secret", scramble: Self.scramble).hex == "746ebe205d56a0707acb3e796e834e0dd7b1d61743b26bd5202c7a623230c7c9")
        #expect(PasswordScramble.nativePassword(password: "", scramble: Self.scramble).isEmpty)
    }

    @Test func nativePasswordLogin() throws {
        var auth = machine()
        guard case .send(let response) = auth.handshakeReceived(try handshake("mysql_native_password")) else { Issue.record("no response"); return }
        var buffer = response
        let capabilities = CapabilityFlags(rawValue: buffer.readInteger(endianness: .little)!)
        #expect(capabilities.contains(.protocol41) && !capabilities.contains(.ssl))
        buffer.moveReaderIndex(forwardBy: 4 + 1 + 23)
        #expect(buffer.readNullTerminatedString() == "ferry")
        #expect(buffer.readLengthEncodedSlice().map { Array($0.readableBytesView) } == PasswordScramble.nativePassword(password: "secret", scramble: Self.scramble))
        #expect(buffer.readNullTerminatedString() == "mysql_native_password")
        guard case .authenticated = auth.packetReceived(ByteBuffer(bytes: [0, 0, 0, 2, 0, 0, 0])) else { Issue.record("not authenticated"); return }
    }

    @Test func cachingSHA2FastPath() throws {
        var auth = machine()
        guard case .send = auth.handshakeReceived(try handshake("caching_sha2_password")) else { Issue.record("no response"); return }
        guard case .awaitPacket = auth.packetReceived(ByteBuffer(bytes: [0x01, 0x03])) else { Issue.record("fast auth not accepted"); return }
        guard case .authenticated = auth.packetReceived(ByteBuffer(bytes: [0, 0, 0, 2, 0, 0, 0])) else { Issue.record("not authenticated"); return }
    }

    @Test func cachingSHA2FullAuthenticationWithRSAKey() throws {
        var auth = machine()
        _ = auth.handshakeReceived(try handshake("caching_sha2_password"))
        guard case .send(let request) = auth.packetReceived(ByteBuffer(bytes: [0x01, 0x04])) else { Issue.record("no key request"); return }
        #expect(Array(request.readableBytesView) == [0x02])
        let key = try _RSA.Encryption.PrivateKey(keySize: .bits2048)
        guard case .send(let encrypted) = auth.packetReceived(ByteBuffer(bytes: [0x01] + Array(key.publicKey.pemRepresentation.utf8))) else {
            Issue.record("password not sent"); return
        }
        let plain = try key.decrypt(Array(encrypted.readableBytesView), padding: .PKCS1_OAEP)
        #expect(Array(plain) == PasswordScramble.obfuscated(password: "secret", scramble: Self.scramble))
        guard case .authenticated = auth.packetReceived(ByteBuffer(bytes: [0, 0, 0, 2, 0, 0, 0])) else { Issue.record("not authenticated"); return }
    }

    @Test func cachingSHA2FullAuthenticationOverTLSSendsThePassword() throws {
        var auth = machine(tls: .require)
        guard case .sendSSLRequestThenStartTLS(let sslRequest) = auth.handshakeReceived(try handshake("caching_sha2_password", capabilities: Self.serverCapabilities.union(.ssl))) else {
            Issue.record("no TLS"); return
        }
        #expect(sslRequest.readableBytes == 32)
        guard case .send = auth.tlsEstablished() else { Issue.record("no response after TLS"); return }
        guard case .send(let password) = auth.packetReceived(ByteBuffer(bytes: [0x01, 0x04])) else { Issue.record("password not sent"); return }
        #expect(Array(password.readableBytesView) == Array("secret".utf8) + [0])
    }

    @Test func authenticationSwitch() throws {
        var auth = machine()
        _ = auth.handshakeReceived(try handshake("caching_sha2_password"))
        let newScramble: [UInt8] = Array(21...40)
        guard case .send(let proof) = auth.packetReceived(ByteBuffer(bytes: [0xFE] + Array("mysql_native_password".utf8) + [0] + newScramble + [0])) else {
            Issue.record("no switch response"); return
        }
        #expect(Array(proof.readableBytesView) == PasswordScramble.nativePassword(password: "secret", scramble: newScramble))
        guard case .fail(let error) = machine().switchTo("client_ed25519") else { Issue.record("ed25519 accepted"); return }
        #expect(error.ferryError.code == .sourceMySQLAuthPlugin)
    }

    @Test func tlsRequiredButNotOffered() throws {
        var auth = machine(tls: .require)
        guard case .fail(let error) = auth.handshakeReceived(try handshake("mysql_native_password")) else { Issue.record("did not fail"); return }
        #expect(error.ferryError.code == .sourceMySQLTLSUnavailable)
        var preferring = machine(tls: .prefer)
        guard case .send = preferring.handshakeReceived(try handshake("mysql_native_password")) else { Issue.record("prefer should go on without TLS"); return }
    }

    @Test func wrongPasswordIsAServerError() throws {
        var auth = machine()
        _ = auth.handshakeReceived(try handshake("mysql_native_password"))
        var error = ByteBuffer(bytes: [0xFF] + [0x15, 0x04] + Array("#28000".utf8))
        error.writeString("Access denied for user 'ferry'@'localhost' (using password: YES)")
        guard case .fail(let failure) = auth.packetReceived(error) else { Issue.record("did not fail"); return }
        #expect(failure.ferryError.code == .sourceMySQLServerError)
        #expect(failure.description.contains("1045"))
        #expect(failure.description.contains("check the user name and password"))
    }
}

extension AuthenticationStateMachine {
    /// Reaches an auth-switch request for `plugin` through events.
    func switchTo(_ plugin: String) -> Action {
        var copy = self
        _ = copy.handshakeReceived(try! HandshakeV10.decode(from: AuthenticationTests.handshakePayload(plugin: "mysql_native_password", capabilities: AuthenticationTests.serverCapabilities)))
        return copy.packetReceived(ByteBuffer(bytes: [0xFE] + Array(plugin.utf8) + [0] + Array(repeating: 1, count: 32)))
    }
}

extension Array where Element == UInt8 {
    var hex: String { map { String(format: "%02x", $0) }.joined() }
}

@Suite struct ConfigurationTests {
    @Test func parsesURLs() throws {
        let configuration = try MySQLConnectionConfiguration(url: "mysql://ferry:p%40ss@db.example:3307/shop?tls=verify-full&ssl-ca=/etc/ca.pem")
        #expect(configuration.host == "db.example" && configuration.port == 3307 && configuration.username == "ferry")
        #expect(configuration.password == "p@ss" && configuration.database == "shop")
        #expect(configuration.tls == .verifyFull && configuration.tlsCAFile == "/etc/ca.pem")
        let fromEnvironment = try MySQLConnectionConfiguration(url: "mysql://ferry@[::1]", password: "env")
        #expect(fromEnvironment.host == "::1" && fromEnvironment.port == 3306 && fromEnvironment.password == "env")
        #expect(throws: MySQLWireError.self) { try MySQLConnectionConfiguration(url: "postgres://a@b") }
        #expect(throws: MySQLWireError.self) { try MySQLConnectionConfiguration(url: "mysql://a@b:99999") }
        #expect(throws: MySQLWireError.self) { try MySQLConnectionConfiguration(url: "mysql://a@b?tls=maybe") }
        #expect(throws: MySQLWireError.self) { try MySQLConnectionConfiguration(url: "mysql://host:3306") }
    }

    @Test func redactsPasswords() {
        #expect(Secrets.redactedURL("mysql://ferry:secret@h:1") == "mysql://ferry:<redacted>@h:1")
        #expect(Secrets.redactedURL("mysql://ferry@h:1") == "mysql://ferry@h:1")
    }

    @Test func encodesGTIDSetForDump() throws {
        let set = try #require(MySQLGTIDSetParsing.parse("00010203-0405-0607-0809-0a0b0c0d0e0f:1-5"))
        var buffer = ByteBuffer()
        Command.encodeGTIDSet(set, into: &buffer)
        #expect(Array(buffer.readableBytesView) == [1, 0, 0, 0, 0, 0, 0, 0] + Array(0..<16) + [1, 0, 0, 0, 0, 0, 0, 0] + [1, 0, 0, 0, 0, 0, 0, 0] + [6, 0, 0, 0, 0, 0, 0, 0])
    }
}

enum MySQLGTIDSetParsing {
    static func parse(_ text: String) -> MySQLGTIDSet? { MySQLGTIDSet(parsing: Substring(text)) }
}
