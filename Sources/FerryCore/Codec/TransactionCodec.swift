/// A compact binary form of a `Transaction`, for the disk buffer: every value kept exactly
/// (the same `Value` comes back), each table schema written once per transaction.
///
/// Layout (integers little-endian, `varint` = LEB128, `string` = varint length + UTF-8):
/// version · position · event count · gtid? · server id u32 · timestamp i64 · source name ·
/// schema count · schemas · events. A binlog position (versions 1 and 2) is file, offset u64, GTID
/// flavor byte (0 none, 1 MariaDB, 2 MySQL) and its text, then the snapshot step (varint; version
/// 1 records have none). Version 3 records hold a WAL position instead: LSN u64, xid flag byte
/// (0 none, 1 then xid u32), snapshot step (varint); version 4 (the one written for WAL) adds each
/// schema column's native type (optional string) after its charset. Binlog records stay
/// version 2, byte for byte.
/// An event starts with its operation: 1 create, 2 update, 3 delete, 4 read, 5 DDL, 6 a read that
/// ends its table's snapshot, 7 a read that ends the whole snapshot.
public enum TransactionCodec {
    static let version: UInt8 = 4

    public static func encode(_ transaction: Transaction) -> [UInt8] {
        var writer = Writer()
        writer.bytes.reserveCapacity(256)
        writer.byte(transaction.position.wal == nil ? 2 : 4)
        writer.position(transaction.position)
        writer.varint(transaction.events.count)
        writer.optionalString(transaction.gtid)
        writer.fixed(transaction.serverID)
        writer.fixed(UInt64(bitPattern: transaction.timestampMillis))
        writer.string(transaction.events.first?.source.name ?? "")
        var schemaIndex: [ObjectIdentifier: Int] = [:]
        var schemas: [TableSchema] = []
        for event in transaction.events {
            if let schema = event.schema, schemaIndex[ObjectIdentifier(schema)] == nil {
                schemaIndex[ObjectIdentifier(schema)] = schemas.count
                schemas.append(schema)
            }
        }
        writer.varint(schemas.count)
        for schema in schemas { writer.schema(schema, nativeTypes: transaction.position.wal != nil) }
        for event in transaction.events {
            writer.byte(operationCode(event.operation, mark: event.source.snapshotMark))
            writer.varint(event.schema.map { schemaIndex[ObjectIdentifier($0)]! + 1 } ?? 0)
            writer.string(event.table.database)
            writer.string(event.table.table)
            writer.optionalString(event.statement)
            writer.varint(event.schemaChanges.count)
            for change in event.schemaChanges { writer.schemaChange(change) }
            writer.varint(event.source.row)
            writer.row(event.before)
            writer.row(event.after)
        }
        return writer.bytes
    }

    /// The position and number of changes of an encoded transaction, read without decoding the rest.
    public static func summary(of bytes: [UInt8]) throws -> (position: SourcePosition, events: Int) {
        var reader = Reader(bytes: bytes)
        let recordVersion = try reader.byte()
        guard (1...version).contains(recordVersion) else { throw TransactionCodecError(reason: "unknown record version") }
        return (try reader.position(version: recordVersion), try reader.varint())
    }

    /// The operation, and for snapshot rows whether they end a snapshot (6, 7).
    static func operationCode(_ operation: ChangeOperation, mark: SnapshotRowMark) -> UInt8 {
        switch operation {
        case .create: 1
        case .update: 2
        case .delete: 3
        case .read:
            switch mark {
            case .within: 4
            case .lastInTable: 6
            case .last: 7
            }
        case .ddl: 5
        }
    }
}

/// Decodes encoded transactions, sharing one `TableSchema` object per distinct schema so that
/// sinks can group rows of one table (they compare schemas by identity).
public struct TransactionDecoder {
    private var schemas: [ArraySlice<UInt8>: TableSchema] = [:]

    public init() {}

    public mutating func decode(_ bytes: [UInt8]) throws -> Transaction {
        var reader = Reader(bytes: bytes)
        let recordVersion = try reader.byte()
        guard (1...TransactionCodec.version).contains(recordVersion) else { throw TransactionCodecError(reason: "unknown record version") }
        let position = try reader.position(version: recordVersion)
        let count = try reader.varint()
        let gtid = try reader.optionalString()
        let serverID = try reader.fixed32()
        let timestamp = Int64(bitPattern: try reader.fixed64())
        let sourceName = try reader.string()
        var tableSchemas: [TableSchema] = []
        for _ in 0..<(try reader.varint()) {
            let start = reader.index
            let decoded = try reader.schema(nativeTypes: recordVersion >= 4)
            let key = bytes[start..<reader.index]
            if let known = schemas[key] {
                tableSchemas.append(known)
            } else {
                schemas[key] = decoded
                tableSchemas.append(decoded)
            }
        }
        var events: [ChangeEvent] = []
        events.reserveCapacity(count)
        for _ in 0..<count {
            let operation: ChangeOperation
            var mark = SnapshotRowMark.within
            switch try reader.byte() {
            case 1: operation = .create
            case 2: operation = .update
            case 3: operation = .delete
            case 4: operation = .read
            case 5: operation = .ddl
            case 6: (operation, mark) = (.read, .lastInTable)
            case 7: (operation, mark) = (.read, .last)
            case let other: throw TransactionCodecError(reason: "unknown operation \(other)")
            }
            let schemaNumber = try reader.varint()
            guard schemaNumber <= tableSchemas.count else { throw TransactionCodecError(reason: "schema \(schemaNumber) out of range") }
            let table = TableName(database: try reader.string(), table: try reader.string())
            let statement = try reader.optionalString()
            var changes: [SchemaChange] = []
            for _ in 0..<(try reader.varint()) {
                changes.append(try reader.schemaChange())
            }
            let row = try reader.varint()
            let before = try reader.row()
            let after = try reader.row()
            var source = ChangeSource(name: sourceName, serverID: serverID, gtid: gtid, position: position, row: row, timestampMillis: timestamp)
            source.snapshotMark = mark
            events.append(ChangeEvent(operation: operation, table: table, schema: schemaNumber == 0 ? nil : tableSchemas[schemaNumber - 1],
                                      before: before, after: after, statement: statement, schemaChanges: changes, source: source))
        }
        guard reader.index == bytes.count else { throw TransactionCodecError(reason: "\(bytes.count - reader.index) bytes left over") }
        return Transaction(gtid: gtid, position: position, serverID: serverID, timestampMillis: timestamp, events: events)
    }
}

/// An encoded transaction that cannot be read back.
public struct TransactionCodecError: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public var description: String { "buffered transaction cannot be decoded: \(reason)" }
}

private struct Writer {
    var bytes: [UInt8] = []

    mutating func byte(_ value: UInt8) { bytes.append(value) }

    mutating func varint(_ value: Int) { varint(UInt64(value)) }

    mutating func varint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    mutating func fixed(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func fixed(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }

    mutating func string(_ text: String) {
        var text = text
        text.withUTF8 { utf8 in
            varint(utf8.count)
            bytes.append(contentsOf: utf8)
        }
    }

    mutating func optionalString(_ text: String?) {
        if let text {
            byte(1)
            string(text)
        } else {
            byte(0)
        }
    }

    mutating func position(_ sourcePosition: SourcePosition) {
        switch sourcePosition {
        case .binlog(let position):
            string(position.coordinates.file)
            fixed(position.coordinates.offset)
            switch position.gtidPosition {
            case nil: byte(0)
            case .mariadb(let gtid):
                byte(1)
                string(gtid.description)
            case .mysql(let set):
                byte(2)
                string(set.description)
            }
            varint(Int(position.snapshotStep))
        case .wal(let position):
            fixed(position.lsn.value)
            if let xid = position.xid {
                byte(1)
                fixed(xid)
            } else {
                byte(0)
            }
            varint(Int(position.snapshotStep))
        }
    }

    mutating func table(_ name: TableName) {
        string(name.database)
        string(name.table)
    }

    mutating func schemaChange(_ change: SchemaChange) {
        switch change {
        case .createTable(let name):
            byte(1)
            table(name)
        case .dropTable(let name):
            byte(2)
            table(name)
        case .truncateTable(let name):
            byte(3)
            table(name)
        case .renameTable(let from, let to):
            byte(4)
            table(from)
            table(to)
        case .addColumn(let name, let column, let type):
            byte(5)
            table(name)
            string(column)
            string(type)
        case .dropColumn(let name, let column):
            byte(6)
            table(name)
            string(column)
        case .renameColumn(let name, let from, let to):
            byte(7)
            table(name)
            string(from)
            string(to)
        case .modifyColumn(let name, let column, let type):
            byte(8)
            table(name)
            string(column)
            string(type)
        case .unrecognized(let name, let reason):
            byte(9)
            table(name)
            string(reason)
        case .replaceRows(let name):
            byte(10)
            table(name)
        }
    }

    mutating func schema(_ schema: TableSchema, nativeTypes: Bool) {
        string(schema.name.database)
        string(schema.name.table)
        varint(schema.columns.count)
        for column in schema.columns {
            optionalString(column.name)
            string(column.typeName)
            byte(column.nullable ? 1 : 0)
            optionalString(column.charset)
            if nativeTypes { optionalString(column.nativeType) }
        }
        varint(schema.primaryKey.count)
        for index in schema.primaryKey { varint(index) }
    }

    mutating func row(_ row: Row?) {
        guard let row else { return byte(0) }
        byte(1)
        varint(row.count)
        for value in row { self.value(value) }
    }

    mutating func value(_ value: Value) {
        switch value {
        case .null: byte(0)
        case .absent: byte(1)
        case .int(let number):
            byte(2)
            fixed(UInt64(bitPattern: number))
        case .uint(let number):
            byte(3)
            fixed(number)
        case .float(let number):
            byte(4)
            fixed(number.bitPattern)
        case .double(let number):
            byte(5)
            fixed(number.bitPattern)
        case .decimal(let text):
            byte(6)
            string(text)
        case .string(let text):
            byte(7)
            string(text)
        case .bytes(let data):
            byte(8)
            varint(data.count)
            bytes.append(contentsOf: data)
        case .illFormedText(let data):
            byte(19)
            varint(data.count)
            bytes.append(contentsOf: data)
        case .year(let year):
            byte(9)
            varint(Int(year))
        case .date(let date):
            byte(10)
            self.date(date)
        case .time(let time):
            byte(11)
            byte(time.negative ? 1 : 0)
            fixed(time.hours)
            byte(time.minutes)
            byte(time.seconds)
            fixed(time.microseconds)
            byte(time.fsp)
        case .datetime(let datetime):
            byte(12)
            date(datetime.date)
            byte(datetime.hour)
            byte(datetime.minute)
            byte(datetime.second)
            fixed(datetime.microseconds)
            byte(datetime.fsp)
        case .timestamp(let timestamp):
            byte(13)
            fixed(UInt64(bitPattern: timestamp.seconds))
            fixed(timestamp.microseconds)
            byte(timestamp.fsp)
        case .json(let text):
            byte(14)
            string(text)
        case .enumeration(let text):
            byte(15)
            string(text)
        case .set(let members):
            byte(16)
            varint(members.count)
            for member in members { string(member) }
        case .bit(let bits, let width):
            byte(17)
            fixed(bits)
            byte(width)
        case .geometry(let geometry):
            byte(18)
            fixed(geometry.srid)
            varint(geometry.wkb.count)
            bytes.append(contentsOf: geometry.wkb)
        case .bool(let truth):
            byte(20)
            byte(truth ? 1 : 0)
        case .sourceText(let text):
            byte(21)
            string(text)
        }
    }

    mutating func date(_ date: DateValue) {
        varint(Int(date.year))
        byte(date.month)
        byte(date.day)
    }
}

private struct Reader {
    let bytes: [UInt8]
    var index = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func need(_ count: Int) throws {
        guard count >= 0, bytes.count - index >= count else { throw TransactionCodecError(reason: "record ends early at byte \(index)") }
    }

    mutating func byte() throws -> UInt8 {
        try need(1)
        defer { index += 1 }
        return bytes[index]
    }

    mutating func varint() throws -> Int {
        let value = try varint64()
        guard value <= UInt64(Int.max) else { throw TransactionCodecError(reason: "length out of range") }
        return Int(value)
    }

    mutating func varint64() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let next = try byte()
            guard shift < 64 else { throw TransactionCodecError(reason: "varint too long") }
            result |= UInt64(next & 0x7F) << shift
            if next < 0x80 { return result }
            shift += 7
        }
    }

    mutating func fixed32() throws -> UInt32 {
        try need(4)
        var value: UInt32 = 0
        for shift in 0..<4 { value |= UInt32(bytes[index + shift]) << (8 * UInt32(shift)) }
        index += 4
        return value
    }

    mutating func fixed64() throws -> UInt64 {
        try need(8)
        var value: UInt64 = 0
        for shift in 0..<8 { value |= UInt64(bytes[index + shift]) << (8 * UInt64(shift)) }
        index += 8
        return value
    }

    mutating func raw(_ count: Int) throws -> [UInt8] {
        try need(count)
        defer { index += count }
        return Array(bytes[index..<(index + count)])
    }

    mutating func string() throws -> String {
        let count = try varint()
        try need(count)
        defer { index += count }
        return String(decoding: bytes[index..<(index + count)], as: UTF8.self)
    }

    mutating func optionalString() throws -> String? {
        try byte() == 0 ? nil : try string()
    }

    mutating func position(version: UInt8) throws -> SourcePosition {
        if version >= 3 {
            let lsn = LSN(try fixed64())
            let xid: UInt32? = try byte() == 0 ? nil : try fixed32()
            return .wal(WALPosition(lsn: lsn, xid: xid, snapshotStep: UInt32(clamping: try varint())))
        }
        let file = try string()
        let offset = try fixed64()
        let gtid: GTIDPosition?
        switch try byte() {
        case 0: gtid = nil
        case 1:
            let text = try string()
            guard let parsed = MariaDBGTIDPosition(parsing: Substring(text)) else { throw TransactionCodecError(reason: "bad GTID position \(text)") }
            gtid = .mariadb(parsed)
        case 2:
            let text = try string()
            guard let parsed = MySQLGTIDSet(parsing: Substring(text)) else { throw TransactionCodecError(reason: "bad GTID set \(text)") }
            gtid = .mysql(parsed)
        case let other: throw TransactionCodecError(reason: "unknown GTID flavor \(other)")
        }
        let step = version >= 2 ? UInt32(clamping: try varint()) : 0
        return .binlog(BinlogPosition(coordinates: BinlogCoordinates(file: file, offset: offset), gtidPosition: gtid, snapshotStep: step))
    }

    mutating func table() throws -> TableName {
        TableName(database: try string(), table: try string())
    }

    mutating func schemaChange() throws -> SchemaChange {
        switch try byte() {
        case 1: return .createTable(try table())
        case 2: return .dropTable(try table())
        case 3: return .truncateTable(try table())
        case 4: return .renameTable(from: try table(), to: try table())
        case 5: return .addColumn(try table(), column: try string(), type: try string())
        case 6: return .dropColumn(try table(), column: try string())
        case 7: return .renameColumn(try table(), from: try string(), to: try string())
        case 8: return .modifyColumn(try table(), column: try string(), type: try string())
        case 9: return .unrecognized(try table(), reason: try string())
        case 10: return .replaceRows(try table())
        case let other: throw TransactionCodecError(reason: "unknown schema change \(other)")
        }
    }

    mutating func schema(nativeTypes: Bool) throws -> TableSchema {
        let name = TableName(database: try string(), table: try string())
        let count = try varint()
        try need(count)
        var columns: [ColumnSchema] = []
        columns.reserveCapacity(count)
        for _ in 0..<count {
            columns.append(ColumnSchema(name: try optionalString(), typeName: try string(), nullable: try byte() == 1, charset: try optionalString(),
                                        nativeType: nativeTypes ? try optionalString() : nil))
        }
        let keyCount = try varint()
        try need(keyCount)
        var key: [Int] = []
        for _ in 0..<keyCount {
            let column = try varint()
            guard column < count else { throw TransactionCodecError(reason: "key column \(column) out of range") }
            key.append(column)
        }
        return TableSchema(name: name, columns: columns, primaryKey: key)
    }

    mutating func row() throws -> Row? {
        guard try byte() == 1 else { return nil }
        let count = try varint()
        try need(count)
        var row: Row = []
        row.reserveCapacity(count)
        for _ in 0..<count { row.append(try value()) }
        return row
    }

    mutating func value() throws -> Value {
        switch try byte() {
        case 0: return .null
        case 1: return .absent
        case 2: return .int(Int64(bitPattern: try fixed64()))
        case 3: return .uint(try fixed64())
        case 4: return .float(Float(bitPattern: try fixed32()))
        case 5: return .double(Double(bitPattern: try fixed64()))
        case 6: return .decimal(try string())
        case 7: return .string(try string())
        case 8: return .bytes(try raw(try varint()))
        case 9: return .year(UInt16(truncatingIfNeeded: try varint()))
        case 10: return .date(try date())
        case 11:
            return .time(TimeValue(negative: try byte() == 1, hours: try fixed32(), minutes: try byte(), seconds: try byte(),
                                   microseconds: try fixed32(), fsp: try byte()))
        case 12:
            return .datetime(DateTimeValue(date: try date(), hour: try byte(), minute: try byte(), second: try byte(),
                                           microseconds: try fixed32(), fsp: try byte()))
        case 13:
            return .timestamp(TimestampValue(seconds: Int64(bitPattern: try fixed64()), microseconds: try fixed32(), fsp: try byte()))
        case 14: return .json(try string())
        case 15: return .enumeration(try string())
        case 16:
            let count = try varint()
            try need(count)
            var members: [String] = []
            for _ in 0..<count { members.append(try string()) }
            return .set(members)
        case 17: return .bit(try fixed64(), width: try byte())
        case 18:
            let srid = try fixed32()
            return .geometry(GeometryValue(srid: srid, wkb: try raw(try varint())))
        case 19: return .illFormedText(try raw(try varint()))
        case 20: return .bool(try byte() == 1)
        case 21: return .sourceText(try string())
        case let other: throw TransactionCodecError(reason: "unknown value tag \(other)")
        }
    }

    mutating func date() throws -> DateValue {
        DateValue(year: UInt16(truncatingIfNeeded: try varint()), month: try byte(), day: try byte())
    }
}
