import AsyncHTTPClient
import FerryCore
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SinkSupport

/// ClickHouse as a target, over its HTTP interface (AsyncHTTPClient). Each source table lands in a
/// `ReplacingMergeTree(_version)` table ordered by the primary key, with two more columns: the
/// change's source position as `_version` and `_deleted` (1 for a delete, which writes the row's
/// last image). Rows are inserted in RowBinary, one INSERT per table and batch, each key's last
/// change only. A replay inserts rows with the versions they had, so merges (or `FINAL`) keep
/// exactly one row per key: the newest. The applied position is a row of `ferry_offsets`, written
/// after the data — ClickHouse has no transactions, and the versions make the repeat harmless.
public actor ClickHouseSink: SinkSession {
    public struct Configuration: Sendable {
        public var name: String
        public var pipeline: String
        /// `http(s)://host:port` without user, password or path.
        public var url: String
        public var database: String
        public var username: String
        public var password: String?
        public var targetTable: @Sendable (TableName) -> String
        public var schemaChanges: SchemaChangePolicy
        public var timeoutSeconds: Int
        /// `ferry_offsets` is written at most this often (and after a schema change, and at
        /// close): every insert makes a part on the server, and a replay of what the table lags
        /// behind changes nothing, since rows carry their versions.
        public var recordInterval: Duration = .seconds(1)

        /// `url` is `http(s)://[user@]host:8123[/database]` (user `default`, database `default`).
        public init(name: String, pipeline: String, url: String, password: String?, targetTable: @escaping @Sendable (TableName) -> String = { $0.table },
                    schemaChanges: SchemaChangePolicy = SchemaChangePolicy(), timeoutSeconds: Int) throws {
            guard let components = URLComponents(string: url), let scheme = components.scheme, ["http", "https"].contains(scheme),
                  components.host?.isEmpty == false else {
                throw FerryError(code: .configInvalid, message: "'\(Secrets.redactedURL(url))' is not an http(s) URL", fix: "use http://[user@]host:8123/database")
            }
            let path = components.path.split(separator: "/").map(String.init)
            guard path.count <= 1 else {
                throw FerryError(code: .configInvalid, message: "'\(components.path)' names more than a database", fix: "use http://[user@]host:8123/database")
            }
            var base = components
            base.user = nil
            base.password = nil
            base.path = ""
            self.name = name
            self.pipeline = pipeline
            self.url = base.string ?? url
            self.database = path.first ?? "default"
            self.username = components.user ?? "default"
            self.password = password ?? components.password
            self.targetTable = targetTable
            self.schemaChanges = schemaChanges
            self.timeoutSeconds = timeoutSeconds
        }
    }

    /// One key's last change in a batch.
    private struct PendingRow {
        var row: Row
        var deleted: Bool
        var version: UInt64
        /// The change's position, for errors (not the whole event: a batch holds tens of thousands).
        var position: SourcePosition
    }

    /// A table's changes in a batch, in order; `flush` keeps each key's last.
    private struct PendingTable {
        var schema: TableSchema
        var rows: [PendingRow] = []
    }

    public nonisolated let name: String
    let configuration: Configuration
    let logger: Logger
    private var client: HTTPClient?
    private var tableSchema: TargetSchema?
    private var targets = TargetTableRegistry()
    /// Each target table's columns and their declared types, in table order.
    private var columnTypes: [String: [(name: String, type: ClickHouseType?)]] = [:]
    private var pending: [String: PendingTable] = [:]
    private var pendingOrder: [String] = []
    /// The last applied position not yet in `ferry_offsets`, and when that table was last written.
    private var unrecorded: SourcePosition?
    private var recordedAt: ContinuousClock.Instant?
    /// A request failed: `close` does not write to a server that may not answer.
    private var failed = false

    public init(configuration: Configuration, logger: Logger) {
        self.name = configuration.name
        self.configuration = configuration
        self.logger = logger
    }

    private var offsetsTable: String { ClickHouseDialect.quoted(configuration.database) + ".ferry_offsets" }

    public func open() async throws -> SourcePosition? {
        let version = try await query("SELECT version()").trimmingCharacters(in: .whitespacesAndNewlines)
        let numbers = version.split(separator: ".").compactMap { Int($0) }
        let hasDateTime64 = numbers.count >= 2 && (numbers[0] > 20 || (numbers[0] == 20 && numbers[1] >= 1))
        tableSchema = TargetSchema(policy: configuration.schemaChanges,
                                   dialect: ClickHouseDialect(database: configuration.database, hasDateTime64: hasDateTime64))
        columnTypes = [:]
        try await query("CREATE DATABASE IF NOT EXISTS \(ClickHouseDialect.quoted(configuration.database))")
        try await query("""
            CREATE TABLE IF NOT EXISTS \(offsetsTable) (pipeline String, sink String, position String, version UInt64, written DateTime) \
            ENGINE = ReplacingMergeTree(version) ORDER BY (pipeline, sink)
            """)
        let stored = try await query("""
            SELECT position FROM \(offsetsTable) FINAL WHERE pipeline = \(ClickHouseDialect.literal(configuration.pipeline)) \
            AND sink = \(ClickHouseDialect.literal(name)) FORMAT JSONCompact
            """)
        guard let text = Self.rows(stored).first?.first as? String else { return nil }
        guard let position = SourcePosition(persistedJSON: text) else {
            throw ClickHouseSinkError.refused(sink: name, message: "ferry_offsets holds '\(text)', which is not a position",
                                              fix: "delete the row of pipeline \(configuration.pipeline), sink \(name) from \(offsetsTable) and rewind the sink")
        }
        return position
    }

    public func close() async throws {
        if let position = unrecorded, !failed {
            try? await record(position)
        }
        try await client?.shutdown()
        client = nil
    }


    public func apply(_ transactions: [Transaction]) async throws {
        guard let last = transactions.last else { return }
        pending = [:]
        pendingOrder = []
        var tables = TableRun<String>()
        var changedTables = false
        for transaction in transactions {
            for event in transaction.events {
                if event.operation == .ddl {
                    guard !event.schemaChanges.isEmpty else { continue }
                    try await flush()
                    var shaping = tableSchema!
                    defer { tableSchema = shaping }
                    for change in event.schemaChanges {
                        try await shaping.apply(change, statement: event.statement, position: transaction.position, sink: name,
                                                     targetTable: configuration.targetTable, describe: tableReader,
                                                     execute: tableChanger, logger: logger)
                    }
                    columnTypes = [:]
                    tables = TableRun()
                    changedTables = true
                    continue
                }
                guard let schema = event.schema else { continue }
                let table = try tables.value(for: event.table) {
                    let table = configuration.targetTable(event.table)
                    try targets.register(table, for: event.table, sink: name)
                    return table
                }
                guard !schema.primaryKey.isEmpty else {
                    throw ClickHouseSinkError.rejected(sink: name, table: event.table, position: event.source.position,
                                                       message: "the table has no primary key, which ClickHouse needs to replace rows",
                                                       fix: "give it a key in the pipeline's mapping (key: [columns]) or exclude it from this sink")
                }
                if let open = pending[table], open.schema !== schema { try await flush() }
                let version = UInt64(event.source.position.version)
                switch event.operation {
                case .create, .read:
                    if let after = event.after { add(table, schema, PendingRow(row: after, deleted: false, version: version, position: event.source.position)) }
                case .update:
                    guard let before = event.before, let after = event.after else { continue }
                    if schema.primaryKey.contains(where: { after[$0] != .absent && before[$0] != after[$0] }) {
                        add(table, schema, PendingRow(row: before, deleted: true, version: version, position: event.source.position))
                    }
                    add(table, schema, PendingRow(row: after.completed(from: before), deleted: false, version: version, position: event.source.position))
                case .delete:
                    if let before = event.before { add(table, schema, PendingRow(row: before, deleted: true, version: version, position: event.source.position)) }
                case .ddl:
                    continue
                }
            }
        }
        try await flush()
        if changedTables || recordedAt.map({ ContinuousClock.now - $0 >= configuration.recordInterval }) ?? true {
            try await record(last.position)
        } else {
            unrecorded = last.position
        }
    }

    /// Writes `position` as this sink's row of `ferry_offsets`.
    private func record(_ position: SourcePosition) async throws {
        let written = UInt64(Date().timeIntervalSince1970 * 1_000_000)
        var body = RowBinaryWriter()
        body.writeString(Array(configuration.pipeline.utf8))
        body.writeString(Array(name.utf8))
        body.writeString(Array(position.persistedJSON.utf8))
        body.append(written, bytes: 8)
        body.append(written / 1_000_000, bytes: 4)
        try await insert("INSERT INTO \(offsetsTable) (pipeline, sink, position, version, written) FORMAT RowBinary", body.bytes)
        recordedAt = .now
        unrecorded = nil
    }

    private func add(_ table: String, _ schema: TableSchema, _ row: PendingRow) {
        if pending[table] == nil {
            pending[table] = PendingTable(schema: schema)
            pendingOrder.append(table)
        }
        // In place: a copy of the pending table would copy its rows on every change.
        pending[table]!.rows.append(row)
    }

    /// Inserts every pending table's rows, one INSERT per table.
    private func flush() async throws {
        let order = pendingOrder
        pendingOrder = []
        for table in order {
            guard let rows = pending.removeValue(forKey: table), !rows.rows.isEmpty else { continue }
            try await insert(table, rows)
        }
    }

    private func insert(_ table: String, _ pendingTable: PendingTable) async throws {
        let schema = pendingTable.schema
        var shaping = tableSchema!
        _ = try await shaping.prepare(table, schema: schema, describe: tableReader, execute: tableChanger, logger: logger)
        tableSchema = shaping
        let target = try await types(of: table)
        let byName = Dictionary(target.map { ($0.name, $0.type) }, uniquingKeysWith: { first, _ in first })
        var columns: [(index: Int, type: ClickHouseType)] = []
        for index in schema.columns.indices {
            let column = schema.columnName(index)
            guard let declared = byName[column] else { continue }
            guard let type = declared else {
                throw ClickHouseSinkError.rejected(sink: name, table: schema.name, position: pendingTable.rows[0].position,
                                                   message: "column \(column) of \(table) has a type ferry cannot write",
                                                   fix: "declare it with a scalar type (String, numbers, Decimal, Date, DateTime, Enum) or drop it")
            }
            columns.append((index, type))
        }
        for index in schema.primaryKey where !columns.contains(where: { $0.index == index }) {
            throw ClickHouseSinkError.rejected(sink: name, table: schema.name, position: pendingTable.rows[0].position,
                                               message: "\(table) has no column \(schema.columnName(index)) of the primary key",
                                               fix: "add the column to the ClickHouse table, or drop the table so ferry creates it again")
        }
        let rows = RowOperations.lastPerKey(pendingTable.rows, key: schema.primaryKey) { $0.row }
        // Encoded whole and sent with its length, not streamed while encoded: ClickHouse (18.16)
        // takes a chunked body cut short — a row refused halfway, a lost connection — as complete
        // and inserts the rows it got.
        var body = RowBinaryWriter(reservingCapacity: rows.count * (columns.count * 8 + 9))
        for pendingRow in rows {
            for column in columns {
                do {
                    try body.write(pendingRow.row[column.index], as: column.type)
                } catch {
                    throw ClickHouseSinkError.rejected(sink: name, table: schema.name, position: pendingRow.position,
                                                       message: "column \(schema.columnName(column.index)): \(error.description)",
                                                       fix: "declare the column as String (ferry writes exact text there) or as Nullable, or fix the row in the source")
                }
            }
            body.append(pendingRow.version, bytes: 8)
            body.append(pendingRow.deleted ? 1 : 0, bytes: 1)
        }
        let names = columns.map { ClickHouseDialect.quoted(schema.columnName($0.index)) } + ["_version", "_deleted"]
        try await insert("INSERT INTO \(ClickHouseDialect.quoted(configuration.database)).\(ClickHouseDialect.quoted(table)) (\(names.joined(separator: ", "))) FORMAT RowBinary",
                         body.bytes, table: schema.name, position: pendingTable.rows.last!.position)
    }

    private nonisolated var tableReader: @Sendable (String) async throws -> TargetTable { { try await self.describe($0) } }
    private nonisolated var tableChanger: @Sendable (String) async throws -> Void { { try await self.changeTable($0) } }

    /// Runs a statement that changes a table; the column types read before are stale after it.
    private func changeTable(_ sql: String) async throws {
        columnTypes = [:]
        try await query(sql)
    }

    /// The table's columns; its key is its sorting key, which ClickHouse cannot change.
    private func describe(_ table: String) async throws -> TargetTable {
        TargetTable(columns: try await types(of: table).map { TargetColumn(name: $0.name, type: "", notNull: false) }, key: [])
    }

    private func types(of table: String) async throws -> [(name: String, type: ClickHouseType?)] {
        if let known = columnTypes[table] { return known }
        let result = try await query("""
            SELECT name, type FROM system.columns WHERE database = \(ClickHouseDialect.literal(configuration.database)) \
            AND table = \(ClickHouseDialect.literal(table)) FORMAT JSONCompact
            """)
        let columns = Self.rows(result).compactMap { row -> (String, ClickHouseType?)? in
            guard row.count == 2, let name = row[0] as? String, let type = row[1] as? String, name != "_version", name != "_deleted" else { return nil }
            return (name, ClickHouseType(parsing: type))
        }
        // A table that does not exist yet is not remembered: it is created next.
        if !columns.isEmpty { columnTypes[table] = columns }
        return columns
    }

    private static func rows(_ json: String) -> [[Any]] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else { return [] }
        return object["data"] as? [[Any]] ?? []
    }

    // MARK: HTTP

    private func http() -> HTTPClient {
        if let client { return client }
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: HTTPClient.Configuration(redirectConfiguration: .disallow))
        self.client = client
        return client
    }

    @discardableResult
    private func query(_ sql: String) async throws -> String {
        try await send(path: "/", body: Array(sql.utf8), table: nil, position: nil)
    }

    private func insert(_ statement: String, _ rows: [UInt8], table: TableName? = nil, position: SourcePosition? = nil) async throws {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&+=?#")
        let encoded = statement.addingPercentEncoding(withAllowedCharacters: allowed) ?? statement
        _ = try await send(path: "/?query=" + encoded, body: rows, table: table, position: position)
    }

    private func send(path: String, body: [UInt8], table: TableName?, position: SourcePosition?) async throws -> String {
        var request = HTTPClientRequest(url: configuration.url + path)
        request.method = .POST
        request.headers.add(name: "X-ClickHouse-User", value: configuration.username)
        if let password = configuration.password { request.headers.add(name: "X-ClickHouse-Key", value: password) }
        request.body = .bytes(ByteBuffer(bytes: body))
        let status: HTTPResponseStatus
        let text: String
        do {
            let response = try await http().execute(request, timeout: .seconds(Int64(configuration.timeoutSeconds)))
            status = response.status
            text = String(buffer: try await response.body.collect(upTo: 64 << 20))
        } catch {
            failed = true
            throw ClickHouseSinkError.unavailable(sink: name, message: "\(Secrets.redactedURL(configuration.url)): \(error)")
        }
        guard status == .ok else {
            failed = true
            throw ClickHouseSinkError(status: Int(status.code), answer: text, sink: name, table: table, position: position)
        }
        return text
    }
}

/// How ClickHouse spells identifiers, literals and table changes.
struct ClickHouseDialect: SchemaDialect {
    let database: String
    let hasDateTime64: Bool

    static func quoted(_ name: String) -> String {
        "`" + name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "`", with: "\\`") + "`"
    }

    static func literal(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }

    func identifier(_ name: String) -> String { Self.quoted(name) }

    func table(_ name: String) -> String { Self.quoted(database) + "." + Self.quoted(name) }

    /// Columns added later are Nullable: the rows already there have no value for them.
    func columnType(_ typeName: String) -> String {
        ClickHouseType.forSource(typeName, nullable: true, hasDateTime64: hasDateTime64)
    }

    func createTable(_ table: String, schema: TableSchema) -> String {
        var definitions = schema.columns.indices.map { index in
            let nullable = schema.columns[index].nullable && !schema.primaryKey.contains(index)
            return "\(Self.quoted(schema.columnName(index))) \(ClickHouseType.forSource(schema.columns[index].typeName, nullable: nullable, hasDateTime64: hasDateTime64))"
        }
        definitions += ["`_version` UInt64", "`_deleted` UInt8"]
        let key = schema.primaryKey.map { Self.quoted(schema.columnName($0)) }.joined(separator: ", ")
        return "CREATE TABLE IF NOT EXISTS \(self.table(table)) (\(definitions.joined(separator: ", "))) ENGINE = ReplacingMergeTree(`_version`) ORDER BY (\(key))"
    }

    func modifyColumn(_ table: String, column: String, typeName: String) -> String? {
        "ALTER TABLE \(self.table(table)) MODIFY COLUMN \(Self.quoted(column)) \(columnType(typeName))"
    }

    func renameTable(_ from: String, to: String) -> String { "RENAME TABLE \(table(from)) TO \(table(to))" }

    /// A ReplacingMergeTree's sorting key is what makes rows of one key replace each other; it
    /// cannot be changed in place.
    func replaceKey(_ table: String, current: TargetTable, key: [String]) -> [String]? { nil }
}

enum ClickHouseSinkError: ClassifiedError, FerryErrorConvertible, CustomStringConvertible {
    case unavailable(sink: String, message: String)
    case auth(sink: String, message: String)
    case refused(sink: String, message: String, fix: String)
    case rejected(sink: String, table: TableName, position: SourcePosition, message: String, fix: String)

    /// Server error codes worth retrying: overload, memory, timeouts, network, too many parts.
    static let transientCodes: Set<Int> = [159, 160, 202, 203, 209, 210, 241, 242, 252, 319, 425, 999]
    /// Unknown user, wrong or missing password, authentication failed.
    static let authCodes: Set<Int> = [192, 193, 194, 516]

    /// From an answer other than 200: `Code: N, e.displayText() = …` (older servers) or
    /// `Code: N. DB::Exception: …`.
    init(status: Int, answer: String, sink: String, table: TableName?, position: SourcePosition?) {
        let message = answer.split(separator: "\n").first.map(String.init)?.replacingOccurrences(of: ", e.what() = DB::Exception", with: "") ?? "HTTP \(status)"
        var code: Int?
        if let range = answer.range(of: "Code: ") {
            code = Int(answer[range.upperBound...].prefix { $0.isNumber })
        }
        if status == 401 || status == 403 || code.map(Self.authCodes.contains) == true {
            self = .auth(sink: sink, message: message)
        } else if status >= 500 && code == nil || code.map(Self.transientCodes.contains) == true {
            self = .unavailable(sink: sink, message: message)
        } else if let table, let position {
            self = .rejected(sink: sink, table: table, position: position, message: message,
                             fix: "compare the ClickHouse table's definition with the source table")
        } else {
            self = .refused(sink: sink, message: message, fix: "check the ClickHouse server's log for the statement")
        }
    }

    var isTransient: Bool {
        if case .unavailable = self { return true }
        return false
    }

    var ferryError: FerryError {
        switch self {
        case .unavailable(let sink, let message):
            return FerryError(code: .sinkClickHouseUnavailable, message: "ClickHouse sink \(sink): \(message)",
                              fix: "check the url and that the server is up; ferry retries", disposition: .retry)
        case .auth(let sink, let message):
            return FerryError(code: .sinkClickHouseAuth, message: "ClickHouse sink \(sink): the server refused the credentials: \(message)",
                              fix: "check the user in the url and the sink's password")
        case .refused(let sink, let message, let fix):
            return FerryError(code: .sinkClickHouseRefused, message: "ClickHouse sink \(sink): \(message)", fix: fix)
        case .rejected(let sink, let table, let position, let message, let fix):
            return FerryError(code: .sinkClickHouseRejected, message: "ClickHouse sink \(sink) cannot write a change of \(table): \(message)",
                              context: [("table", table.description), ("position", position.place)], fix: fix)
        }
    }
}

extension ClickHouseSink {
    /// The keys of a `type: clickhouse` sink (besides `type`).
    public static let settings: [SinkSetting] = [
        SinkSetting("url", .text, required: true, doc: "http(s)://USER@HOST:8123/DATABASE"),
        .password(),
        SinkSetting("timeout_seconds", .integer, default: "60", doc: "per HTTP request"),
        .schemaChanges,
    ]
}
