import NIOCore

/// Initial Handshake Packet, protocol version 10 (server → client).
///
/// protocol_version u8 (10) · server_version NUL · connection_id u32 · auth_data_1 [8] · 0x00 ·
/// capabilities_low u16 · charset u8 · status u16 · capabilities_high u16 · auth_data_len u8 ·
/// reserved [10] (MariaDB: [6] + extended capabilities u32) · auth_data_2 [max(13, len-8)] ·
/// auth_plugin_name NUL
public struct HandshakeV10: Sendable, Equatable {
    public var serverVersion: String
    public var connectionID: UInt32
    public var capabilities: CapabilityFlags
    public var characterSet: UInt8
    public var statusFlags: UInt16
    /// The 20-byte challenge ("scramble") for password hashing.
    public var authPluginData: [UInt8]
    public var authPluginName: String

    public init(serverVersion: String, connectionID: UInt32, capabilities: CapabilityFlags, characterSet: UInt8,
                statusFlags: UInt16, authPluginData: [UInt8], authPluginName: String) {
        self.serverVersion = serverVersion
        self.connectionID = connectionID
        self.capabilities = capabilities
        self.characterSet = characterSet
        self.statusFlags = statusFlags
        self.authPluginData = authPluginData
        self.authPluginName = authPluginName
    }

    /// MariaDB reports itself as `5.5.5-10.11.6-MariaDB…` to old clients.
    public var isMariaDB: Bool { serverVersion.lowercased().contains("mariadb") }

    public var displayVersion: String {
        serverVersion.hasPrefix("5.5.5-") ? String(serverVersion.dropFirst(6)) : serverVersion
    }

    public static func decode(from payload: ByteBuffer) throws -> HandshakeV10 {
        var buffer = payload
        guard let version = buffer.readInteger(as: UInt8.self) else { throw MySQLWireError.protocolViolation("empty handshake") }
        if version == 0xFF {
            throw MySQLWireError.server(try ERRPacket.decode(from: payload, capabilities: []), context: "the connection")
        }
        guard version == 10 else { throw MySQLWireError.protocolViolation("handshake protocol version \(version), expected 10") }
        guard let serverVersion = buffer.readNullTerminatedString(),
              let connectionID = buffer.readInteger(endianness: .little, as: UInt32.self),
              let part1 = buffer.readBytes(length: 8),
              buffer.readInteger(as: UInt8.self) != nil,
              let capsLow = buffer.readInteger(endianness: .little, as: UInt16.self)
        else { throw MySQLWireError.protocolViolation("truncated handshake") }
        var capabilities = CapabilityFlags(rawValue: UInt32(capsLow))
        var charset: UInt8 = 0, status: UInt16 = 0
        var scramble = part1
        var pluginName = "mysql_native_password"
        if buffer.readableBytes > 0 {
            guard let cs = buffer.readInteger(as: UInt8.self),
                  let st = buffer.readInteger(endianness: .little, as: UInt16.self),
                  let capsHigh = buffer.readInteger(endianness: .little, as: UInt16.self),
                  let authLength = buffer.readInteger(as: UInt8.self),
                  buffer.readBytes(length: 10) != nil
            else { throw MySQLWireError.protocolViolation("truncated handshake") }
            charset = cs
            status = st
            capabilities.insert(CapabilityFlags(rawValue: UInt32(capsHigh) << 16))
            if capabilities.contains(.secureConnection) {
                let length = max(13, Int(authLength) - 8)
                guard let part2 = buffer.readBytes(length: length) else { throw MySQLWireError.protocolViolation("truncated scramble") }
                scramble += part2.last == 0 ? part2.dropLast() : part2[...]
            }
            if capabilities.contains(.pluginAuth) {
                let name = buffer.readNullTerminatedString() ?? buffer.readString(length: buffer.readableBytes) ?? ""
                if !name.isEmpty { pluginName = name }
            }
        }
        return HandshakeV10(serverVersion: serverVersion, connectionID: connectionID, capabilities: capabilities,
                            characterSet: charset, statusFlags: status, authPluginData: scramble, authPluginName: pluginName)
    }
}
