import NIOCore

/// OK_Packet: header 0x00 (or 0xFE at the end of a result set with CLIENT_DEPRECATE_EOF) ·
/// affected_rows lenenc · last_insert_id lenenc · status u16 · warnings u16 · info
public struct OKPacket: Sendable, Equatable {
    public var affectedRows: UInt64
    public var lastInsertID: UInt64
    public var statusFlags: UInt16
    public var warnings: UInt16

    public init(affectedRows: UInt64, lastInsertID: UInt64, statusFlags: UInt16, warnings: UInt16) {
        self.affectedRows = affectedRows
        self.lastInsertID = lastInsertID
        self.statusFlags = statusFlags
        self.warnings = warnings
    }

    public static func decode(from payload: ByteBuffer) throws -> OKPacket {
        var buffer = payload
        buffer.moveReaderIndex(forwardBy: 1)
        guard let affected = buffer.readLengthEncodedInteger(), let lastID = buffer.readLengthEncodedInteger() else {
            throw MySQLWireError.protocolViolation("truncated OK packet")
        }
        let status = buffer.readInteger(endianness: .little, as: UInt16.self) ?? 0
        let warnings = buffer.readInteger(endianness: .little, as: UInt16.self) ?? 0
        return OKPacket(affectedRows: affected, lastInsertID: lastID, statusFlags: status, warnings: warnings)
    }
}

/// ERR_Packet: 0xFF · error_code u16 · ('#' sql_state [5]) · message
public struct ERRPacket: Sendable, Equatable {
    public var errorCode: UInt16
    public var sqlState: String
    public var message: String

    public init(errorCode: UInt16, sqlState: String, message: String) {
        self.errorCode = errorCode
        self.sqlState = sqlState
        self.message = message
    }

    public static func decode(from payload: ByteBuffer, capabilities: CapabilityFlags) throws -> ERRPacket {
        var buffer = payload
        guard buffer.readInteger(as: UInt8.self) == 0xFF, let code = buffer.readInteger(endianness: .little, as: UInt16.self) else {
            throw MySQLWireError.protocolViolation("truncated ERR packet")
        }
        var state = "HY000"
        if buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == UInt8(ascii: "#"), buffer.readableBytes >= 6 {
            buffer.moveReaderIndex(forwardBy: 1)
            state = buffer.readString(length: 5) ?? state
        }
        return ERRPacket(errorCode: code, sqlState: state, message: buffer.readString(length: buffer.readableBytes) ?? "")
    }
}

/// Column Definition 41 of a text result set; only what Ferry uses is kept.
/// catalog · schema · table · org_table · name · org_name (lenenc strings) · 0x0C · charset u16 ·
/// column_length u32 · type u8 · flags u16 · decimals u8
public struct ColumnDefinition41: Sendable, Equatable {
    public var name: String
    public var characterSet: UInt16
    public var type: UInt8
    public var flags: UInt16

    public init(name: String, characterSet: UInt16, type: UInt8, flags: UInt16) {
        self.name = name
        self.characterSet = characterSet
        self.type = type
        self.flags = flags
    }

    public static func decode(from payload: ByteBuffer) throws -> ColumnDefinition41 {
        var buffer = payload
        for _ in 0..<4 {
            guard buffer.readLengthEncodedSlice() != nil else { throw MySQLWireError.protocolViolation("truncated column definition") }
        }
        guard let name = buffer.readLengthEncodedString(), buffer.readLengthEncodedSlice() != nil,
              buffer.readLengthEncodedInteger() != nil,
              let charset = buffer.readInteger(endianness: .little, as: UInt16.self),
              buffer.readInteger(endianness: .little, as: UInt32.self) != nil,
              let type = buffer.readInteger(as: UInt8.self),
              let flags = buffer.readInteger(endianness: .little, as: UInt16.self)
        else { throw MySQLWireError.protocolViolation("truncated column definition") }
        return ColumnDefinition41(name: name, characterSet: charset, type: type, flags: flags)
    }
}
