import FerryCore

/// Reads the DDL statements of a MySQL/MariaDB binlog and says what they do to tables and
/// columns (`SchemaChange`). Pure: statement text in, changes out.
///
/// Understood: `ALTER TABLE` (ADD/DROP/CHANGE/MODIFY/RENAME COLUMN, RENAME TO, and the
/// index, key, constraint, partition and table-option clauses, which change no columns),
/// `RENAME TABLE`, `CREATE TABLE`, `DROP TABLE`, `TRUNCATE`. Other statements (indexes, views,
/// users, databases) change no replicated table and give no changes. An `ALTER TABLE` clause it
/// cannot read gives `.unrecognized` naming the clause, never a crash.
public enum DDLParser {
    public static func parse(_ statement: String, defaultDatabase: String) -> [SchemaChange] {
        analyze(statement, defaultDatabase: defaultDatabase).changes
    }

    /// One reading of a statement: its changes and the tables whose rows it rewrote.
    public static func analyze(_ statement: String, defaultDatabase: String) -> (changes: [SchemaChange], rewritten: [TableName]) {
        var parser = Parser(tokens: Tokenizer.tokens(statement), database: defaultDatabase)
        let changes = parser.statement()
        return (changes, parser.rewritten)
    }

    /// The tables whose existing rows the statement gives values no change in the binlog
    /// describes: a column added with a default, `NOT NULL`, `AUTO_INCREMENT` or as a generated
    /// column; a column retyped (`MODIFY`, `CHANGE`: MariaDB converts every value, clipping or
    /// truncating under a lax `sql_mode`); `CONVERT TO CHARACTER SET`. Targets can reproduce
    /// none of that exactly, so their rows are read again from the source.
    public static func rewrittenTables(_ statement: String, defaultDatabase: String) -> [TableName] {
        analyze(statement, defaultDatabase: defaultDatabase).rewritten
    }
}

enum Token: Equatable {
    /// A bare word, upper-cased in `upper`; `text` keeps its spelling.
    case word(text: String, upper: String)
    /// A `backquoted` identifier.
    case quotedIdentifier(String)
    /// A 'string' or "string" literal, with its quotes.
    case literal(String)
    case number(String)
    case symbol(Character)
}

enum Tokenizer {
    static func tokens(_ text: String) -> [Token] {
        var tokens: [Token] = []
        let characters = Array(text)
        var index = 0
        func peek(_ offset: Int = 0) -> Character? { index + offset < characters.count ? characters[index + offset] : nil }
        while index < characters.count {
            let character = characters[index]
            if character.isWhitespace {
                index += 1
            } else if character == "/", peek(1) == "*" {
                // `/*!50100 … */` is executable text on a server that new; its body counts.
                if peek(2) == "!" {
                    index += 3
                    while let digit = peek(), digit.isNumber { index += 1 }
                    continue
                }
                index += 2
                while index < characters.count, !(characters[index] == "*" && peek(1) == "/") { index += 1 }
                index += 2
            } else if character == "*", peek(1) == "/" {
                index += 2
            } else if character == "#" || (character == "-" && peek(1) == "-" && (peek(2)?.isWhitespace ?? true)) {
                while index < characters.count, characters[index] != "\n" { index += 1 }
            } else if character == "`" {
                var name = ""
                index += 1
                while index < characters.count {
                    if characters[index] == "`" {
                        if peek(1) == "`" {
                            name.append("`")
                            index += 2
                            continue
                        }
                        break
                    }
                    name.append(characters[index])
                    index += 1
                }
                index += 1
                tokens.append(.quotedIdentifier(name))
            } else if character == "'" || character == "\"" {
                var literal = String(character)
                index += 1
                while index < characters.count {
                    let next = characters[index]
                    literal.append(next)
                    index += 1
                    if next == "\\", index < characters.count {
                        literal.append(characters[index])
                        index += 1
                    } else if next == character {
                        if peek() == character {
                            literal.append(character)
                            index += 1
                        } else {
                            break
                        }
                    }
                }
                tokens.append(.literal(literal))
            } else if character.isNumber {
                var number = ""
                while let next = peek(), next.isNumber || next == "." { number.append(next); index += 1 }
                tokens.append(.number(number))
            } else if character.isLetter || character == "_" || character == "$" {
                var word = ""
                while let next = peek(), next.isLetter || next.isNumber || next == "_" || next == "$" { word.append(next); index += 1 }
                tokens.append(.word(text: word, upper: word.uppercased()))
            } else {
                tokens.append(.symbol(character))
                index += 1
            }
        }
        return tokens
    }
}

private struct Parser {
    let tokens: [Token]
    let database: String
    var index = 0
    /// Tables whose existing rows the statement rewrites (see `DDLParser.rewrittenTables`).
    var rewritten: [TableName] = []

    init(tokens: [Token], database: String) {
        self.tokens = tokens
        self.database = database
    }

    var current: Token? { index < tokens.count ? tokens[index] : nil }
    var atEnd: Bool { current == nil || current == .symbol(";") }

    func upper(_ offset: Int = 0) -> String? {
        guard index + offset < tokens.count, case .word(_, let upper) = tokens[index + offset] else { return nil }
        return upper
    }

    mutating func accept(_ words: String...) -> Bool {
        for (offset, word) in words.enumerated() where upper(offset) != word { return false }
        index += words.count
        return true
    }

    mutating func acceptSymbol(_ symbol: Character) -> Bool {
        guard current == .symbol(symbol) else { return false }
        index += 1
        return true
    }

    mutating func identifier() -> String? {
        switch current {
        case .quotedIdentifier(let name)?:
            index += 1
            return name
        case .word(let text, _)?:
            index += 1
            return text
        default:
            return nil
        }
    }

    /// A column name, which MariaDB lets ALTER TABLE qualify with its table (`t.c`) or database
    /// and table (`db.t.c`): the last part names the column.
    mutating func columnName() -> String? {
        guard var name = identifier() else { return nil }
        while current == .symbol("."), index + 1 < tokens.count {
            index += 1
            guard let part = identifier() else { return nil }
            name = part
        }
        return name
    }

    mutating func tableName() -> TableName? {
        guard let first = identifier() else { return nil }
        if acceptSymbol("."), let second = identifier() { return TableName(database: first, table: second) }
        return TableName(database: database, table: first)
    }

    /// Skips to the next `,` at parenthesis depth 0 (not consuming it) or the end.
    mutating func skipClause() {
        var depth = 0
        while let token = current, !(depth == 0 && (token == .symbol(",") || token == .symbol(";"))) {
            if token == .symbol("(") { depth += 1 }
            if token == .symbol(")") {
                if depth == 0 { return }
                depth -= 1
            }
            index += 1
        }
    }

    mutating func statement() -> [SchemaChange] {
        if accept("ALTER") {
            _ = accept("ONLINE")
            _ = accept("IGNORE")
            guard accept("TABLE") else { return [] }
            _ = accept("IF", "EXISTS")
            guard let table = tableName() else { return [.unrecognized(TableName(database: database, table: ""), reason: "ALTER TABLE without a table name")] }
            return alterTable(table)
        }
        if accept("RENAME") {
            guard accept("TABLE") || accept("TABLES") else { return [] }
            var changes: [SchemaChange] = []
            repeat {
                _ = accept("IF", "EXISTS")
                guard let from = tableName() else { break }
                _ = accept("WAIT") || accept("NOWAIT")
                if upper() == "NUMBER" { index += 1 }
                guard accept("TO"), let to = tableName() else {
                    return [.unrecognized(TableName(database: database, table: ""), reason: "RENAME TABLE without TO")]
                }
                changes.append(.renameTable(from: from, to: to))
            } while acceptSymbol(",")
            return changes
        }
        if accept("CREATE") {
            _ = accept("OR", "REPLACE")
            if accept("TEMPORARY") { return [] }
            guard accept("TABLE") else { return [] }
            _ = accept("IF", "NOT", "EXISTS")
            return tableName().map { [.createTable($0)] } ?? []
        }
        if accept("DROP") {
            if accept("TEMPORARY") { return [] }
            guard accept("TABLE") || accept("TABLES") else { return [] }
            _ = accept("IF", "EXISTS")
            var changes: [SchemaChange] = []
            repeat {
                guard let table = tableName() else { break }
                changes.append(.dropTable(table))
            } while acceptSymbol(",")
            return changes
        }
        if accept("TRUNCATE") {
            _ = accept("TABLE")
            return tableName().map { [.truncateTable($0)] } ?? []
        }
        return []
    }

    /// Clause keywords after ADD / DROP that name no column.
    static let nonColumnObjects: Set<String> = ["INDEX", "KEY", "CONSTRAINT", "PRIMARY", "UNIQUE", "FULLTEXT", "SPATIAL", "FOREIGN",
                                                "CHECK", "PARTITION", "PERIOD", "SYSTEM", "VECTOR"]
    /// Clauses that change table options, partitions or indexes, never columns.
    static let optionClauses: Set<String> = ["ENGINE", "DEFAULT", "CHARACTER", "CHARSET", "COLLATE", "CONVERT", "COMMENT", "AUTO_INCREMENT",
                                             "ROW_FORMAT", "ALGORITHM", "LOCK", "FORCE", "ORDER", "KEY_BLOCK_SIZE", "DISABLE", "ENABLE",
                                             "PARTITION", "REMOVE", "COALESCE", "REORGANIZE", "EXCHANGE", "ANALYZE", "CHECK", "OPTIMIZE",
                                             "REBUILD", "REPAIR", "TRUNCATE", "DISCARD", "IMPORT", "AVG_ROW_LENGTH", "CHECKSUM",
                                             "COMPRESSION", "CONNECTION", "DATA", "INDEX", "DELAY_KEY_WRITE", "ENCRYPTED", "ENCRYPTION_KEY_ID",
                                             "INSERT_METHOD", "MAX_ROWS", "MIN_ROWS", "PACK_KEYS", "PAGE_CHECKSUM", "PAGE_COMPRESSED",
                                             "PASSWORD", "STATS_AUTO_RECALC", "STATS_PERSISTENT", "STATS_SAMPLE_PAGES", "TABLESPACE",
                                             "TRANSACTIONAL", "UNION", "WITH", "WITHOUT", "SECONDARY_ENGINE_ATTRIBUTE", "ENGINE_ATTRIBUTE",
                                             "NOWAIT", "WAIT", "VALIDATION", "UPGRADE", "STORAGE", "SEQUENCE"]

    mutating func alterTable(_ table: TableName) -> [SchemaChange] {
        var changes: [SchemaChange] = []
        if upper() == "WAIT" || upper() == "NOWAIT" {
            index += 1
            if case .number? = current { index += 1 }
        }
        while !atEnd {
            let start = index
            guard let clause = alterClause(table) else {
                let word = tokens[start...].prefix(3).map(Self.text).joined(separator: " ")
                changes.append(.unrecognized(table, reason: "ALTER TABLE \(table) … \(word)"))
                index = start
                skipClause()
                if !acceptSymbol(",") { break }
                continue
            }
            changes += clause
            skipClause()
            if !acceptSymbol(",") { break }
        }
        return changes
    }

    static func text(_ token: Token) -> String {
        switch token {
        case .word(let text, _): text
        case .quotedIdentifier(let name): "`\(name)`"
        case .literal(let text), .number(let text): text
        case .symbol(let character): String(character)
        }
    }

    /// One clause of ALTER TABLE; `nil` when it is not understood.
    mutating func alterClause(_ table: TableName) -> [SchemaChange]? {
        if accept("ADD") {
            if let word = upper(), Self.nonColumnObjects.contains(word) { return [] }
            _ = accept("COLUMN")
            _ = accept("IF", "NOT", "EXISTS")
            if acceptSymbol("(") {
                var changes: [SchemaChange] = []
                repeat {
                    if let word = upper(), Self.nonColumnObjects.contains(word) {
                        skipClause()
                        continue
                    }
                    guard let column = columnName(), let type = columnType() else { return nil }
                    changes.append(.addColumn(table, column: column, type: type))
                    if definitionFillsExistingRows() { markRewritten(table) }
                    skipClause()
                } while acceptSymbol(",")
                guard acceptSymbol(")") else { return nil }
                return changes
            }
            guard let column = columnName(), let type = columnType() else { return nil }
            if definitionFillsExistingRows() { markRewritten(table) }
            return [.addColumn(table, column: column, type: type)]
        }
        if accept("DROP") {
            if let word = upper(), Self.nonColumnObjects.contains(word) { return [] }
            _ = accept("COLUMN")
            _ = accept("IF", "EXISTS")
            guard let column = columnName() else { return nil }
            return [.dropColumn(table, column: column)]
        }
        if accept("CHANGE") {
            _ = accept("COLUMN")
            _ = accept("IF", "EXISTS")
            guard let old = columnName(), let new = columnName(), let type = columnType() else { return nil }
            markRewritten(table)
            return (old == new ? [] : [.renameColumn(table, from: old, to: new)]) + [.modifyColumn(table, column: new, type: type)]
        }
        if accept("MODIFY") {
            _ = accept("COLUMN")
            _ = accept("IF", "EXISTS")
            guard let column = columnName(), let type = columnType() else { return nil }
            markRewritten(table)
            return [.modifyColumn(table, column: column, type: type)]
        }
        if accept("RENAME") {
            if accept("COLUMN") {
                guard let from = columnName(), accept("TO"), let to = columnName() else { return nil }
                return [.renameColumn(table, from: from, to: to)]
            }
            if accept("INDEX") || accept("KEY") { return [] }
            _ = accept("TO") || accept("AS")
            guard let to = tableName() else { return nil }
            return [.renameTable(from: table, to: to)]
        }
        if accept("ALTER") {
            // ALTER [COLUMN] c SET DEFAULT … / DROP DEFAULT / [IN]VISIBLE; ALTER INDEX …
            return []
        }
        if upper() == "CONVERT" {
            markRewritten(table)
            return []
        }
        if let word = upper(), Self.optionClauses.contains(word) { return [] }
        if current == .symbol("=") { return [] }
        return nil
    }

    mutating func markRewritten(_ table: TableName) {
        if !rewritten.contains(table) { rewritten.append(table) }
    }

    /// Whether the rest of a column definition (up to its clause's end, not consumed) gives
    /// existing rows a value other than NULL.
    func definitionFillsExistingRows() -> Bool {
        var at = index
        var depth = 0
        func word(_ offset: Int) -> String? {
            guard at + offset < tokens.count, case .word(_, let upper) = tokens[at + offset] else { return nil }
            return upper
        }
        while at < tokens.count {
            let token = tokens[at]
            if token == .symbol("(") { depth += 1 }
            if token == .symbol(")") {
                if depth == 0 { return false }
                depth -= 1
            }
            if depth == 0, token == .symbol(",") || token == .symbol(";") { return false }
            if depth == 0 {
                switch word(0) {
                case "NOT" where word(1) == "NULL": return true
                case "DEFAULT" where word(1) != "NULL": return true
                case "AUTO_INCREMENT", "AS", "GENERATED", "SERIAL": return true
                default: break
                }
            }
            at += 1
        }
        return false
    }

    /// A column definition's type in `TableSchema`'s form (`int unsigned`, `varchar(20)`).
    mutating func columnType() -> String? {
        guard let first = upper() else { return nil }
        index += 1
        var name = first.lowercased()
        if name == "double", accept("PRECISION") {}
        if name == "character" || name == "char" || name == "national" {
            if name == "national" { name = upper()?.lowercased() ?? name; index += 1 }
            if accept("VARYING") { name = "varchar" } else if name == "character" { name = "char" }
        }
        if name == "long", let next = upper(), next == "VARCHAR" || next == "VARBINARY" {
            index += 1
            name = "medium" + (next == "VARCHAR" ? "text" : "blob")
        }
        var arguments: [String] = []
        if acceptSymbol("(") {
            var depth = 0
            var argument = ""
            while let token = current {
                index += 1
                if token == .symbol("(") { depth += 1 }
                if token == .symbol(")") {
                    if depth == 0 { break }
                    depth -= 1
                }
                if token == .symbol(","), depth == 0 {
                    arguments.append(argument)
                    argument = ""
                } else {
                    argument += Self.text(token)
                }
            }
            arguments.append(argument)
        }
        var unsigned = false
        while let word = upper(), ["UNSIGNED", "SIGNED", "ZEROFILL"].contains(word) {
            if word != "SIGNED" { unsigned = true }
            index += 1
        }
        let integer: [String: String] = ["tinyint": "tinyint", "int1": "tinyint", "bool": "tinyint", "boolean": "tinyint",
                                         "smallint": "smallint", "int2": "smallint", "mediumint": "mediumint", "int3": "mediumint",
                                         "middleint": "mediumint", "int": "int", "integer": "int", "int4": "int", "bigint": "bigint", "int8": "bigint"]
        var type: String
        if let base = integer[name] {
            type = base
        } else {
            switch name {
            case "dec", "numeric", "fixed", "decimal":
                type = "decimal(\(arguments.first ?? "10"),\(arguments.count > 1 ? arguments[1] : "0"))"
            case "real", "double", "float8":
                type = "double"
            case "float", "float4":
                type = (arguments.first.flatMap { Int($0) } ?? 0) > 24 ? "double" : "float"
            case "nchar", "char": type = "char(\(arguments.first ?? "1"))"
            case "nvarchar", "varchar", "varchar2", "varbinary", "binary":
                type = arguments.isEmpty ? name : "\(name == "nvarchar" || name == "varchar2" ? "varchar" : name)(\(arguments[0]))"
            case "bit": type = "bit(\(arguments.first ?? "1"))"
            case "enum", "set": type = "\(name)(\(arguments.joined(separator: ",")))"
            case "time", "datetime", "timestamp":
                type = (arguments.first.flatMap { Int($0) } ?? 0) > 0 ? "\(name)(\(arguments[0]))" : name
            default:
                type = name
            }
        }
        if unsigned, integer[name] != nil || type.hasPrefix("decimal") || type == "float" || type == "double" { type += " unsigned" }
        return type
    }
}
