import FerryCore
import MySQLBinlog
import MySQLWire

/// A table as the snapshot reads it. Its decoder is the one the binlog would build from the
/// table's TABLE_MAP (synthesised here from information_schema), so snapshot rows carry the same
/// schema and exactly the same values as streamed rows of the same data.
struct SnapshotTable: Sendable {
    let name: TableName
    let decoder: TableDecoder
    /// Columns that order and split the table into chunks; empty when it has no usable key.
    let keyColumns: [Int]
    /// Where the key came from, for logs and `ferry status`.
    let keySource: KeySource
    /// `SELECT` list in column order.
    let selectList: String

    enum KeySource: String, Sendable {
        case primaryKey = "primary key"
        case configured = "configured key"
        case uniqueIndex = "unique index"
        case none = "no key"
    }

    var schema: TableSchema { decoder.schema }
    var quotedName: String { "\(backquoted(name.database)).\(backquoted(name.table))" }
    var quotedKeyColumns: [String] { keyColumns.map { backquoted(schema.columnName($0)) } }

    /// Describes `name` from information_schema. `keyOverride` names the columns to use as its key
    /// (the pipeline's `mapping.key`).
    static func load(_ name: TableName, keyOverride: [String]?, query: MySQLConnection, server: ServerFacts) async throws -> SnapshotTable {
        let db = name.database.replacingSingleQuotes, table = name.table.replacingSingleQuotes
        let columns = try await query.query("""
            SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, CHARACTER_OCTET_LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE,
                   DATETIME_PRECISION, COLLATION_NAME FROM information_schema.COLUMNS
            WHERE TABLE_SCHEMA = '\(db)' AND TABLE_NAME = '\(table)' ORDER BY ORDINAL_POSITION
            """)
        guard !columns.rows.isEmpty else {
            throw FerryError(code: .snapshotTableMissing, message: "table \(name) does not exist on the source",
                             context: [("table", name.description)], fix: "check the pipeline's tables: globs and the table name")
        }
        var builder = TableMapBuilder(name: name, mariadb: server.isMariaDB, collationIDs: server.collationIDs)
        for row in columns.rows {
            try builder.add(name: row[0] ?? "", dataType: (row[1] ?? "").lowercased(), columnType: (row[2] ?? "").lowercased(),
                            nullable: row[3] == "YES", octetLength: row[4].flatMap { Int($0) }, precision: row[5].flatMap { Int($0) },
                            scale: row[6].flatMap { Int($0) }, fsp: row[7].flatMap { Int($0) }, collation: row[8])
        }
        let names = builder.names
        // Unordered, the server lists a table's keys in its own order: the primary key, then
        // unique keys without nullable parts, then the rest.
        let indexes = try await query.query("""
            SELECT INDEX_NAME, COLUMN_NAME, NON_UNIQUE, SEQ_IN_INDEX FROM information_schema.STATISTICS
            WHERE TABLE_SCHEMA = '\(db)' AND TABLE_NAME = '\(table)'
            """)
        var unique: [(index: String, columns: [(sequence: Int, column: Int)])] = []
        for row in indexes.rows where row[2] == "0" {
            guard let indexName = row[0], let column = row[1].flatMap({ names.firstIndex(of: $0) }) else { continue }
            let part = (sequence: row[3].flatMap { Int($0) } ?? 0, column: column)
            if let at = unique.firstIndex(where: { $0.index == indexName }) { unique[at].columns.append(part) } else { unique.append((indexName, [part])) }
        }
        let uniqueKeys = unique.map { (index: $0.index, columns: $0.columns.sorted { $0.sequence < $1.sequence }.map(\.column)) }
        let declaredPrimary = uniqueKeys.first { $0.index == "PRIMARY" }?.columns
        let notNullUnique = uniqueKeys.first { $0.columns.allSatisfy { !builder.nullable[$0] } }?.columns
        // The server's primary key — what TABLE_MAP reports, so snapshot and stream rows of one
        // table carry the same key: the declared one, else the first unique key without nullable parts.
        let primary = declaredPrimary ?? notNullUnique
        let key: [Int]
        let source: KeySource
        if let keyOverride, !keyOverride.isEmpty {
            key = try keyOverride.map { column in
                guard let index = names.firstIndex(of: column) else {
                    throw FerryError(code: .snapshotKeyColumn, message: "the key column \(column) configured for \(name) is not in the table",
                                     context: [("table", name.description)], fix: "fix mapping.key for this table; its columns are \(names.joined(separator: ", "))")
                }
                return index
            }
            source = .configured
        } else if let declaredPrimary {
            key = declaredPrimary
            source = .primaryKey
        } else if let notNullUnique {
            key = notNullUnique
            source = .uniqueIndex
        } else {
            key = []
            source = .none
        }
        let decoder = TableDecoder(tableMap: builder.tableMap(primaryKey: primary ?? []), mariadb: server.isMariaDB, collations: server.collations)
        let selectList = names.indices.map { decoder.selectExpression($0, quotedName: backquoted(names[$0])) }.joined(separator: ", ")
        return SnapshotTable(name: name, decoder: decoder, keyColumns: key, keySource: source, selectList: selectList)
    }

    /// The table's key in `row`, in key order.
    func key(of row: Row) -> [Value] { keyColumns.map { row[$0] } }
}

/// Builds the TABLE_MAP event the server would write for a table, from information_schema.
struct TableMapBuilder {
    let name: TableName
    let mariadb: Bool
    let collationIDs: [String: UInt64]
    var names: [String] = []
    var nullable: [Bool] = []
    var types: [UInt8] = []
    var metadata: [UInt16] = []
    var optional = TableMapEvent.OptionalMetadata()
    var dataTypes: [Int: MariaDBDataType] = [:]
    private var unsigned: [Bool] = []

    /// utf8mb4_general_ci: ENUM/SET member names are handed over as UTF-8.
    static let utf8Collation: UInt64 = 45
    static let binaryCollation: UInt64 = 63

    init(name: TableName, mariadb: Bool, collationIDs: [String: UInt64]) {
        self.name = name
        self.mariadb = mariadb
        self.collationIDs = collationIDs
    }

    mutating func add(name column: String, dataType: String, columnType: String, nullable isNullable: Bool, octetLength: Int?,
                      precision: Int?, scale: Int?, fsp: Int?, collation: String?) throws {
        let index = names.count
        names.append(column)
        nullable.append(isNullable)
        unsigned.append(columnType.contains("unsigned"))
        let collationID = collation.flatMap { collationIDs[$0] } ?? Self.binaryCollation
        func character(_ type: ColumnType, _ meta: Int) {
            types.append(type.rawValue)
            metadata.append(UInt16(meta))
            optional.collations[index] = collationID
        }
        func plain(_ type: ColumnType, _ meta: Int = 0) {
            types.append(type.rawValue)
            metadata.append(UInt16(meta))
        }
        switch dataType {
        case "tinyint": plain(.tiny)
        case "smallint": plain(.short)
        case "mediumint": plain(.int24)
        case "int", "integer": plain(.long)
        case "bigint": plain(.longlong)
        case "float": plain(.float, 4)
        case "double", "real", "double precision": plain(.double, 8)
        case "decimal", "numeric": plain(.newDecimal, (precision ?? 10) << 8 | (scale ?? 0))
        case "year": plain(.year)
        case "date": plain(.date)
        case "time": plain(.time2, fsp ?? 0)
        case "datetime": plain(.datetime2, fsp ?? 0)
        case "timestamp": plain(.timestamp2, fsp ?? 0)
        case "varchar", "varbinary": character(.varchar, octetLength ?? 0)
        case "char", "binary": character(.string, Self.stringMetadata(type: ColumnType.string.rawValue, length: octetLength ?? 0))
        case "tinytext", "tinyblob": character(.blob, 1)
        case "text", "blob": character(.blob, 2)
        case "mediumtext", "mediumblob": character(.blob, 3)
        case "longtext", "longblob": character(.blob, 4)
        case "json": plain(.json, 4)
        case "bit":
            let bits = precision ?? 1
            plain(.bit, (bits / 8) << 8 | (bits % 8))
        case "enum", "set":
            let members = StreamSession.members(columnType).map { Array($0.utf8) }
            let isEnum = dataType == "enum"
            let packLength = isEnum ? (members.count > 255 ? 2 : 1) : [1, 1, 2, 3, 4, 8, 8, 8, 8][min(8, (members.count + 7) / 8)]
            plain(.string, Self.stringMetadata(type: (isEnum ? ColumnType.enumeration : ColumnType.set).rawValue, length: packLength))
            optional.enumSetCollations[index] = Self.utf8Collation
            if isEnum { optional.enumValues[index] = members } else { optional.setValues[index] = members }
        case "uuid", "inet4", "inet6":
            let type = MariaDBDataType(rawValue: dataType)!
            character(.string, Self.stringMetadata(type: ColumnType.string.rawValue, length: type.byteCount))
            optional.collations[index] = Self.binaryCollation
            dataTypes[index] = type
        case "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection":
            plain(.geometry, 4)
            if mariadb { optional.collations[index] = Self.binaryCollation }
        default:
            throw FerryError(code: .snapshotUnsupportedColumn, message: "column \(column) of \(name) has type \(columnType), which the snapshot cannot read",
                             context: [("table", name.description)], fix: "exclude the column (mapping.exclude_columns) or the table")
        }
    }

    /// STRING metadata: the real type in the high byte, the length in the low byte, with bits
    /// 8–9 of lengths ≥ 256 folded into the high byte (inverted), as the server writes it.
    static func stringMetadata(type: UInt8, length: Int) -> Int {
        let high = Int(type) ^ ((length >> 4) & 0x30)
        return high << 8 | (length & 0xFF)
    }

    func tableMap(primaryKey: [Int]) -> TableMapEvent {
        var optional = self.optional
        optional.columnNames = names
        optional.unsigned = unsigned
        optional.primaryKey = primaryKey
        var map = TableMapEvent(tableID: 0, flags: 0, database: name.database, table: name.table, columnTypes: types,
                                columnMetadata: metadata, nullable: nullable, optional: optional)
        map.mariadbDataTypes = dataTypes
        return map
    }
}
