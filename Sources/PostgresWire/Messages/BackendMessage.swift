import NIOCore

/// A message from the server (protocol 3.0), decoded from its type byte and body.
public enum BackendMessage: Sendable, Equatable {
    /// The one-byte answer to an SSLRequest: `S` (go ahead with TLS) or `N`.
    case sslAnswer(UInt8)
    case authentication(Authentication)
    case parameterStatus(name: String, value: String)
    case backendKeyData(processID: Int32, secretKey: Int32)
    /// `I` idle, `T` in a transaction, `E` in a failed transaction.
    case readyForQuery(transactionStatus: UInt8)
    case rowDescription([String])
    /// Each column's bytes, `nil` for NULL.
    case dataRow([ByteBuffer?])
    case commandComplete(String)
    case emptyQueryResponse
    case error(PostgresServerError)
    case notice(PostgresServerError)
    case parseComplete, bindComplete, closeComplete, noData, portalSuspended
    case parameterDescription([UInt32])
    case copyInResponse(columns: Int)
    case copyOutResponse(columns: Int)
    case copyBothResponse(columns: Int)
    case copyData(ByteBuffer)
    case copyDone
    case notification(processID: Int32, channel: String, payload: String)
    case negotiateProtocolVersion(minor: Int32, unrecognized: [String])

    public enum Authentication: Sendable, Equatable {
        case ok
        case cleartextPassword
        case md5Password(salt: [UInt8])
        case sasl(mechanisms: [String])
        case saslContinue([UInt8])
        case saslFinal([UInt8])
        /// Kerberos, SSPI, GSS and others ferry does not speak.
        case other(Int32)
    }

    /// Decodes the body of a message of type `type`.
    public static func decode(type: UInt8, body: ByteBuffer) throws -> BackendMessage {
        var body = body
        func truncated() -> PostgresWireError {
            .protocolViolation("truncated message of type '\(Character(Unicode.Scalar(type)))'")
        }
        func int32() throws -> Int32 {
            guard let value = body.readInteger(as: Int32.self) else { throw truncated() }
            return value
        }
        func int16() throws -> Int16 {
            guard let value = body.readInteger(as: Int16.self) else { throw truncated() }
            return value
        }
        func string() throws -> String {
            guard let end = body.readableBytesView.firstIndex(of: 0) else { throw truncated() }
            let text = body.readString(length: end - body.readerIndex)!
            body.moveReaderIndex(forwardBy: 1)
            return text
        }
        func rest() -> [UInt8] { body.readBytes(length: body.readableBytes) ?? [] }
        func fields() throws -> PostgresServerError {
            var fields: [UInt8: String] = [:]
            while let code = body.readInteger(as: UInt8.self), code != 0 { fields[code] = try string() }
            return PostgresServerError(fields: fields)
        }
        func copyResponse() throws -> Int {
            _ = body.readInteger(as: UInt8.self)
            return Int(try int16())
        }

        switch type {
        case UInt8(ascii: "R"):
            let code = try int32()
            switch code {
            case 0: return .authentication(.ok)
            case 3: return .authentication(.cleartextPassword)
            case 5:
                guard let salt = body.readBytes(length: 4) else { throw truncated() }
                return .authentication(.md5Password(salt: salt))
            case 10:
                var mechanisms: [String] = []
                while body.readableBytes > 0, body.getInteger(at: body.readerIndex, as: UInt8.self) != 0 { mechanisms.append(try string()) }
                return .authentication(.sasl(mechanisms: mechanisms))
            case 11: return .authentication(.saslContinue(rest()))
            case 12: return .authentication(.saslFinal(rest()))
            default: return .authentication(.other(code))
            }
        case UInt8(ascii: "S"): return .parameterStatus(name: try string(), value: try string())
        case UInt8(ascii: "K"): return .backendKeyData(processID: try int32(), secretKey: try int32())
        case UInt8(ascii: "Z"):
            guard let status = body.readInteger(as: UInt8.self) else { throw truncated() }
            return .readyForQuery(transactionStatus: status)
        case UInt8(ascii: "T"):
            let count = Int(try int16())
            var names: [String] = []
            names.reserveCapacity(count)
            for _ in 0..<count {
                names.append(try string())
                // table OID, column number, type OID, type size, type modifier, format
                guard body.readableBytes >= 18 else { throw truncated() }
                body.moveReaderIndex(forwardBy: 18)
            }
            return .rowDescription(names)
        case UInt8(ascii: "D"):
            let count = Int(try int16())
            var values: [ByteBuffer?] = []
            values.reserveCapacity(count)
            for _ in 0..<count {
                let length = try int32()
                if length < 0 {
                    values.append(nil)
                } else {
                    guard let value = body.readSlice(length: Int(length)) else { throw truncated() }
                    values.append(value)
                }
            }
            return .dataRow(values)
        case UInt8(ascii: "C"): return .commandComplete(try string())
        case UInt8(ascii: "I"): return .emptyQueryResponse
        case UInt8(ascii: "E"): return .error(try fields())
        case UInt8(ascii: "N"): return .notice(try fields())
        case UInt8(ascii: "1"): return .parseComplete
        case UInt8(ascii: "2"): return .bindComplete
        case UInt8(ascii: "3"): return .closeComplete
        case UInt8(ascii: "n"): return .noData
        case UInt8(ascii: "s"): return .portalSuspended
        case UInt8(ascii: "t"):
            let count = Int(try int16())
            var types: [UInt32] = []
            for _ in 0..<count { types.append(UInt32(bitPattern: try int32())) }
            return .parameterDescription(types)
        case UInt8(ascii: "G"): return .copyInResponse(columns: try copyResponse())
        case UInt8(ascii: "H"): return .copyOutResponse(columns: try copyResponse())
        case UInt8(ascii: "W"): return .copyBothResponse(columns: try copyResponse())
        case UInt8(ascii: "d"): return .copyData(body)
        case UInt8(ascii: "c"): return .copyDone
        case UInt8(ascii: "A"): return .notification(processID: try int32(), channel: try string(), payload: try string())
        case UInt8(ascii: "v"):
            let minor = try int32()
            let count = Int(try int32())
            var names: [String] = []
            for _ in 0..<count { names.append(try string()) }
            return .negotiateProtocolVersion(minor: minor, unrecognized: names)
        default:
            throw PostgresWireError.protocolViolation("unknown message type \(type)")
        }
    }
}
