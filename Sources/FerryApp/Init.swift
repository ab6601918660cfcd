import FerryCore
import Foundation
import Logging
import MySQLSource
import MySQLWire

/// `ferry init --source URL`: checks the source, surveys its tables, and writes a commented
/// starter configuration that `ferry check -c` accepts and `ferry run` runs as written.
public enum Init {
    /// One source table as information_schema describes it (rows and bytes are estimates).
    public struct TableFacts: Sendable, Equatable {
        public enum Key: Sendable, Equatable {
            case primary([String])
            /// A unique key without nullable columns: the server uses it as the key.
            case unique(String, [String])
            case none
        }

        public var name: TableName
        public var rows: Int
        public var bytes: Int
        public var engine: String
        public var key: Key

        var keyDescription: String {
            switch key {
            case .primary(let columns): "primary key (\(columns.joined(separator: ", ")))"
            case .unique(let index, let columns): "unique key \(index) (\(columns.joined(separator: ", ")))"
            case .none: "NO KEY"
            }
        }

        /// Engines whose rows a consistent read cannot see consistently.
        var isTransactional: Bool { ["innodb", "rocksdb", "xtradb", ""].contains(engine.lowercased()) }
    }

    /// A sink as `--sink` names it, ready to be written as YAML.
    public struct SinkEntry: Sendable, Equatable {
        public var name: String
        public var fields: [(key: String, value: String)]
        /// The environment variable its password is read from, when its URL carried one.
        public var passwordVariable: String?

        /// The keys its type declares with a default, written commented out for the user to see.
        var optional: [SinkSetting] {
            let written = Set(fields.map(\.key))
            return (SinkCatalog.settings(for: fields.first { $0.key == "type" }?.value ?? "") ?? [])
                .filter { !written.contains($0.key) && $0.defaultValue != nil && !$0.required }
        }

        public static func == (lhs: SinkEntry, rhs: SinkEntry) -> Bool {
            lhs.name == rhs.name && lhs.passwordVariable == rhs.passwordVariable
                && lhs.fields.map { "\($0.key)=\($0.value)" } == rhs.fields.map { "\($0.key)=\($0.value)" }
        }
    }

    /// Reads `--sink` values: `sqlite:PATH`, `jsonl:DIRECTORY`, or a `postgres://`, `mysql://`,
    /// `mariadb://`, `redis://` or `nats://` URL. A password in a URL moves to an environment
    /// variable named after the sink, so the file holds no secret.
    public static func sinkEntries(_ specs: [String]) throws -> [SinkEntry] {
        var entries: [SinkEntry] = []
        var used: Set<String> = []
        func uniqueName(_ base: String) -> String {
            var name = base, counter = 2
            while used.contains(name) { name = "\(base)\(counter)"; counter += 1 }
            used.insert(name)
            return name
        }
        for spec in specs.isEmpty ? ["sqlite:./replica.sqlite"] : specs {
            let scheme = spec.prefix { $0 != ":" }.lowercased()
            let rest = String(spec.dropFirst(scheme.count + 1))
            switch scheme {
            case "sqlite":
                entries.append(SinkEntry(name: uniqueName("replica"), fields: [("type", "sqlite"), ("path", rest)]))
            case "jsonl":
                entries.append(SinkEntry(name: uniqueName("files"), fields: [("type", "jsonl"), ("directory", rest)]))
            case "postgres", "postgresql", "mysql", "mariadb", "redis", "nats":
                let type = scheme == "postgresql" ? "postgres" : scheme
                let name = uniqueName(type)
                let (url, password) = try withoutPassword(spec, what: "--sink \(type)")
                let variable = password == nil ? nil : "FERRY_\(name.uppercased())_PASSWORD"
                var fields: [(key: String, value: String)] = [("type", type), ("url", url)]
                if let variable { fields.append(("password", "${\(variable)}")) }
                entries.append(SinkEntry(name: name, fields: fields, passwordVariable: variable))
            default:
                throw FerryError(code: .cliInvalidOption, message: "--sink \(spec): not a sink ferry init can write",
                                 fix: "use sqlite:PATH, jsonl:DIRECTORY, or a postgres://, mysql://, mariadb://, redis:// or nats:// URL; add other sinks by hand (docs/sinks/)")
            }
        }
        return entries
    }

    /// The URL without its password, and the password it carried.
    static func withoutPassword(_ url: String, what: String) throws -> (url: String, password: String?) {
        guard var components = URLComponents(string: url), components.host != nil else {
            throw FerryError(code: .cliInvalidOption, message: "\(what): '\(Secrets.redactedURL(url))' is not a URL", fix: "write it as SCHEME://USER@HOST:PORT/…")
        }
        let password = components.password
        components.password = nil
        return (components.string ?? url, password)
    }

    /// The source's tables outside the server's own schemas (and ferry's signal table), in the
    /// databases named, or every database when none are.
    public static func survey(_ connection: MySQLConnection, databases: [String]) async throws -> [TableFacts] {
        // The databases asked for, or all but the server's own, as a condition on `column`.
        func schemas(_ column: String) -> String {
            databases.isEmpty ? "\(column) NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')"
                : "\(column) IN (\(databases.map(quoted).joined(separator: ", ")))"
        }
        let tables = try await connection.query("""
            SELECT TABLE_SCHEMA, TABLE_NAME, COALESCE(TABLE_ROWS, 0), COALESCE(DATA_LENGTH, 0) + COALESCE(INDEX_LENGTH, 0), COALESCE(ENGINE, '')
            FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND \(schemas("TABLE_SCHEMA"))
            AND NOT (TABLE_SCHEMA = 'ferry' AND TABLE_NAME = 'ferry_signal')
            """)
        // Unique indexes in the server's order; a nullable column disqualifies one as the key.
        let parts = try await connection.query("""
            SELECT s.TABLE_SCHEMA, s.TABLE_NAME, s.INDEX_NAME, s.COLUMN_NAME, c.IS_NULLABLE
            FROM information_schema.STATISTICS s JOIN information_schema.COLUMNS c
              ON c.TABLE_SCHEMA = s.TABLE_SCHEMA AND c.TABLE_NAME = s.TABLE_NAME AND c.COLUMN_NAME = s.COLUMN_NAME
            WHERE s.NON_UNIQUE = 0 AND \(schemas("s.TABLE_SCHEMA"))
            ORDER BY s.TABLE_SCHEMA, s.TABLE_NAME, s.INDEX_NAME = 'PRIMARY' DESC, s.INDEX_NAME, s.SEQ_IN_INDEX
            """)
        var indexes: [TableName: [(index: String, columns: [String], nullable: Bool)]] = [:]
        for row in parts.rows {
            guard let database = row[0], let table = row[1], let index = row[2], let column = row[3] else { continue }
            let name = TableName(database: database, table: table)
            let nullable = row[4] == "YES"
            if let at = indexes[name]?.firstIndex(where: { $0.index == index }) {
                indexes[name]![at].columns.append(column)
                indexes[name]![at].nullable = indexes[name]![at].nullable || nullable
            } else {
                indexes[name, default: []].append((index, [column], nullable))
            }
        }
        return tables.rows.compactMap { row -> TableFacts? in
            guard let database = row[0], let table = row[1] else { return nil }
            let name = TableName(database: database, table: table)
            let candidates = indexes[name] ?? []
            let key: TableFacts.Key
            if let primary = candidates.first(where: { $0.index == "PRIMARY" }) {
                key = .primary(primary.columns)
            } else if let unique = candidates.first(where: { !$0.nullable }) {
                key = .unique(unique.index, unique.columns)
            } else {
                key = .none
            }
            return TableFacts(name: name, rows: row[2].flatMap { Int($0) } ?? 0, bytes: row[3].flatMap { Int($0) } ?? 0,
                              engine: row[4] ?? "", key: key)
        }.sorted { $0.name.description < $1.name.description }
    }

    private static func quoted(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "''") + "'"
    }

    /// The starter configuration (pure: the same facts give the same file).
    public static func configuration(sourceURL: String, sourcePasswordVariable: String?, sourceName: String, databases: [String],
                                     tables: [TableFacts], sinks: [SinkEntry], dataDirectory: String, writtenAt: String) -> String {
        let pipeline = "\(sourceName)-to-\(sinks.first?.name ?? "sink")"
        var lines: [String] = [
            "# Ferry configuration written by `ferry init` on \(writtenAt) from \(Secrets.redactedURL(sourceURL)).",
            "# Check it with `ferry check -c FILE`, run it with `ferry run -c FILE`. Every key: docs/pipelines.md,",
            "# each sink's keys: docs/sinks/. Secrets are not written here: `${NAME}` reads the environment.",
            "",
            "data_dir: \(yamlScalar(dataDirectory))           # the state file and disk buffers",
            "",
            "sources:",
            "  \(sourceName):",
            "    type: mysql",
            "    url: \(yamlScalar(sourceURL))",
        ]
        if let sourcePasswordVariable { lines.append("    password: \"${\(sourcePasswordVariable)}\"") }
        lines += ["", "sinks:"]
        for sink in sinks {
            lines.append("  \(sink.name):")
            for field in sink.fields { lines.append("    \(field.key): \(field.key == "password" ? "\"\(field.value)\"" : yamlScalar(field.value))") }
            for setting in sink.optional { lines.append("    # \(setting.key): \(setting.defaultValue ?? "")   — \(setting.doc)") }
        }
        let byDatabase = Dictionary(grouping: tables, by: \.name.database)
        let names = (databases.isEmpty ? byDatabase.keys.sorted() : databases)
        lines += ["", "pipelines:", "  \(pipeline):", "    source: \(sourceName)", "    sinks: [\(sinks.map(\.name).joined(separator: ", "))]",
                  "    # Tables created later in these databases are picked up too (their rows from the stream).",
                  "    tables:"]
        for database in names {
            let inDatabase = byDatabase[database] ?? []
            let summary = inDatabase.isEmpty ? "no tables yet"
                : "\(inDatabase.count) table\(inDatabase.count == 1 ? "" : "s"), ~\(count(inDatabase.reduce(0) { $0 + $1.rows })) rows, \(bytes(inDatabase.reduce(0) { $0 + $1.bytes }))"
            lines.append("      - \(yamlScalar(database + ".*"))    # \(summary)")
        }
        lines += ["    snapshot: initial     # existing rows first, without locks; then every change (docs/snapshots.md)"]
        let keyless = tables.filter { $0.key == .none }
        let nonTransactional = tables.filter { !$0.isTransactional }
        if !keyless.isEmpty || !nonTransactional.isEmpty {
            lines.append("    # Look at these tables before the first run:")
            for table in keyless {
                lines.append("    #   \(table.name) has no primary key and no unique NOT NULL key: targets match its rows by every column,")
                lines.append("    #   and a snapshot reads it whole. If some columns identify a row, name them under mapping: below.")
            }
            for table in nonTransactional {
                lines.append("    #   \(table.name) is \(table.engine): a snapshot cannot read it consistently while it changes.")
            }
            if !keyless.isEmpty {
                lines.append("    # mapping:")
                for table in keyless { lines.append("    #   \(yamlScalar(table.name.description)): { key: [COLUMN, …] }") }
            }
        }
        lines += ["", "# The web page, API and /metrics listen on 127.0.0.1:8080 unless told otherwise:",
                  "# server: { listen: \"127.0.0.1:8080\" }   (docs/control-plane.md)", ""]
        return lines.joined(separator: "\n")
    }

    /// A YAML plain scalar when it is safe as one, else double-quoted.
    static func yamlScalar(_ text: String) -> String {
        let plain = !text.isEmpty && text.allSatisfy { $0.isLetter || $0.isNumber || "./_-@:".contains($0) }
            && !text.hasPrefix("@") && !text.contains(": ") && !text.hasSuffix(":")
        let misread = ["yes", "no", "true", "false", "on", "off", "null", "~"].contains(text.lowercased()) || Double(text) != nil
        if plain && !misread && !text.contains("*") { return text }
        return "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    static func count(_ value: Int) -> String {
        switch value {
        case ..<10_000: "\(value)"
        case ..<10_000_000: "\(value / 1000)k"
        default: "\(value / 1_000_000)M"
        }
    }

    static func bytes(_ value: Int) -> String { ByteText.binary(Int64(value)) }

    /// Checks the source, surveys it, and writes the file; prints the check, the tables and what
    /// to do next. Returns whether the source meets the prerequisites (the file is written
    /// either way).
    public static func run(sourceURL: String, password: String?, databases: [String], sinkSpecs: [String], dataDirectory: String,
                           output: String, overwrite: Bool, logger: Logger, print: (String) -> Void) async throws -> Bool {
        if !overwrite, FileManager.default.fileExists(atPath: output) {
            throw FerryError(code: .cliFile, message: "\(output) exists", fix: "choose another file with -o, or pass --force to replace it")
        }
        let sinks = try sinkEntries(sinkSpecs)
        let ready = try await Check.run(sourceURL: sourceURL, password: password, logger: logger, print: print)
        let connection = try MySQLConnectionConfiguration(url: sourceURL, password: password)
        let tables = try await MySQLConnection.withConnection(connection, logger: logger) { try await survey($0, databases: databases) }
        if tables.isEmpty && databases.isEmpty {
            throw FerryError(code: .cliInvalidOption, message: "the source has no tables outside the server's own databases",
                             fix: "create the tables first, or name the databases to follow with --database NAME")
        }
        print("tables (estimates from information_schema):")
        let width = tables.map { $0.name.description.count }.max() ?? 0
        for table in tables {
            let name = table.name.description.padding(toLength: width, withPad: " ", startingAt: 0)
            let rows = ("~" + count(table.rows) + " rows").padding(toLength: 13, withPad: " ", startingAt: 0)
            let size = bytes(table.bytes).padding(toLength: 10, withPad: " ", startingAt: 0)
            let warning = table.key == .none ? " — set its key in the file's mapping: (commented there)" : ""
            print("  \(name)  \(rows) \(size) \(table.keyDescription)\(warning)")
        }
        let (url, urlPassword) = try withoutPassword(sourceURL, what: "--source")
        let sourcePasswordVariable = urlPassword != nil || password != nil ? "FERRY_SOURCE_PASSWORD" : nil
        let sourceName = databases.count == 1 ? databases[0] : "db"
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate]
        let text = configuration(sourceURL: url, sourcePasswordVariable: sourcePasswordVariable, sourceName: sourceName,
                                 databases: databases.isEmpty ? Array(Set(tables.map(\.name.database))).sorted() : databases,
                                 tables: tables, sinks: sinks, dataDirectory: dataDirectory, writtenAt: formatter.string(from: Date()))
        do {
            try text.write(toFile: output, atomically: true, encoding: .utf8)
        } catch {
            throw FerryError(code: .cliFile, message: "cannot write \(output): \(error.localizedDescription)", fix: "check the directory exists and is writable")
        }
        let variables = ([sourcePasswordVariable] + sinks.map(\.passwordVariable)).compactMap { $0 }
        print("wrote \(output): 1 pipeline over \(tables.count) table\(tables.count == 1 ? "" : "s") into \(sinks.map(\.name).joined(separator: ", "))")
        if !variables.isEmpty { print("set \(variables.joined(separator: ", ")) in the environment of ferry check and ferry run (the file reads them)") }
        print(ready ? "next: ferry check -c \(output) && ferry run -c \(output)"
                    : "next: run the fixes above on the source, then ferry check -c \(output) && ferry run -c \(output)")
        return ready
    }
}
