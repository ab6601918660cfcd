import FerryCore

/// A sink's subject template: literal text with `{db}`, `{table}` and at most one `{key}`, which
/// must be a whole token (between dots, or at an end).
///
/// `{key}` makes the subject name the row, so a stream with a per-subject limit keeps the latest
/// message of each row, as a compacted Kafka topic keeps the latest record of each key. The key
/// is one subject token: each key column's text (ill-formed text: its stored bytes) with every
/// byte outside `A–Z a–z 0–9 - _` written as `%XX`, the columns joined by `,`, NULL as `~` and the
/// empty string as `%` — so two different keys never share a subject, and no key can add a token
/// or a wildcard. Database and table names keep their text, except that the bytes that would
/// change a subject's shape (`.`, `*`, `>`, `%`, spaces and control bytes) are written as `%XX`.
struct NATSSubject: Sendable, Equatable {
    enum Part: Sendable, Equatable {
        case text(String)
        case database
        case table
        case key
    }

    let parts: [Part]

    init(template: String) throws(NATSSubjectError) {
        var parts: [Part] = []
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            if open > rest.startIndex { parts.append(.text(String(rest[..<open]))) }
            guard let close = rest[open...].firstIndex(of: "}") else { throw .unclosed(template) }
            switch rest[rest.index(after: open)..<close] {
            case "db": parts.append(.database)
            case "table": parts.append(.table)
            case "key":
                guard !parts.contains(.key) else { throw .repeatedKey(template) }
                let after = rest[rest.index(after: close)...].first ?? "."
                guard Self.endsToken(parts), after == "." else { throw .keyNotAToken(template) }
                parts.append(.key)
            case let name: throw .unknown(template, String(name))
            }
            rest = rest[rest.index(after: close)...]
        }
        if !rest.isEmpty { parts.append(.text(String(rest))) }
        self.parts = parts
    }

    /// True when what came before ends a token (nothing, or a dot).
    private static func endsToken(_ parts: [Part]) -> Bool {
        guard let last = parts.last else { return true }
        if case .text(let text) = last { return text.hasSuffix(".") }
        return false
    }

    /// True when the subject names the row, not only its table.
    var isKeyed: Bool { parts.contains(.key) }

    /// The stream subjects that take every subject of the template: each placeholder as `*`.
    var wildcard: String {
        parts.map { part in
            if case .text(let text) = part { return text }
            return "*"
        }.joined()
    }

    /// The subject for `table`, with the key token between `prefix` and `suffix` when keyed.
    func tableParts(_ table: TableName) -> (prefix: [UInt8], suffix: [UInt8]) {
        var prefix: [UInt8] = []
        var suffix: [UInt8] = []
        var afterKey = false
        for part in parts {
            switch part {
            case .text(let text):
                if afterKey { suffix += text.utf8 } else { prefix += text.utf8 }
            case .database:
                if afterKey { Self.appendName(table.database, to: &suffix) } else { Self.appendName(table.database, to: &prefix) }
            case .table:
                if afterKey { Self.appendName(table.table, to: &suffix) } else { Self.appendName(table.table, to: &prefix) }
            case .key:
                afterKey = true
            }
        }
        return (prefix, suffix)
    }

    /// A database or table name as subject text: only what would change the subject's shape escaped.
    static func appendName(_ name: String, to out: inout [UInt8]) {
        for byte in name.utf8 {
            switch byte {
            case 0...0x20, 0x7F, UInt8(ascii: "."), UInt8(ascii: "*"), UInt8(ascii: ">"), UInt8(ascii: "%"): appendEscaped(byte, to: &out)
            default: out.append(byte)
            }
        }
    }

    private static func appendEscaped(_ byte: UInt8, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "%"))
        out.append(hexDigits[Int(byte >> 4)])
        out.append(hexDigits[Int(byte & 0x0F)])
    }

    /// Appends the key token of `row` (its columns at `key`).
    static func appendKey(_ row: Row, key: [Int], to out: inout [UInt8]) {
        var text: [UInt8] = []
        for (position, column) in key.enumerated() {
            if position > 0 { out.append(UInt8(ascii: ",")) }
            text.removeAll(keepingCapacity: true)
            if column < row.count, case .illFormedText(let bytes) = row[column] {
                // Its own bytes: U+FFFD would give two different keys one subject.
                text = bytes
            } else if column >= row.count || !ValueJSON.appendPlainText(row[column], to: &text) {
                out.append(UInt8(ascii: "~"))
                continue
            }
            guard !text.isEmpty else {
                out.append(UInt8(ascii: "%"))
                continue
            }
            for byte in text {
                switch byte {
                case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                     UInt8(ascii: "-"), UInt8(ascii: "_"):
                    out.append(byte)
                default:
                    appendEscaped(byte, to: &out)
                }
            }
        }
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)
}

enum NATSSubjectError: Error, Equatable, CustomStringConvertible {
    case unclosed(String)
    case unknown(String, String)
    case repeatedKey(String)
    case keyNotAToken(String)

    var description: String {
        switch self {
        case .unclosed(let template): return "the subject '\(template)' has a { without its }"
        case .unknown(let template, let name): return "the subject '\(template)' names {\(name)}; a subject takes {db}, {table} and {key}"
        case .repeatedKey(let template): return "the subject '\(template)' has {key} twice; a row's key is one token"
        case .keyNotAToken(let template): return "the subject '\(template)' has {key} inside a token; it must stand between dots, e.g. cdc.{table}.{key}"
        }
    }
}
