import FerryCore
import Logging
import PostgresWire

/// What `ferry check --source postgres://…` verifies: logical WAL, free slots and WAL senders,
/// the user's REPLICATION attribute, the publication, each published table's replica identity
/// and SELECT privilege, the slot named in the URL, and a cap on the WAL a slot may hold — each
/// missing piece with the statement that fixes it.
public enum PostgresPrerequisites {
    public static func check(_ configuration: PostgresSourceConfiguration, logger: Logger) async throws -> PrerequisiteReport {
        let sql = try await PostgresSource(configuration: configuration, logger: logger).connect(configuration.sessionConnection, purpose: "check")
        do {
            let report = try await check(sql, configuration)
            await sql.close()
            return report
        } catch {
            await sql.close()
            throw error
        }
    }

    static func check(_ sql: PostgresWireConnection, _ configuration: PostgresSourceConfiguration) async throws -> PrerequisiteReport {
        func value(_ query: String, _ parameters: [FrontendMessage.Parameter] = []) async throws -> String {
            try await sql.query(query, parameters).text(0, 0) ?? ""
        }
        var items: [PrerequisiteReport.Item] = []
        let server = "PostgreSQL " + (try await value("SHOW server_version"))
        let user = try await value("SELECT current_user")
        let restart = "(in postgresql.conf or with ALTER SYSTEM), then restart PostgreSQL"

        let walLevel = try await value("SHOW wal_level")
        items.append(.init(name: "wal_level", status: walLevel == "logical" ? .ok : .failed, detail: "wal_level = \(walLevel)",
                           fix: "ALTER SYSTEM SET wal_level = logical; \(restart)"))

        let slot = configuration.slot
        let slots = try await sql.query("""
            SELECT current_setting('max_replication_slots')::int, count(*)::int, count(*) FILTER (WHERE slot_name = $1)::int
            FROM pg_replication_slots
            """, [.text(slot ?? "")])
        let maxSlots = Int(slots.text(0, 0) ?? "") ?? 0, usedSlots = Int(slots.text(0, 1) ?? "") ?? 0
        let hasSlot = (Int(slots.text(0, 2) ?? "") ?? 0) > 0
        let slotFree = usedSlots < maxSlots || hasSlot
        items.append(.init(name: "max_replication_slots", status: slotFree ? .ok : .failed,
                           detail: "\(usedSlots) of \(maxSlots) in use",
                           fix: "drop a slot nobody reads (SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active AND …), or ALTER SYSTEM SET max_replication_slots = \(maxSlots + 4); \(restart)"))
        let senders = try await sql.query("SELECT current_setting('max_wal_senders')::int, (SELECT count(*)::int FROM pg_stat_replication)")
        let maxSenders = Int(senders.text(0, 0) ?? "") ?? 0, usedSenders = Int(senders.text(0, 1) ?? "") ?? 0
        items.append(.init(name: "max_wal_senders", status: usedSenders < maxSenders ? .ok : .failed, detail: "\(usedSenders) of \(maxSenders) in use",
                           fix: "ALTER SYSTEM SET max_wal_senders = \(maxSenders + 4); \(restart)"))

        let replication = try await value("SELECT (rolreplication OR rolsuper)::text FROM pg_roles WHERE rolname = current_user")
        items.append(.init(name: "REPLICATION attribute", status: replication == "true" ? .ok : .failed,
                           detail: replication == "true" ? "\(user) may start replication" : "\(user) lacks REPLICATION",
                           fix: "ALTER ROLE \(PostgresSource.quotedIdentifier(user)) REPLICATION;"))

        let keepSize = try await value("SHOW max_slot_wal_keep_size")
        items.append(.init(name: "max_slot_wal_keep_size", status: keepSize == "-1" ? .warning : .ok,
                           detail: keepSize == "-1" ? "unlimited: a slot left behind keeps WAL until the disk fills" : "a slot may hold \(keepSize) of WAL",
                           fix: "ALTER SYSTEM SET max_slot_wal_keep_size = '50GB'; SELECT pg_reload_conf();  (size it above the longest outage's WAL)"))

        if let slot {
            let found = try await sql.query("SELECT plugin, coalesce(wal_status, ''), database FROM pg_replication_slots WHERE slot_name = $1", [.text(slot)])
            if found.rows.isEmpty {
                items.append(.init(name: "slot \(slot)", status: .failed, detail: "no such slot",
                                   fix: "SELECT pg_create_logical_replication_slot('\(slot)', 'pgoutput');"))
            } else if found.text(0, 0) != "pgoutput" || found.text(0, 2) != configuration.connection.database {
                items.append(.init(name: "slot \(slot)", status: .failed,
                                   detail: "a slot of plugin \(found.text(0, 0) ?? "?") in database \(found.text(0, 2) ?? "?"), not pgoutput in \(configuration.connection.database)",
                                   fix: "name another slot, or create one: SELECT pg_create_logical_replication_slot('NAME', 'pgoutput');"))
            } else if found.text(0, 1) == "lost" {
                items.append(.init(name: "slot \(slot)", status: .failed, detail: "invalidated: the WAL it needed was removed (max_slot_wal_keep_size)",
                                   fix: "drop it (SELECT pg_drop_replication_slot('\(slot)');), create it again, and snapshot the tables again"))
            } else {
                items.append(.init(name: "slot \(slot)", status: .ok, detail: "pgoutput, WAL \(found.text(0, 1) ?? "")", fix: nil))
            }
        }

        let publication = configuration.publication
        let published = try await sql.query("SELECT pubupdate::text, pubdelete::text, pubtruncate::text FROM pg_publication WHERE pubname = $1",
                                            [.text(publication)])
        guard !published.rows.isEmpty else {
            items.append(.init(name: "publication \(publication)", status: .failed, detail: "no such publication in database \(configuration.connection.database)",
                               fix: "CREATE PUBLICATION \(PostgresSource.quotedIdentifier(publication)) FOR TABLE schema.table, …;  (as the tables' owner; FOR ALL TABLES needs a superuser)"))
            return PrerequisiteReport(server: server, items: items)
        }
        let missingActions = zip(["update", "delete", "truncate"], (0..<3).map { published.text(0, $0) }).filter { $0.1 != "true" }.map(\.0)
        items.append(.init(name: "publication \(publication)", status: missingActions.isEmpty ? .ok : .warning,
                           detail: missingActions.isEmpty ? "publishes every change" : "does not publish \(missingActions.joined(separator: ", ")): those changes never reach the targets",
                           fix: "ALTER PUBLICATION \(PostgresSource.quotedIdentifier(publication)) SET (publish = 'insert, update, delete, truncate');"))
        // Replica identity: without one, the source itself refuses UPDATE and DELETE on a
        // published table; FULL works without a key, at the cost of whole old rows in the WAL.
        let tables = try await sql.query("""
            SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relreplident::text,
                   EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)::text,
                   has_table_privilege(c.oid, 'SELECT')::text
            FROM pg_publication_tables p
            JOIN pg_namespace n ON n.nspname = p.schemaname
            JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename
            WHERE p.pubname = $1 ORDER BY 1
            """, [.text(publication)])
        if tables.rows.isEmpty {
            items.append(.init(name: "published tables", status: .failed, detail: "publication \(publication) has no tables",
                               fix: "ALTER PUBLICATION \(PostgresSource.quotedIdentifier(publication)) ADD TABLE schema.table, …;"))
        }
        for row in tables.rows.indices {
            let table = tables.text(row, 0) ?? "?"
            let identity = tables.text(row, 1) ?? "d", hasKey = tables.text(row, 2) == "true"
            let usable = identity == "f" || identity == "i" || (identity == "d" && hasKey)
            let named = ["d": hasKey ? "the primary key" : "DEFAULT, and no primary key", "f": "FULL", "i": "an index", "n": "NOTHING"][identity] ?? identity
            items.append(.init(name: "replica identity of \(table)", status: usable ? .ok : .failed, detail: named,
                               fix: "ALTER TABLE \(table) ADD PRIMARY KEY (…);  or  ALTER TABLE \(table) REPLICA IDENTITY FULL;"))
            if tables.text(row, 3) != "true" {
                items.append(.init(name: "SELECT on \(table)", status: .failed, detail: "\(user) may not read it (snapshots and the type catalog need to)",
                                   fix: "GRANT SELECT ON \(table) TO \(PostgresSource.quotedIdentifier(user));"))
            }
        }
        return PrerequisiteReport(server: server, items: items)
    }
}
