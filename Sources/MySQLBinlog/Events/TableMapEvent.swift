import NIOCore

/// TABLE_MAP_EVENT (type 19): maps a table id to a table and its column types.
///
/// Post-header: table_id u48 (u32 on old servers) · flags u16.
/// Body: db_len u8 · db · NUL · table_len u8 · table · NUL · column_count lenenc ·
/// types u8[n] · metadata_len lenenc · metadata · null_bitmap · optional metadata (TLV, from
/// `binlog_row_metadata`: signedness, charsets, names, enum/set values, geometry types, keys).
public struct TableMapEvent: Sendable, Equatable {
    public var tableID: UInt64
    public var flags: UInt16
    public var database: String
    public var table: String
    public var columnTypes: [UInt8]
    /// Per-column metadata as read (see `ColumnType.metadataLength`), 0 when none.
    public var columnMetadata: [UInt16]
    public var nullable: [Bool]
    /// Columns that are MariaDB pre-10.1 "hires" TIME/DATETIME/TIMESTAMP with fractional seconds.
    public var hiresTemporalColumns: [Int]
    /// MariaDB's UUID/INET4/INET6 columns, which the event describes as BINARY(n); filled in
    /// from information_schema by the reader.
    public var mariadbDataTypes: [Int: MariaDBDataType] = [:]
    public var optional: OptionalMetadata

    /// The `binlog_row_metadata` part of the event; every field is `nil` when the server did not send it.
    public struct OptionalMetadata: Sendable, Equatable {
        /// Per column: true for UNSIGNED numeric columns.
        public var unsigned: [Bool]?
        public var columnNames: [String]?
        /// Per column: collation id, for character columns.
        public var collations: [Int: UInt64] = [:]
        /// Per column: collation id for ENUM and SET columns.
        public var enumSetCollations: [Int: UInt64] = [:]
        /// Per ENUM column: member names as raw bytes in the column's charset.
        public var enumValues: [Int: [[UInt8]]] = [:]
        public var setValues: [Int: [[UInt8]]] = [:]
        public var geometryTypes: [Int: UInt64] = [:]
        /// Primary key column indexes in key order.
        public var primaryKey: [Int]?
        /// Column visibility (MySQL 8.0.23+).
        public var visibility: [Bool]?

        public init() {}
    }

    public init(tableID: UInt64, flags: UInt16, database: String, table: String, columnTypes: [UInt8],
                columnMetadata: [UInt16], nullable: [Bool], hiresTemporalColumns: [Int] = [], optional: OptionalMetadata = .init()) {
        self.tableID = tableID
        self.flags = flags
        self.database = database
        self.table = table
        self.columnTypes = columnTypes
        self.columnMetadata = columnMetadata
        self.nullable = nullable
        self.hiresTemporalColumns = hiresTemporalColumns
        self.optional = optional
    }

    public var columnCount: Int { columnTypes.count }

    /// The type after resolving what STRING hides (ENUM, SET) from its metadata.
    public func realType(_ column: Int) -> ColumnType? {
        guard let type = ColumnType(rawValue: columnTypes[column]) else { return nil }
        if type == .string {
            let meta = columnMetadata[column]
            if meta >= 256 {
                let first = UInt8(meta >> 8)
                let resolved = first & 0x30 != 0x30 ? first | 0x30 : first
                if resolved == ColumnType.enumeration.rawValue { return .enumeration }
                if resolved == ColumnType.set.rawValue { return .set }
            }
        }
        return type
    }

    func isCharacterColumn(_ column: Int, mariadb: Bool) -> Bool {
        switch realType(column) {
        case .string, .varString, .varchar, .blob, .tinyBlob, .mediumBlob, .longBlob: true
        case .geometry: mariadb
        default: false
        }
    }

    func isEnumOrSet(_ column: Int) -> Bool {
        let type = realType(column)
        return type == .enumeration || type == .set
    }

    /// The table id at the start of a TABLE_MAP body, without decoding the rest.
    static func tableID(of body: ByteBuffer, postHeaderLength: Int) -> UInt64? {
        var reader = body
        return try? reader.readUnsignedLE(byteCount: postHeaderLength == 6 ? 4 : 6)
    }

    static func decode(from body: inout ByteBuffer, postHeaderLength: Int, mariadb: Bool) throws -> TableMapEvent {
        let tableID = try body.readUnsignedLE(byteCount: postHeaderLength == 6 ? 4 : 6)
        let flags: UInt16 = try body.readLE()
        if postHeaderLength > 8 { try body.skipChecked(postHeaderLength - 8) }
        let databaseLength: UInt8 = try body.readLE()
        let database = try body.readTextChecked(length: Int(databaseLength))
        try body.skipChecked(1)
        let tableLength: UInt8 = try body.readLE()
        let table = try body.readTextChecked(length: Int(tableLength))
        try body.skipChecked(1)
        let columnCount = try body.readLengthEncodedCount()
        let types = try body.readBytesChecked(length: columnCount)
        let metadataLength = try body.readLengthEncodedCount()
        var metadataBytes = try body.readSliceChecked(length: metadataLength)
        let (metadata, hires) = try decodeColumnMetadata(types: types, from: &metadataBytes)
        let nullBits = try body.readBytesChecked(length: (columnCount + 7) / 8)
        let nullable = (0..<columnCount).map { nullBits[$0 >> 3] & (1 << ($0 & 7)) != 0 }
        var event = TableMapEvent(tableID: tableID, flags: flags, database: database, table: table,
                                  columnTypes: types, columnMetadata: metadata, nullable: nullable,
                                  hiresTemporalColumns: hires)
        try event.decodeOptionalMetadata(from: &body, mariadb: mariadb)
        return event
    }

    /// Reads per-column metadata. MariaDB's pre-10.1 temporal types with fractional seconds carry a
    /// metadata byte that no documented layout has; when the lengths only add up that way, those
    /// columns are reported in `hires`.
    private static func decodeColumnMetadata(types: [UInt8], from bytes: inout ByteBuffer) throws -> ([UInt16], [Int]) {
        let oldTemporal: Set<UInt8> = [ColumnType.timestamp.rawValue, ColumnType.time.rawValue, ColumnType.datetime.rawValue]
        let standardLength = types.reduce(0) { $0 + (ColumnType(rawValue: $1)?.metadataLength ?? 0) }
        let oldTemporalCount = types.filter { oldTemporal.contains($0) }.count
        let hiresLayout = standardLength != bytes.readableBytes && oldTemporalCount > 0
            && standardLength + oldTemporalCount == bytes.readableBytes
        var metadata: [UInt16] = []
        metadata.reserveCapacity(types.count)
        var hires: [Int] = []
        for (index, code) in types.enumerated() {
            guard let type = ColumnType(rawValue: code) else {
                throw BinlogDecodingError(.unsupportedColumn("column \(index + 1) has unknown type code \(code)"))
            }
            switch type {
            case .string, .newDecimal, .enumeration, .set:
                let first: UInt8 = try bytes.readLE()
                let second: UInt8 = try bytes.readLE()
                metadata.append(UInt16(first) << 8 | UInt16(second))
            case .varchar, .varString, .bit:
                metadata.append(try bytes.readLE(UInt16.self))
            case .timestamp, .time, .datetime:
                if hiresLayout {
                    let decimals: UInt8 = try bytes.readLE()
                    if decimals > 0 { hires.append(index) }
                    metadata.append(UInt16(decimals))
                } else {
                    metadata.append(0)
                }
            default:
                metadata.append(type.metadataLength == 1 ? UInt16(try bytes.readLE(UInt8.self)) : 0)
            }
        }
        guard bytes.readableBytes == 0 else {
            throw BinlogDecodingError(.invalid("TABLE_MAP column metadata has \(bytes.readableBytes) unexpected bytes"))
        }
        return (metadata, hires)
    }

    // MARK: - Optional metadata

    private enum OptionalField: UInt8 {
        case signedness = 1
        case defaultCharset = 2
        case columnCharset = 3
        case columnName = 4
        case setStringValue = 5
        case enumStringValue = 6
        case geometryType = 7
        case simplePrimaryKey = 8
        case primaryKeyWithPrefix = 9
        case enumAndSetDefaultCharset = 10
        case enumAndSetColumnCharset = 11
        case columnVisibility = 12
    }

    private mutating func decodeOptionalMetadata(from body: inout ByteBuffer, mariadb: Bool) throws {
        let characterColumns = (0..<columnCount).filter { isCharacterColumn($0, mariadb: mariadb) }
        let enumSetColumns = (0..<columnCount).filter { isEnumOrSet($0) }
        while body.readableBytes > 0 {
            let code: UInt8 = try body.readLE()
            let length = try body.readLengthEncodedCount()
            var value = try body.readSliceChecked(length: length)
            switch OptionalField(rawValue: code) {
            case .signedness:
                let numeric = (0..<columnCount).filter { ColumnType(rawValue: columnTypes[$0])?.isNumeric == true }
                var unsigned = [Bool](repeating: false, count: columnCount)
                let bits = try value.readBytesChecked(length: value.readableBytes)
                for (position, column) in numeric.enumerated() where position / 8 < bits.count {
                    unsigned[column] = bits[position / 8] & (0x80 >> (position % 8)) != 0
                }
                optional.unsigned = unsigned
            case .defaultCharset:
                optional.collations = try Self.decodeDefaultCharset(&value, columns: characterColumns)
            case .columnCharset:
                optional.collations = try Self.decodeColumnCharsets(&value, columns: characterColumns)
            case .enumAndSetDefaultCharset:
                optional.enumSetCollations = try Self.decodeDefaultCharset(&value, columns: enumSetColumns)
            case .enumAndSetColumnCharset:
                optional.enumSetCollations = try Self.decodeColumnCharsets(&value, columns: enumSetColumns)
            case .columnName:
                var names: [String] = []
                while value.readableBytes > 0 { names.append(try value.readLengthEncodedText()) }
                optional.columnNames = names
            case .setStringValue, .enumStringValue:
                let wanted: ColumnType = code == OptionalField.setStringValue.rawValue ? .set : .enumeration
                var members: [Int: [[UInt8]]] = [:]
                for column in (0..<columnCount) where realType(column) == wanted {
                    guard value.readableBytes > 0 else { break }
                    let count = try value.readLengthEncodedCount()
                    var names: [[UInt8]] = []
                    names.reserveCapacity(count)
                    for _ in 0..<count {
                        let nameLength = try value.readLengthEncodedCount()
                        names.append(try value.readBytesChecked(length: nameLength))
                    }
                    members[column] = names
                }
                if wanted == .set { optional.setValues = members } else { optional.enumValues = members }
            case .geometryType:
                for column in (0..<columnCount) where realType(column) == .geometry {
                    guard value.readableBytes > 0 else { break }
                    optional.geometryTypes[column] = try value.readLengthEncodedInteger()
                }
            case .simplePrimaryKey:
                var key: [Int] = []
                while value.readableBytes > 0 { key.append(try checkedColumn(value.readLengthEncodedInteger())) }
                optional.primaryKey = key
            case .primaryKeyWithPrefix:
                var key: [Int] = []
                while value.readableBytes > 0 {
                    key.append(try checkedColumn(value.readLengthEncodedInteger()))
                    _ = try value.readLengthEncodedInteger()
                }
                optional.primaryKey = key
            case .columnVisibility:
                let bits = try value.readBytesChecked(length: value.readableBytes)
                optional.visibility = (0..<columnCount).map { $0 / 8 < bits.count && bits[$0 / 8] & (0x80 >> ($0 % 8)) != 0 }
            case nil:
                continue
            }
        }
    }

    private func checkedColumn(_ raw: UInt64) throws -> Int {
        guard raw < UInt64(columnCount) else {
            throw BinlogDecodingError(.invalid("primary key names column \(raw) of \(columnCount)"))
        }
        return Int(raw)
    }

    /// Default collation, then (index among the listed columns, collation) pairs for exceptions.
    private static func decodeDefaultCharset(_ value: inout ByteBuffer, columns: [Int]) throws -> [Int: UInt64] {
        let defaultCollation = try value.readLengthEncodedInteger()
        var exceptions: [UInt64: UInt64] = [:]
        while value.readableBytes > 0 {
            let index = try value.readLengthEncodedInteger()
            exceptions[index] = try value.readLengthEncodedInteger()
        }
        var result: [Int: UInt64] = [:]
        for (position, column) in columns.enumerated() {
            result[column] = exceptions[UInt64(position)] ?? defaultCollation
        }
        return result
    }

    private static func decodeColumnCharsets(_ value: inout ByteBuffer, columns: [Int]) throws -> [Int: UInt64] {
        var result: [Int: UInt64] = [:]
        for column in columns {
            guard value.readableBytes > 0 else { break }
            result[column] = try value.readLengthEncodedInteger()
        }
        return result
    }
}
