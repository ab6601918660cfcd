import NIOCore

/// Messages from ferry to the server, written straight into a buffer.
public enum FrontendMessage {
    /// A parameter of an extended-protocol statement.
    public struct Parameter: Sendable {
        /// The type's OID; 0 lets the server infer it from the statement.
        public var typeOID: UInt32
        public var binary: Bool
        /// `nil` is SQL NULL.
        public var value: ByteBuffer?

        public init(typeOID: UInt32 = 0, binary: Bool = false, value: ByteBuffer?) {
            self.typeOID = typeOID
            self.binary = binary
            self.value = value
        }

        public static func text(_ text: String?) -> Parameter {
            Parameter(value: text.map { ByteBuffer(string: $0) })
        }
    }

    public static let protocolVersion: Int32 = 196_608  // 3.0
    static let sslRequestCode: Int32 = 80_877_103

    /// A message with a type byte and a length-prefixed body written by `body`.
    static func write(_ type: UInt8?, into buffer: inout ByteBuffer, _ body: (inout ByteBuffer) -> Void) {
        if let type { buffer.writeInteger(type) }
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(Int32(0))
        body(&buffer)
        buffer.setInteger(Int32(buffer.writerIndex - lengthIndex), at: lengthIndex)
    }

    static func writeCString(_ text: String, into buffer: inout ByteBuffer) {
        buffer.writeString(text)
        buffer.writeInteger(UInt8(0))
    }

    public static func sslRequest(into buffer: inout ByteBuffer) {
        write(nil, into: &buffer) { $0.writeInteger(sslRequestCode) }
    }

    public static func startup(parameters: [(String, String)], into buffer: inout ByteBuffer) {
        write(nil, into: &buffer) { body in
            body.writeInteger(protocolVersion)
            for (name, value) in parameters {
                writeCString(name, into: &body)
                writeCString(value, into: &body)
            }
            body.writeInteger(UInt8(0))
        }
    }

    public static func password(_ text: String, into buffer: inout ByteBuffer) {
        write(UInt8(ascii: "p"), into: &buffer) { writeCString(text, into: &$0) }
    }

    public static func saslInitialResponse(mechanism: String, data: [UInt8], into buffer: inout ByteBuffer) {
        write(UInt8(ascii: "p"), into: &buffer) { body in
            writeCString(mechanism, into: &body)
            body.writeInteger(Int32(data.count))
            body.writeBytes(data)
        }
    }

    public static func saslResponse(_ data: [UInt8], into buffer: inout ByteBuffer) {
        write(UInt8(ascii: "p"), into: &buffer) { $0.writeBytes(data) }
    }

    public static func query(_ sql: String, into buffer: inout ByteBuffer) {
        write(UInt8(ascii: "Q"), into: &buffer) { writeCString(sql, into: &$0) }
    }

    /// Parse, Bind, Describe (portal), Execute and Sync of one unnamed statement whose results
    /// come back in text form.
    public static func extendedQuery(_ sql: String, parameters: [Parameter], into buffer: inout ByteBuffer) {
        write(UInt8(ascii: "P"), into: &buffer) { body in
            body.writeInteger(UInt8(0))  // unnamed statement
            writeCString(sql, into: &body)
            body.writeInteger(Int16(parameters.count))
            for parameter in parameters { body.writeInteger(parameter.typeOID) }
        }
        write(UInt8(ascii: "B"), into: &buffer) { body in
            body.writeInteger(UInt8(0))  // unnamed portal
            body.writeInteger(UInt8(0))  // unnamed statement
            body.writeInteger(Int16(parameters.count))
            for parameter in parameters { body.writeInteger(Int16(parameter.binary ? 1 : 0)) }
            body.writeInteger(Int16(parameters.count))
            for parameter in parameters {
                if var value = parameter.value {
                    body.writeInteger(Int32(value.readableBytes))
                    body.writeBuffer(&value)
                } else {
                    body.writeInteger(Int32(-1))
                }
            }
            body.writeInteger(Int16(0))  // every result column as text
        }
        write(UInt8(ascii: "D"), into: &buffer) { body in
            body.writeInteger(UInt8(ascii: "P"))
            body.writeInteger(UInt8(0))
        }
        write(UInt8(ascii: "E"), into: &buffer) { body in
            body.writeInteger(UInt8(0))
            body.writeInteger(Int32(0))  // all rows
        }
        sync(into: &buffer)
    }

    public static func sync(into buffer: inout ByteBuffer) {
        write(UInt8(ascii: "S"), into: &buffer) { _ in }
    }

    /// One CopyData message around `bytes`.
    public static func copyData(_ bytes: UnsafeRawBufferPointer, into buffer: inout ByteBuffer) {
        write(UInt8(ascii: "d"), into: &buffer) { $0.writeBytes(bytes) }
    }

    public static func copyDone(into buffer: inout ByteBuffer) {
        write(UInt8(ascii: "c"), into: &buffer) { _ in }
    }

    public static func copyFail(_ reason: String, into buffer: inout ByteBuffer) {
        write(UInt8(ascii: "f"), into: &buffer) { writeCString(reason, into: &$0) }
    }

    public static func terminate(into buffer: inout ByteBuffer) {
        write(UInt8(ascii: "X"), into: &buffer) { _ in }
    }
}
