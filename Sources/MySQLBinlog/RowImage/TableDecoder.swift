import Synchronization
import FerryCore
import NIOCore

/// Everything needed to turn a table's row images into `Row`s: one `ColumnDecoder` per column and
/// the `TableSchema` that names them. Built once per TABLE_MAP and shared by its rows events.
public struct TableDecoder: Sendable {
    public private(set) var schema: TableSchema
    let columns: [ColumnDecoder]
    let details: ColumnDetails
    /// Columns whose text was not well-formed UTF-8 (decoded as `.illFormedText`), for the reader to
    /// report (shared by copies of this decoder).
    public let textRepairs = TextRepairs()

    /// Names and keys from outside the binlog (information_schema), used when the TABLE_MAP event
    /// carries no optional metadata (`binlog_row_metadata=MINIMAL`).
    public struct FallbackMetadata: Sendable {
        public var columnNames: [String]
        public var unsigned: [Bool]
        public var charsets: [String?]
        public var enumValues: [Int: [String]]
        public var setValues: [Int: [String]]
        public var primaryKey: [Int]

        public init(columnNames: [String], unsigned: [Bool], charsets: [String?], enumValues: [Int: [String]],
                    setValues: [Int: [String]], primaryKey: [Int]) {
            self.columnNames = columnNames
            self.unsigned = unsigned
            self.charsets = charsets
            self.enumValues = enumValues
            self.setValues = setValues
            self.primaryKey = primaryKey
        }
    }

    /// - Parameters:
    ///   - collations: the server's collation id → character set name table, when known;
    ///     otherwise `CharacterSet.forCollation` decides.
    ///   - fallback: used only for what the event itself does not carry, and only when its
    ///     column count matches the event's.
    public init(tableMap: TableMapEvent, mariadb: Bool, collations: [UInt64: String] = [:],
                fallback: FallbackMetadata? = nil) {
        let fallback = fallback.flatMap { $0.columnNames.count == tableMap.columnCount ? $0 : nil }
        let optional = tableMap.optional
        func charset(forCollation id: UInt64?) -> CharacterSet {
            guard let id else { return .utf8 }
            return collations[id].map(CharacterSet.named) ?? CharacterSet.forCollation(id)
        }
        var details = ColumnDetails()
        func note(_ text: String) -> ColumnDecoder {
            details.notes.append(text)
            return .unsupported(note: details.notes.count - 1)
        }
        var decoders: [ColumnDecoder] = []
        var columns: [ColumnSchema] = []
        decoders.reserveCapacity(tableMap.columnCount)
        for index in 0..<tableMap.columnCount {
            let meta = Int(tableMap.columnMetadata[index])
            let unsigned = optional.unsigned?[index] ?? fallback?.unsigned[index] ?? false
            let columnCharset: CharacterSet = {
                if let id = optional.collations[index] { return charset(forCollation: id) }
                if let name = fallback?.charsets[index] { return CharacterSet.named(name) }
                return .utf8
            }()
            if columnCharset == .unsupported {
                details.characterSetNames[index] = optional.collations[index].map { id in collations[id] ?? "of collation \(id)" }
                    ?? fallback?.charsets[index] ?? "unknown"
            }
            let enumSetCharset = optional.enumSetCollations[index].map { charset(forCollation: $0) } ?? .utf8
            let bytesPerCharacter = columnCharset.maximumBytesPerCharacter ?? CharacterSet.maximumBytesPerCharacter(forCollation: optional.collations[index])
            func memberNames(_ raw: [[UInt8]]?, _ fallbackNames: [String]?) -> [String] {
                if let raw {
                    return raw.map { bytes in bytes.withUnsafeBytes { enumSetCharset.decode($0) ?? String(decoding: $0, as: UTF8.self) } }
                }
                return fallbackNames ?? []
            }
            let decoder: ColumnDecoder
            var typeName: String
            switch tableMap.realType(index) {
            case .tiny: decoder = .integer(byteCount: 1, unsigned: unsigned); typeName = "tinyint"
            case .short: decoder = .integer(byteCount: 2, unsigned: unsigned); typeName = "smallint"
            case .int24: decoder = .integer(byteCount: 3, unsigned: unsigned); typeName = "mediumint"
            case .long: decoder = .integer(byteCount: 4, unsigned: unsigned); typeName = "int"
            case .longlong: decoder = .integer(byteCount: 8, unsigned: unsigned); typeName = "bigint"
            case .float: decoder = .float; typeName = "float"
            case .double: decoder = .double; typeName = "double"
            case .newDecimal:
                let precision = meta >> 8, scale = meta & 0xFF
                decoder = .decimal(precision: precision, scale: scale)
                typeName = "decimal(\(precision),\(scale))"
            case .year: decoder = .year; typeName = "year"
            case .date, .newDate: decoder = .date; typeName = "date"
            case .time:
                decoder = tableMap.hiresTemporalColumns.contains(index) ? note(Self.hires(tableMap, index, optional)) : .time
                typeName = "time"
            case .time2: decoder = .time2(fsp: UInt8(meta)); typeName = meta > 0 ? "time(\(meta))" : "time"
            case .datetime:
                decoder = tableMap.hiresTemporalColumns.contains(index) ? note(Self.hires(tableMap, index, optional)) : .datetime
                typeName = "datetime"
            case .datetime2: decoder = .datetime2(fsp: UInt8(meta)); typeName = meta > 0 ? "datetime(\(meta))" : "datetime"
            case .timestamp:
                decoder = tableMap.hiresTemporalColumns.contains(index) ? note(Self.hires(tableMap, index, optional)) : .timestamp
                typeName = "timestamp"
            case .timestamp2: decoder = .timestamp2(fsp: UInt8(meta)); typeName = meta > 0 ? "timestamp(\(meta))" : "timestamp"
            case .varchar, .varString:
                decoder = .string(lengthBytes: meta < 256 ? 1 : 2, charset: columnCharset, padTo: nil)
                typeName = columnCharset == .binary ? "varbinary(\(meta))" : "varchar(\(max(1, meta / bytesPerCharacter)))"
            case .string where tableMap.mariadbDataTypes[index] != nil:
                let type = tableMap.mariadbDataTypes[index]!
                decoder = .mariadbType(type)
                typeName = type.rawValue
            case .string:
                let (length, _) = Self.stringLength(meta)
                decoder = .string(lengthBytes: length < 256 ? 1 : 2, charset: columnCharset,
                                  padTo: columnCharset == .binary ? length : nil)
                typeName = columnCharset == .binary ? "binary(\(length))" : "char(\(length / bytesPerCharacter))"
            case .blob, .tinyBlob, .mediumBlob, .longBlob:
                decoder = .blob(lengthBytes: meta, charset: columnCharset)
                typeName = Self.blobName(meta, binary: columnCharset == .binary)
            case .json: decoder = .json(lengthBytes: meta); typeName = "json"
            case .geometry: decoder = .geometry(lengthBytes: meta); typeName = "geometry"
            case .bit:
                let bits = (meta >> 8) * 8 + (meta & 0xFF)
                decoder = .bit(bits: bits)
                typeName = "bit(\(bits))"
            case .enumeration:
                let names = memberNames(optional.enumValues[index], fallback?.enumValues[index])
                details.members.append(names)
                decoder = .enumeration(byteCount: meta & 0xFF, members: details.members.count - 1)
                typeName = "enum(" + names.map(Self.quoted).joined(separator: ",") + ")"
            case .set:
                let names = memberNames(optional.setValues[index], fallback?.setValues[index])
                details.members.append(names)
                decoder = .set(byteCount: meta & 0xFF, members: details.members.count - 1)
                typeName = "set(" + names.map(Self.quoted).joined(separator: ",") + ")"
            case .null: decoder = .null; typeName = "null"
            case .decimal, .typedArray, .vector, nil:
                decoder = note("column \(index + 1) of \(tableMap.database).\(tableMap.table) has binlog type \(tableMap.columnTypes[index]), which Ferry does not decode")
                typeName = "unknown(\(tableMap.columnTypes[index]))"
            }
            if unsigned, tableMap.realType(index)?.isNumeric == true { typeName += " unsigned" }
            decoders.append(decoder)
            let charsetName = columnCharset == .utf8 && bytesPerCharacter == 3 ? "utf8mb3" : columnCharset.serverName
            columns.append(ColumnSchema(name: optional.columnNames?[safe: index] ?? fallback?.columnNames[index],
                                        typeName: typeName, nullable: tableMap.nullable[index],
                                        charset: tableMap.isCharacterColumn(index, mariadb: mariadb) && tableMap.mariadbDataTypes[index] == nil ? charsetName : nil))
        }
        self.columns = decoders
        self.details = details
        self.schema = TableSchema(name: TableName(database: tableMap.database, table: tableMap.table), columns: columns,
                                  primaryKey: optional.primaryKey ?? fallback?.primaryKey ?? [])
    }

    /// MariaDB pre-10.1 temporal columns with fractional seconds: not decoded; the error, with the fix.
    private static func hires(_ map: TableMapEvent, _ index: Int, _ optional: TableMapEvent.OptionalMetadata) -> String {
        let name = optional.columnNames?[safe: index] ?? "#\(index + 1)"
        return "column \(name) of \(map.database).\(map.table) uses MariaDB's pre-10.1 temporal format with fractional seconds, which Ferry does not decode; convert it with `ALTER TABLE \(map.database).\(map.table) FORCE` (with mysql56_temporal_format=ON)"
    }

    /// An ENUM/SET member as a SQL string literal.
    static func quoted(_ name: String) -> String {
        var text = "'"
        for character in name {
            if character == "'" { text += "''" } else if character == "\\" { text += "\\\\" } else { text.append(character) }
        }
        return text + "'"
    }

    /// CHAR's real length: the top nibble pair of the type byte holds bits 8–9 of the length.
    public static func stringLength(_ meta: Int) -> (length: Int, realType: UInt8) {
        let first = UInt8(meta >> 8), second = meta & 0xFF
        if meta >= 256, first & 0x30 != 0x30 {
            return (second | Int((first & 0x30) ^ 0x30) << 4, first | 0x30)
        }
        return (meta >= 256 ? second : meta, first)
    }

    private static func blobName(_ lengthBytes: Int, binary: Bool) -> String {
        let prefix = ["", "tiny", "", "medium", "long"][min(lengthBytes, 4)]
        return prefix + (binary ? "blob" : "text")
    }

    /// Decodes the after image of a MySQL PARTIAL_UPDATE_ROWS row: `value_options` (lenenc), then
    /// when it has PARTIAL_JSON_UPDATES (1) a bitmap with one bit per JSON column of the table, then
    /// a normal image in which the flagged JSON columns hold diffs against the before image.
    func decodePartialAfterImage(from buffer: inout ByteBuffer, present: [UInt8], presentCount: Int, before: Row) throws -> Row {
        let options = try buffer.readLengthEncodedInteger()
        var partial = Set<Int>()
        if options & 1 != 0 {
            let jsonColumns = columns.indices.filter { if case .json = columns[$0] { true } else { false } }
            let bits = try buffer.readBytesChecked(length: (jsonColumns.count + 7) / 8)
            for (position, column) in jsonColumns.enumerated() where bits[position >> 3] & (1 << (position & 7)) != 0 {
                partial.insert(column)
            }
        }
        return try decodeRow(from: &buffer, present: present, presentCount: presentCount, partialJSON: partial, before: before)
    }

    /// Reads a JSON diff list and applies it to the column's before value.
    private func applyJSONDiffs(column index: Int, from buffer: inout ByteBuffer, before: Row?) throws -> Value {
        guard case .json(let lengthBytes) = columns[index] else {
            throw BinlogDecodingError(.invalid("partial update flag on non-JSON column \(index + 1)"))
        }
        let length = Int(try buffer.readUnsignedLE(byteCount: lengthBytes))
        var diffs = try buffer.readSliceChecked(length: length)
        guard let before, index < before.count, case .json(let original) = before[index] else {
            throw BinlogDecodingError(.unsupportedColumn(
                "partial JSON update of column \(schema.columnName(index)) of \(schema.name) has no before image to apply it to; set binlog_row_image=FULL (or binlog_row_value_options='') on the source"))
        }
        var document = try JSONDocument.parse(original)
        while diffs.readableBytes > 0 {
            let code: UInt8 = try diffs.readLE()
            guard let operation = JSONDocument.Operation(rawValue: code) else {
                throw BinlogDecodingError(.invalid("JSON diff operation \(code)"))
            }
            let path = try JSONDocument.parsePath(try diffs.readLengthEncodedText())
            var value: JSONDocument? = nil
            if operation != .remove {
                let dataLength = try diffs.readLengthEncodedCount()
                let data = try diffs.readBytesChecked(length: dataLength)
                value = try JSONDocument.parse(try data.withUnsafeBytes { try JSONBinaryDecoder.decode($0) })
            }
            try document.apply(operation, at: path, value: value)
        }
        return .json(document.text)
    }

    /// Decodes one row image. `present` is the event's columns bitmap; columns in `partialJSON`
    /// hold diffs against `before` (MySQL partial JSON updates).
    @inline(__always)
    func decodeRow(from buffer: inout ByteBuffer, present: [UInt8], presentCount: Int,
                   partialJSON: Set<Int> = [], before: Row? = nil) throws -> Row {
        let nullBytes = (presentCount + 7) / 8
        guard let nullBits = buffer.readSlice(length: nullBytes) else {
            throw BinlogDecodingError(.truncated(needed: nullBytes, available: buffer.readableBytes))
        }
        let nullStart = nullBits.readerIndex
        var row = Row()
        row.reserveCapacity(columns.count)
        var presentIndex = 0
        for index in 0..<columns.count {
            guard present[index >> 3] & (1 << (index & 7)) != 0 else {
                row.append(.absent)
                continue
            }
            let nullByte = nullBits.getInteger(at: nullStart + (presentIndex >> 3), as: UInt8.self) ?? 0
            let isNull = nullByte & (1 << (presentIndex & 7)) != 0
            presentIndex += 1
            if isNull {
                row.append(.null)
            } else if !partialJSON.isEmpty, partialJSON.contains(index) {
                row.append(try applyJSONDiffs(column: index, from: &buffer, before: before))
            } else {
                do {
                    var repaired = false
                    row.append(try columns[index].read(from: &buffer, details: details, repaired: &repaired))
                    if repaired { textRepairs.record(column: index) }
                } catch let error as BinlogDecodingError {
                    throw naming(index, in: error)
                }
            }
        }
        return row
    }

    /// A column's decoding error, with the column named where the decoder could not say it.
    private func naming(_ index: Int, in error: BinlogDecodingError) -> BinlogDecodingError {
        guard case .unsupportedColumn(var text) = error.kind, !text.hasPrefix("column ") else { return error }
        if let set = details.characterSetNames[index] { text = "character set \(set) cannot be decoded exactly" }
        var named = error
        named.kind = .unsupportedColumn("column \(schema.columnName(index)) of \(schema.name) (\(schema.columns[index].typeName)): \(text)")
        return named
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}

extension TableDecoder {
    /// Uses the interned schema object for this table when its shape is unchanged.
    public mutating func intern(in interner: inout TableSchemaInterner) {
        schema = interner.intern(schema)
    }
}

/// Counts, per column, values whose text held ill-formed bytes (`.illFormedText`). Decoders
/// record; the reader takes the counts after each rows event to log and count them.
public final class TextRepairs: Sendable {
    private let counts = Mutex<[Int: Int]>([:])

    public init() {}

    func record(column: Int) {
        counts.withLock { $0[column, default: 0] += 1 }
    }

    /// The counts since the last call, by column index; empty when there were none.
    public func take() -> [Int: Int] {
        counts.withLock { counts in
            defer { counts = [:] }
            return counts
        }
    }
}
