import Crypto

/// The login after the startup message: the server picks an authentication method, ferry
/// answers, then the server reports its parameters and says it is ready. Pure: messages in,
/// actions out.
public struct StartupStateMachine {
    public enum Action: Equatable {
        case sendPassword(String)
        case sendSASLInitialResponse(mechanism: String, data: [UInt8])
        case sendSASLResponse([UInt8])
        /// Nothing to send: read the next message.
        case wait
        /// Logged in and ready for queries.
        case ready
        case fail(PostgresWireError)
    }

    private enum State {
        case authenticating
        case scram(SCRAMSHA256)
        case scramFinal(SCRAMSHA256)
        case scramVerified
        case authenticated
        case done
    }

    private let user: String
    private let password: String?
    private let clientNonce: String?
    private var state = State.authenticating
    public private(set) var parameters: [String: String] = [:]
    public private(set) var processID: Int32 = 0

    /// `clientNonce` is for tests; a random one is made otherwise.
    public init(user: String, password: String?, clientNonce: String? = nil) {
        self.user = user
        self.password = password
        self.clientNonce = clientNonce
    }

    public mutating func received(_ message: BackendMessage) -> Action {
        switch (state, message) {
        case (_, .error(let error)):
            state = .done
            if error.sqlState == "28P01" || error.sqlState == "28000" {
                return .fail(.authentication(error.description))
            }
            return .fail(.server(error))
        case (_, .notice), (_, .negotiateProtocolVersion):
            return .wait
        case (.authenticating, .authentication(.ok)), (.scramVerified, .authentication(.ok)):
            state = .authenticated
            return .wait
        case (.scramFinal, .authentication(.ok)):
            state = .done
            return .fail(.authentication("the server skipped the final SCRAM message, which proves it knows the password"))
        case (.authenticating, .authentication(.cleartextPassword)):
            guard let password else { return missingPassword() }
            return .sendPassword(password)
        case (.authenticating, .authentication(.md5Password(let salt))):
            guard let password else { return missingPassword() }
            let inner = Self.md5Hex(Array((password + user).utf8))
            return .sendPassword("md5" + Self.md5Hex(Array(inner.utf8) + salt))
        case (.authenticating, .authentication(.sasl(let mechanisms))):
            guard mechanisms.contains("SCRAM-SHA-256") else {
                return .fail(.authentication("the server offers only \(mechanisms.joined(separator: ", ")); ferry speaks SCRAM-SHA-256"))
            }
            guard let password else { return missingPassword() }
            let scram = SCRAMSHA256(password: password, clientNonce: clientNonce)
            state = .scram(scram)
            return .sendSASLInitialResponse(mechanism: "SCRAM-SHA-256", data: scram.clientFirstMessage)
        case (.scram(var scram), .authentication(.saslContinue(let data))):
            do {
                let final = try scram.clientFinalMessage(serverFirst: data)
                state = .scramFinal(scram)
                return .sendSASLResponse(final)
            } catch {
                return .fail(.authentication("\(error)"))
            }
        case (.scramFinal(let scram), .authentication(.saslFinal(let data))):
            do {
                try scram.verify(serverFinal: data)
                state = .scramVerified
                return .wait
            } catch {
                return .fail(.authentication("\(error)"))
            }
        case (.authenticating, .authentication(.other(let code))):
            return .fail(.authentication("the server asks for authentication method \(code) (GSS, SSPI or Kerberos), which ferry does not speak; use scram-sha-256 or md5 in pg_hba.conf"))
        case (.authenticated, .parameterStatus(let name, let value)):
            parameters[name] = value
            return .wait
        case (.authenticated, .backendKeyData(let processID, _)):
            self.processID = processID
            return .wait
        case (.authenticated, .readyForQuery):
            state = .done
            return .ready
        default:
            return .fail(.protocolViolation("\(message) during login"))
        }
    }

    private func missingPassword() -> Action {
        .fail(.authentication("the server asks for a password and none is configured; put it in the URL or the sink's password setting"))
    }

    static func md5Hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in Insecure.MD5.hash(data: bytes) {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
