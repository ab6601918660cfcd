import FerryCore
import MySQLWire

public enum Prerequisites {
    /// Privileges the replication user needs, each with the names servers print for it: exactly
    /// what `ferry run` uses (the binlog dump, SHOW MASTER STATUS / SHOW BINARY LOGS, SELECT for
    /// snapshots and column metadata) — nothing more, so the docs, this check and the GRANT it
    /// suggests agree.
    static let requiredPrivileges: [(name: String, aliases: [String])] = [
        ("REPLICATION SLAVE", ["REPLICATION SLAVE", "REPLICATION REPLICA"]),
        ("REPLICATION CLIENT", ["REPLICATION CLIENT", "BINLOG MONITOR"]),
        ("SELECT", ["SELECT"]),
    ]

    /// The statement that grants what `ferry run` needs to `account` (`'user'@'host'`).
    static func grantStatement(_ privileges: [String] = requiredPrivileges.map(\.name), to account: String) -> String {
        "GRANT \(privileges.joined(separator: ", ")) ON *.* TO \(account);"
    }

    /// The account the server authenticated this connection as, quoted for a GRANT
    /// (`'ferry'@'10.0.%'`): CURRENT_USER(), not the user name sent, which may have matched a
    /// host pattern or an anonymous account.
    static func account(_ connection: MySQLConnection, user: String) async -> String {
        let current = try? await connection.query("SELECT CURRENT_USER()").rows.first?[0]
        guard let current, let at = current.lastIndex(of: "@") else { return "'\(user)'@'%'" }
        let name = current[..<at], host = current[current.index(after: at)...]
        func quoted(_ part: Substring) -> String { "'" + part.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "''") + "'" }
        return quoted(name) + "@" + quoted(host)
    }

    public static func check(_ connection: MySQLConnection, user: String) async throws -> PrerequisiteReport {
        let variables = try await serverVariables(connection)
        var items: [PrerequisiteReport.Item] = []
        func expect(_ name: String, _ wanted: String, fix: String, failIfMissing: Bool = true) {
            guard let value = variables[name] else {
                items.append(.init(name: name, status: failIfMissing ? .failed : .warning,
                                   detail: "\(name) does not exist on this server version", fix: fix))
                return
            }
            if value.uppercased() == wanted {
                items.append(.init(name: name, status: .ok, detail: "\(name) = \(value)", fix: nil))
            } else {
                items.append(.init(name: name, status: failIfMissing ? .failed : .warning,
                                   detail: "\(name) = \(value), Ferry needs \(wanted)", fix: fix))
            }
        }
        let logBin = variables["log_bin"].map { $0 == "1" || $0.uppercased() == "ON" } ?? false
        items.append(.init(name: "log_bin", status: logBin ? .ok : .failed,
                           detail: logBin ? "log_bin = ON" : "binary logging is off",
                           fix: logBin ? nil : "add `log_bin = mysql-bin` and `server_id = 1` under [mysqld] in the server's configuration and restart it (log_bin cannot be changed at runtime)"))
        expect("binlog_format", "ROW", fix: "SET GLOBAL binlog_format = 'ROW'; and `binlog_format = ROW` under [mysqld] so it survives a restart")
        expect("binlog_row_image", "FULL", fix: "SET GLOBAL binlog_row_image = 'FULL'; and `binlog_row_image = FULL` under [mysqld]")
        expect("binlog_row_metadata", "FULL",
               fix: "SET GLOBAL binlog_row_metadata = 'FULL'; and `binlog_row_metadata = FULL` under [mysqld] (without it Ferry reads column names from information_schema, which is wrong while replaying binlog written before a DDL)",
               failIfMissing: false)
        if let checksum = variables["binlog_checksum"] {
            items.append(.init(name: "binlog_checksum", status: .ok,
                               detail: "binlog_checksum = \(checksum)" + (checksum.uppercased() == "CRC32" ? "" : " (CRC32 recommended: events are then verified)"),
                               fix: nil))
        }
        if let serverID = variables["server_id"], serverID == "0" {
            items.append(.init(name: "server_id", status: .failed, detail: "server_id = 0: the server cannot have replicas",
                               fix: "SET GLOBAL server_id = 1; and `server_id = 1` under [mysqld]"))
        }
        items.append(contentsOf: try await privileges(connection, user: user))
        return PrerequisiteReport(server: variables["version"] ?? connection.serverVersion, items: items)
    }

    static func serverVariables(_ connection: MySQLConnection) async throws -> [String: String] {
        let names = ["version", "log_bin", "binlog_format", "binlog_row_image", "binlog_checksum", "server_id", "binlog_row_metadata"]
        let quoted = names.map { "'\($0)'" }.joined(separator: ",")
        let result = try await connection.query("SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME IN (\(quoted.uppercased()))")
        var values: [String: String] = [:]
        for row in result.rows {
            if let name = row[0], let value = row[1] { values[name.lowercased()] = value }
        }
        if values.isEmpty {
            // MySQL 5.7+/8.0 keeps these in performance_schema; ask for each directly.
            for name in names {
                if let value = try? await connection.query("SELECT @@GLOBAL.\(name)").rows.first?[0] { values[name] = value }
            }
        }
        return values
    }

    static func privileges(_ connection: MySQLConnection, user: String) async throws -> [PrerequisiteReport.Item] {
        let grants = try await connection.query("SHOW GRANTS FOR CURRENT_USER()").rows.compactMap { $0[0] }
        var global = Set<String>()
        var anySelect = false
        for grant in grants {
            let upper = grant.uppercased()
            guard upper.hasPrefix("GRANT "), let onRange = upper.range(ofWord: " ON ") else { continue }
            let privileges = upper[upper.index(upper.startIndex, offsetBy: 6)..<onRange.lowerBound]
                .split(separator: ",").map { $0.trimmingSpaces }.map(String.init)
            let target = upper[onRange.upperBound...]
            if target.hasPrefix("*.*") {
                global.formUnion(privileges)
            }
            if privileges.contains("SELECT") || privileges.contains("ALL PRIVILEGES") || privileges.contains("ALL") { anySelect = true }
        }
        let all = global.contains("ALL PRIVILEGES") || global.contains("ALL")
        var items: [PrerequisiteReport.Item] = []
        var missing: [String] = []
        for privilege in requiredPrivileges {
            if all || privilege.aliases.contains(where: global.contains) {
                items.append(.init(name: "privilege \(privilege.name)", status: .ok, detail: "granted", fix: nil))
            } else if privilege.name == "SELECT", anySelect {
                items.append(.init(name: "privilege SELECT", status: .warning, detail: "granted on some databases only; snapshots need SELECT on every captured table", fix: nil))
            } else {
                missing.append(privilege.name)
                items.append(.init(name: "privilege \(privilege.name)", status: .failed, detail: "not granted on *.*", fix: nil))
            }
        }
        if !missing.isEmpty {
            let fix = grantStatement(missing, to: await account(connection, user: user))
            for index in items.indices where items[index].status == .failed { items[index].fix = fix }
        }
        return items
    }
}

extension String {
    /// The range of `word` in the string, searched from the start.
    func range(ofWord word: String) -> Range<String.Index>? {
        var index = startIndex
        while index < endIndex {
            if self[index...].hasPrefix(word) { return index..<self.index(index, offsetBy: word.count) }
            index = self.index(after: index)
        }
        return nil
    }
}
