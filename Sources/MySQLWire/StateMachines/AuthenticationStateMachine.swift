import _CryptoExtras
import NIOCore
import WireTLS

/// The connection phase of the client protocol as a pure state machine: handshake in, packets
/// out, through optional TLS, authentication-method switch and `caching_sha2_password`'s extra
/// rounds. Sockets and TLS are the driver's business; this type only decides.
public struct AuthenticationStateMachine {
    public struct Credentials: Sendable {
        public var username: String
        public var password: String
        public var database: String?

        public init(username: String, password: String, database: String?) {
            self.username = username
            self.password = password
            self.database = database
        }
    }

    public enum Action {
        /// Send this SSL Request, then start TLS, then call `tlsEstablished()`.
        case sendSSLRequestThenStartTLS(ByteBuffer)
        case send(ByteBuffer)
        /// Nothing to send; wait for the server's next packet.
        case awaitPacket
        case authenticated(capabilities: CapabilityFlags)
        case fail(MySQLWireError)
    }

    private enum State {
        case awaitingHandshake
        case awaitingTLS(HandshakeV10, CapabilityFlags)
        case authenticating(plugin: String, scramble: [UInt8], capabilities: CapabilityFlags, secure: Bool)
        case awaitingPublicKey(scramble: [UInt8], capabilities: CapabilityFlags)
        case finished
    }

    private var state: State = .awaitingHandshake
    private let credentials: Credentials
    private let tlsMode: TLSMode

    /// What Ferry asks for; intersected with what the server offers.
    static let clientCapabilities: CapabilityFlags = [
        .longPassword, .longFlag, .protocol41, .transactions, .secureConnection, .multiResults,
        .pluginAuth, .pluginAuthLengthEncodedData, .connectAttributes,
    ]

    public init(credentials: Credentials, tlsMode: TLSMode) {
        self.credentials = credentials
        self.tlsMode = tlsMode
    }

    public mutating func handshakeReceived(_ handshake: HandshakeV10) -> Action {
        guard case .awaitingHandshake = state else { return fail(.protocolViolation("second handshake")) }
        guard handshake.capabilities.contains(.protocol41) else {
            return fail(.protocolViolation("server \(handshake.serverVersion) does not speak protocol 4.1"))
        }
        var capabilities = Self.clientCapabilities.intersection(handshake.capabilities)
        capabilities.insert(.protocol41)
        if credentials.database != nil { capabilities.insert(.connectWithDB) }
        let serverHasTLS = handshake.capabilities.contains(.ssl)
        switch tlsMode {
        case .disable:
            break
        case .prefer where !serverHasTLS:
            break
        case .require, .verifyCA, .verifyFull:
            guard serverHasTLS else {
                return fail(.tlsUnavailable("TLS is required (tls=\(tlsMode.rawValue)) but the server at version \(handshake.displayVersion) does not offer it"))
            }
            fallthrough
        case .prefer:
            capabilities.insert(.ssl)
            state = .awaitingTLS(handshake, capabilities)
            var buffer = ByteBuffer()
            response(handshake: handshake, capabilities: capabilities, secure: true).encodeSSLRequest(into: &buffer)
            return .sendSSLRequestThenStartTLS(buffer)
        }
        return sendResponse(handshake: handshake, capabilities: capabilities, secure: false)
    }

    public mutating func tlsEstablished() -> Action {
        guard case .awaitingTLS(let handshake, let capabilities) = state else { return fail(.protocolViolation("TLS started out of order")) }
        return sendResponse(handshake: handshake, capabilities: capabilities, secure: true)
    }

    /// A packet from the server during authentication.
    public mutating func packetReceived(_ payload: ByteBuffer) -> Action {
        guard let header = payload.getInteger(at: payload.readerIndex, as: UInt8.self) else {
            return fail(.protocolViolation("empty packet during authentication"))
        }
        switch (state, header) {
        case (.authenticating(_, _, let capabilities, _), 0x00), (.awaitingPublicKey(_, let capabilities), 0x00):
            state = .finished
            return .authenticated(capabilities: capabilities)
        case (_, 0xFF):
            let packet = (try? ERRPacket.decode(from: payload, capabilities: [])) ?? ERRPacket(errorCode: 0, sqlState: "HY000", message: "malformed error")
            return fail(.server(packet, context: "the login of user '\(credentials.username)'"))
        case (.authenticating(_, _, let capabilities, let secure), 0xFE):
            var buffer = payload
            buffer.moveReaderIndex(forwardBy: 1)
            guard let plugin = buffer.readNullTerminatedString() else {
                return fail(.unsupportedAuthentication(plugin: "mysql_old_password"))
            }
            var data = buffer.readBytes(length: buffer.readableBytes) ?? []
            if data.last == 0 { data.removeLast() }
            state = .authenticating(plugin: plugin, scramble: data, capabilities: capabilities, secure: secure)
            guard let proof = proof(plugin: plugin, scramble: data) else { return fail(.unsupportedAuthentication(plugin: plugin)) }
            return .send(ByteBuffer(bytes: proof))
        case (.authenticating(let plugin, let scramble, let capabilities, let secure), 0x01) where plugin == "caching_sha2_password":
            let status = payload.getInteger(at: payload.readerIndex + 1, as: UInt8.self)
            switch status {
            case 0x03:
                return .awaitPacket
            case 0x04:
                if secure {
                    return .send(ByteBuffer(bytes: Array(credentials.password.utf8) + [0]))
                }
                state = .awaitingPublicKey(scramble: scramble, capabilities: capabilities)
                return .send(ByteBuffer(bytes: [0x02]))
            default:
                return fail(.protocolViolation("caching_sha2_password status \(status.map(String.init) ?? "missing")"))
            }
        case (.awaitingPublicKey(let scramble, _), 0x01):
            var buffer = payload
            buffer.moveReaderIndex(forwardBy: 1)
            let pem = buffer.readString(length: buffer.readableBytes) ?? ""
            do {
                let key = try _RSA.Encryption.PublicKey(pemRepresentation: pem)
                let encrypted = try key.encrypt(PasswordScramble.obfuscated(password: credentials.password, scramble: scramble),
                                                padding: .PKCS1_OAEP)
                return .send(ByteBuffer(bytes: Array(encrypted)))
            } catch {
                return fail(.protocolViolation("server RSA public key unusable: \(error)"))
            }
        default:
            return fail(.protocolViolation("unexpected packet 0x\(String(header, radix: 16)) during authentication"))
        }
    }

    private mutating func fail(_ error: MySQLWireError) -> Action {
        state = .finished
        return .fail(error)
    }

    private func response(handshake: HandshakeV10, capabilities: CapabilityFlags, secure: Bool) -> HandshakeResponse41 {
        let plugin = handshake.authPluginName
        let knownPlugin = proof(plugin: plugin, scramble: handshake.authPluginData) != nil
        let chosen = knownPlugin ? plugin : "mysql_native_password"
        return HandshakeResponse41(
            capabilities: capabilities, username: credentials.username,
            authResponse: proof(plugin: chosen, scramble: handshake.authPluginData) ?? [],
            database: credentials.database, authPluginName: chosen,
            attributes: [("_client_name", "ferry"), ("program_name", "ferry")])
    }

    private mutating func sendResponse(handshake: HandshakeV10, capabilities: CapabilityFlags, secure: Bool) -> Action {
        let message = response(handshake: handshake, capabilities: capabilities, secure: secure)
        state = .authenticating(plugin: message.authPluginName, scramble: handshake.authPluginData,
                                capabilities: capabilities, secure: secure)
        var buffer = ByteBuffer()
        message.encode(into: &buffer)
        return .send(buffer)
    }

    private func proof(plugin: String, scramble: [UInt8]) -> [UInt8]? {
        switch plugin {
        case "mysql_native_password": PasswordScramble.nativePassword(password: credentials.password, scramble: scramble)
        case "caching_sha2_password": PasswordScramble.cachingSHA2(password: credentials.password, scramble: scramble)
        default: nil
        }
    }
}
