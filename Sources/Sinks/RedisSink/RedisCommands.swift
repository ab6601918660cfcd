import FerryCore

/// The Redis commands one change becomes under its table's rule (pure: tested without a server).
enum RedisCommands {
    /// Writes the commands `event` becomes under `rule`; returns how many. `scratch` is reused
    /// memory for one value's text.
    @discardableResult
    static func write(_ event: ChangeEvent, rule: RedisSink.TableRule, processedAtMillis: Int64, into out: inout RESPCommandWriter,
                      scratch: inout [UInt8]) throws -> Int {
        let first = out.count
        if rule.mode == .stream {
            try writeStreamEntry(event, rule: rule, processedAtMillis: processedAtMillis, into: &out)
            return out.count - first
        }
        // An update's after image may leave out the columns it did not change
        // (binlog_row_image MINIMAL or NOBLOB): the before image fills in what it can.
        let row = event.after.map { after in event.before.map(after.completed(from:)) ?? after }
        let before = try event.before.map { try key(rule.key, event: event, row: $0) }
        let after = try row.map { try key(rule.key, event: event, row: $0) }
        switch event.operation {
        case .delete:
            if let before { out.command(del, before) }
        case .create, .read, .update:
            guard let after, let row else { return 0 }
            // A key change moves the row: the old key goes.
            if let before, before != after { out.command(del, before) }
            switch rule.mode {
            case .hash:
                // A partial row updates the fields it has (and drops those now NULL); a whole
                // row replaces the hash.
                let partial = row.isPartial
                if !partial { out.command(del, after) }
                var nulls: [[UInt8]] = []
                for index in row.indices {
                    scratch.removeAll(keepingCapacity: true)
                    let field = (event.schema?.columnName(index) ?? "col_\(index + 1)").utf8
                    guard ValueJSON.appendPlainText(row[index], to: &scratch) else {
                        if partial, row[index] == .null { nulls.append(Array(field)) }
                        continue
                    }
                    out.collect(field)
                    out.collect(scratch)
                }
                out.endCollected("HSET", after)
                if !nulls.isEmpty { out.command([Array("HDEL".utf8), after] + nulls) }
                if let ttl = rule.ttlSeconds { out.command([Array("EXPIRE".utf8), after, Array(String(ttl).utf8)]) }
            case .json:
                guard !row.isPartial else {
                    throw RedisPartialRowError(table: event.table, position: event.source.position,
                                               columns: row.indices.filter { row[$0] == .absent }.map { event.schema?.columnName($0) ?? "col_\($0 + 1)" })
                }
                scratch.removeAll(keepingCapacity: true)
                ValueJSON.appendRow(row, schema: event.schema, to: &scratch)
                if let ttl = rule.ttlSeconds {
                    out.command([Array("SET".utf8), after, scratch, Array("EX".utf8), Array(String(ttl).utf8)])
                } else {
                    out.begin(arguments: 3)
                    out.argument("SET")
                    out.argument(after)
                    out.argument(scratch)
                }
            case .stream:
                preconditionFailure("streams are handled above")
            }
        case .ddl:
            break
        }
        return out.count - first
    }

    static let del = Array("DEL".utf8)

    /// The stream key of an event of a `mode: stream` table.
    static func streamKey(_ event: ChangeEvent, rule: RedisSink.TableRule) throws -> [UInt8] {
        try key(rule.key, event: event, row: event.after ?? event.before ?? [])
    }

    /// `XADD key [MAXLEN ~ n] * id <stable id> op <c|u|d|r> table <db.table> event <Debezium JSON>`
    /// (with the schema block under `format: debezium-schema`).
    static func writeStreamEntry(_ event: ChangeEvent, rule: RedisSink.TableRule, processedAtMillis: Int64, into out: inout RESPCommandWriter) throws {
        var entry = [Array("XADD".utf8), try streamKey(event, rule: rule)]
        if let maximum = rule.maximumLength { entry += [Array("MAXLEN".utf8), Array("~".utf8), Array(String(maximum).utf8)] }
        var id: [UInt8] = []
        event.appendStableID(to: &id)
        var json: [UInt8] = []
        EventJSONWriter(format: rule.format).write(event, processedAtMillis: processedAtMillis, into: &json)
        if json.last == UInt8(ascii: "\n") { json.removeLast() }
        entry += [Array("*".utf8), Array("id".utf8), id, Array("op".utf8), Array(event.operation.code.utf8),
                  Array("table".utf8), Array(event.table.description.utf8), Array("event".utf8), json]
        out.command(entry)
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
                    if !ValueJSON.appendPlainText(row[column], to: &out) { out.append(contentsOf: "null".utf8) }
                }
            default:
                guard let column = event.schema?.columns.firstIndex(where: { $0.name == name }), column < row.count else {
                    throw RedisKeyError(message: "the key template \(template) names {\(name)}, which table \(event.table) does not have",
                                        fix: "use {db}, {table}, {key} or a column of the table")
                }
                if !ValueJSON.appendPlainText(row[column], to: &out) { out.append(contentsOf: "null".utf8) }
            }
            rest = rest[rest.index(after: close)...]
        }
        out.append(contentsOf: rest.utf8)
        return out
    }

}

/// A row image without some of its columns (`binlog_row_image` MINIMAL or NOBLOB in the session
/// that wrote it), where a whole JSON value must be written.
struct RedisPartialRowError: Error, FerryErrorConvertible, CustomStringConvertible {
    var table: TableName
    var position: SourcePosition
    var columns: [String]
    var ferryError: FerryError {
        FerryError(code: .sinkRedisRejected,
                   message: "the binlog holds only part of a row of \(table) (no \(columns.joined(separator: ", "))): a JSON value is written whole",
                   context: [("table", table.description), ("position", position.place)],
                   fix: "set binlog_row_image = FULL for every session that writes \(table) (SET GLOBAL binlog_row_image = 'FULL', and no session override), or store the table as a hash (mode: hash), which takes partial rows")
    }
    var description: String { ferryError.message }
}

/// A key template that cannot be filled for a table.
struct RedisKeyError: Error, FerryErrorConvertible, CustomStringConvertible {
    var message: String
    var fix: String
    var ferryError: FerryError { FerryError(code: .sinkRedisKey, message: message, fix: fix) }
}
