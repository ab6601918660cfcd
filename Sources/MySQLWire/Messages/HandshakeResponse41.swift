import NIOCore

/// Handshake Response 41 (client → server), and the SSL Request that is its first 32 bytes.
///
/// capabilities u32 · max_packet_size u32 · charset u8 · filler [23] · username NUL ·
/// auth_response (lenenc) · database NUL · auth_plugin_name NUL · connect attributes (lenenc)
public struct HandshakeResponse41: Sendable {
    public var capabilities: CapabilityFlags
    public var maxPacketSize: UInt32 = 1 << 24
    /// utf8mb4_general_ci, known to MySQL and MariaDB alike.
    public var characterSet: UInt8 = 45
    public var username: String
    public var authResponse: [UInt8]
    public var database: String?
    public var authPluginName: String
    public var attributes: [(String, String)]

    public init(capabilities: CapabilityFlags, username: String, authResponse: [UInt8], database: String?,
                authPluginName: String, attributes: [(String, String)]) {
        self.capabilities = capabilities
        self.username = username
        self.authResponse = authResponse
        self.database = database
        self.authPluginName = authPluginName
        self.attributes = attributes
    }

    func encodeSSLRequest(into buffer: inout ByteBuffer) {
        buffer.writeInteger(capabilities.rawValue, endianness: .little)
        buffer.writeInteger(maxPacketSize, endianness: .little)
        buffer.writeInteger(characterSet)
        buffer.writeRepeatingByte(0, count: 23)
    }

    func encode(into buffer: inout ByteBuffer) {
        encodeSSLRequest(into: &buffer)
        buffer.writeNullTerminatedString(username)
        if capabilities.contains(.pluginAuthLengthEncodedData) {
            buffer.writeLengthEncodedBytes(authResponse)
        } else {
            buffer.writeInteger(UInt8(authResponse.count))
            buffer.writeBytes(authResponse)
        }
        if capabilities.contains(.connectWithDB) { buffer.writeNullTerminatedString(database ?? "") }
        if capabilities.contains(.pluginAuth) { buffer.writeNullTerminatedString(authPluginName) }
        if capabilities.contains(.connectAttributes) {
            var attributeBytes = ByteBuffer()
            for (key, value) in attributes {
                attributeBytes.writeLengthEncodedBytes(Array(key.utf8))
                attributeBytes.writeLengthEncodedBytes(Array(value.utf8))
            }
            buffer.writeLengthEncodedInteger(UInt64(attributeBytes.readableBytes))
            buffer.writeBuffer(&attributeBytes)
        }
    }
}
