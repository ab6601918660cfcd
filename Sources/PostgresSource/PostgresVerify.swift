import FerryCore
import Logging
import PostgresLogical
import PostgresWire

/// The PostgreSQL source as `ferry verify` and the sweep after a re-snapshot read it: tables
/// through the same description and decoding a snapshot uses, so a verified row has exactly the
/// values the stream delivers for it.
extension PostgresSource: VerifiableSource {
    public func verifiedTables(signalTable: TableName) async throws -> [TableName] {
        try await includedTables()
    }

    public func verifyReader(_ name: TableName, keyOverride: [String]?) async throws -> any SourceTableReader {
        let table = try await withSession { sql in
            try await setup("describing \(name) for verify") {
                try await PgSnapshotTable.load(name, publication: configuration.publication, keyOverride: keyOverride, connection: sql) { catalog, missing in
                    try await resolveTypes(missing, into: &catalog, sql: sql)
                }
            }
        }
        guard let table else {
            throw FerryError(code: .snapshotTableMissing, message: "source \(configuration.name): table \(name) is not in publication \(configuration.publication)",
                             context: [(LoggingKeys.table, "\(name)")], fix: "name a table the publication has (SELECT * FROM pg_publication_tables)")
        }
        return PgTableReader(source: self, table: table)
    }

    /// A logical message the stream delivers (PostgreSQL 14+, read with `messages`): a sink that
    /// applied its position holds everything committed before it. Older servers: the WAL's end.
    public func verifyPosition() async throws -> SourcePosition {
        let lsn = try await withSession { sql in
            try await setup("reading the WAL position") {
                try await sql.query(Self.streamsMessages(sql.serverVersion)
                    ? "SELECT pg_logical_emit_message(false, '\(Self.positionMessagePrefix)', '')::text" : "SELECT pg_current_wal_lsn()::text")
            }.text(0, 0).flatMap(LSN.init)
        }
        guard let lsn else {
            throw FerryError(code: .sourcePostgresStream, message: "source \(configuration.name): the server gave no WAL position")
        }
        return .wal(WALPosition(lsn: lsn))
    }

    public func repairKey(_ key: [Value]) -> [String] { key.map { PostgresText.form($0) ?? "" } }

    public func isLostConnection(_ error: any Error) -> Bool {
        (error as? FerryError)?.code == .sourcePostgresUnreachable
    }

    /// The prefix of the logical messages that mark positions; the stream delivers each as a
    /// transaction without changes.
    static let positionMessagePrefix = "ferry.position"

    /// Whether the server's pgoutput sends logical messages (the `messages` option, 14+).
    static func streamsMessages(_ serverVersion: String) -> Bool {
        (Int(serverVersion.prefix { $0.isNumber }) ?? 0) >= 14
    }
}

/// One published table read for `ferry verify`, a session per call.
struct PgTableReader: SourceTableReader {
    let source: PostgresSource
    let table: PgSnapshotTable

    var schema: TableSchema { table.schema }
    var keyColumns: [Int] { table.keyColumns }

    func rows(after lower: [Value]?, limit: Int) async throws -> [Row] {
        var (sql, parameters) = table.readQuery(lower: lower.map(source.repairKey), upper: nil)
        if !table.keyColumns.isEmpty { sql += " ORDER BY \(table.quotedKey) LIMIT \(limit)" }
        return try table.rows(try await query("reading \(table.name)", sql, parameters))
    }

    func rows(keys: [[Value]]) async throws -> [Row] {
        guard !keys.isEmpty else { return [] }
        let (sql, parameters) = table.keysQuery(keys.map(source.repairKey))
        return try table.keyedRows(try await query("reading keys of \(table.name)", sql, parameters)).rows
    }

    func keys() async throws -> [[Value]] {
        let answer = try await query("reading the keys of \(table.name)", table.allKeysQuery)
        return try answer.rows.indices.map { row in
            let decoded = try table.keyRow(table.keyColumns.indices.map { answer.text(row, $0) ?? "" })
            return table.keyColumns.map { decoded[$0] }
        }
    }

    private func query(_ doing: String, _ sql: String, _ parameters: [FrontendMessage.Parameter] = []) async throws -> PostgresResult {
        try await source.withSession { connection in try await source.setup(doing) { try await connection.query(sql, parameters) } }
    }
}
