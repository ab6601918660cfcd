import FerryCore

/// The Redis commands one change becomes under its table's rule (pure: tested without a server).
enum RedisCommands {
    static let xadd = Array("XADD".utf8)

    static func commands(for event: ChangeEvent, rule: RedisSink.TableRule, processedAtMillis: Int64) throws -> [[[UInt8]]] {
        if rule.mode == .stream { return [try streamEntry(event, rule: rule, processedAtMillis: processedAtMillis)] }
        var commands: [[[UInt8]]] = []
        let before = try event.before.map { try key(rule.key, event: event, row: $0) }
        let after = try event.after.map { try key(rule.key, event: event, row: $0) }
        switch event.operation {
        case .delete:
            if let before { commands.append(command("DEL", before)) }
        case .create, .read, .update:
            guard let after, let row = event.after else { return [] }
            // A key change moves the row: the old key goes.
            if let before, before != after { commands.append(command("DEL", before)) }
            switch rule.mode {
            case .hash:
                commands.append(command("DEL", after))
                var set = command("HSET", after)
                for index in row.indices {
                    guard let text = ValueJSON.plainText(row[index]) else { continue }
                    set.append(Array((event.schema?.columnName(index) ?? "col_\(index + 1)").utf8))
                    set.append(text)
                }
                if set.count > 2 { commands.append(set) }
                if let ttl = rule.ttlSeconds { commands.append(command("EXPIRE", after, Array(String(ttl).utf8))) }
            case .json:
                var json: [UInt8] = []
                ValueJSON.appendRow(row, schema: event.schema, to: &json)
                var set = command("SET", after, json)
                if let ttl = rule.ttlSeconds { set += [Array("EX".utf8), Array(String(ttl).utf8)] }
                commands.append(set)
            case .stream:
                preconditionFailure("streams are handled above")
            }
        case .ddl:
            break
        }
        return commands
    }

    /// `XADD key [MAXLEN ~ n] * id <stable id> op <c|u|d|r> table <db.table> event <Debezium JSON>`.
    static func streamEntry(_ event: ChangeEvent, rule: RedisSink.TableRule, processedAtMillis: Int64) throws -> [[UInt8]] {
        var entry = command("XADD", try key(rule.key, event: event, row: event.after ?? event.before ?? []))
        if let maximum = rule.maximumLength { entry += [Array("MAXLEN".utf8), Array("~".utf8), Array(String(maximum).utf8)] }
        var id: [UInt8] = []
        event.appendStableID(to: &id)
        var json: [UInt8] = []
        EventJSONWriter(format: .debezium).write(event, processedAtMillis: processedAtMillis, into: &json)
        if json.last == UInt8(ascii: "\n") { json.removeLast() }
        entry += [Array("*".utf8), Array("id".utf8), id, Array("op".utf8), Array(event.operation.code.utf8),
                  Array("table".utf8), Array(event.table.description.utf8), Array("event".utf8), json]
        return entry
    }

    static func command(_ name: String, _ arguments: [UInt8]...) -> [[UInt8]] {
        [Array(name.utf8)] + arguments
    }

    /// The key `template` makes for `row`: `{db}`, `{table}`, `{key}` (key columns joined by `:`)
    /// and `{<column>}`.
    static func key(_ template: String, event: ChangeEvent, row: Row) throws -> [UInt8] {
        var out: [UInt8] = []
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            out.append(contentsOf: rest[..<open].utf8)
            guard let close = rest[open...].firstIndex(of: "}") else {
                out.append(contentsOf: rest[open...].utf8)
                return out
            }
            let name = String(rest[rest.index(after: open)..<close])
            switch name {
            case "db": out.append(contentsOf: event.table.database.utf8)
            case "table": out.append(contentsOf: event.table.table.utf8)
            case "key":
                guard let schema = event.schema, !schema.primaryKey.isEmpty else {
                    throw RedisKeyError(message: "table \(event.table) has no key for {key}",
                                        fix: "set mapping.\(event.table).key in the pipeline, or give the table a key template without {key}")
                }
                for (position, column) in schema.primaryKey.enumerated() where column < row.count {
                    if position > 0 { out.append(UInt8(ascii: ":")) }
                    out.append(contentsOf: ValueJSON.plainText(row[column]) ?? Array("null".utf8))
                }
            default:
                guard let column = event.schema?.columns.firstIndex(where: { $0.name == name }), column < row.count else {
                    throw RedisKeyError(message: "the key template \(template) names {\(name)}, which table \(event.table) does not have",
                                        fix: "use {db}, {table}, {key} or a column of the table")
                }
                out.append(contentsOf: ValueJSON.plainText(row[column]) ?? Array("null".utf8))
            }
            rest = rest[rest.index(after: close)...]
        }
        out.append(contentsOf: rest.utf8)
        return out
    }

}

/// A key template that cannot be filled for a table.
struct RedisKeyError: Error, FerryErrorConvertible, CustomStringConvertible {
    var message: String
    var fix: String
    var ferryError: FerryError { FerryError(code: .sinkRedisKey, message: message, fix: fix) }
}
