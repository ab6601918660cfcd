import FerryCore

/// A JSON document as a tree, for applying MySQL's partial JSON updates. Numbers keep their text
/// so nothing is rounded; objects keep MySQL's key order (by length, then bytes), which is the
/// order `SELECT` prints.
indirect enum JSONDocument: Equatable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONDocument])
    case object([(key: String, value: JSONDocument)])

    static func == (lhs: JSONDocument, rhs: JSONDocument) -> Bool { lhs.text == rhs.text }

    // MARK: - Parsing

    /// Parses JSON text (as `JSONBinaryDecoder` writes it).
    static func parse(_ text: String) throws -> JSONDocument {
        var parser = Parser(bytes: Array(text.utf8))
        let document = try parser.value(depth: 0)
        parser.skipSpace()
        guard parser.index == parser.bytes.count else { throw parser.error("trailing characters") }
        return document
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        func error(_ what: String) -> BinlogDecodingError {
            BinlogDecodingError(.invalid("JSON \(what) at byte \(index)"))
        }

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        mutating func expect(_ byte: UInt8) throws {
            skipSpace()
            guard index < bytes.count, bytes[index] == byte else { throw error("expected '\(Character(Unicode.Scalar(byte)))'") }
            index += 1
        }

        mutating func value(depth: Int) throws -> JSONDocument {
            guard depth < JSONBinaryDecoder.maximumDepth else { throw error("nested too deeply") }
            skipSpace()
            guard index < bytes.count else { throw error("ends early") }
            switch bytes[index] {
            case UInt8(ascii: "{"):
                index += 1
                var members: [(key: String, value: JSONDocument)] = []
                skipSpace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                    index += 1
                    return .object(members)
                }
                while true {
                    skipSpace()
                    let key = try string()
                    try expect(UInt8(ascii: ":"))
                    members.append((key, try value(depth: depth + 1)))
                    skipSpace()
                    guard index < bytes.count else { throw error("ends inside an object") }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    try expect(UInt8(ascii: "}"))
                    return .object(members)
                }
            case UInt8(ascii: "["):
                index += 1
                var elements: [JSONDocument] = []
                skipSpace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                    index += 1
                    return .array(elements)
                }
                while true {
                    elements.append(try value(depth: depth + 1))
                    skipSpace()
                    guard index < bytes.count else { throw error("ends inside an array") }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    try expect(UInt8(ascii: "]"))
                    return .array(elements)
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            default:
                let start = index
                while index < bytes.count, "+-0123456789.eE".utf8.contains(bytes[index]) { index += 1 }
                guard index > start else { throw error("unexpected character") }
                return .number(String(decoding: bytes[start..<index], as: UTF8.self))
            }
        }

        mutating func literal(_ word: String) throws {
            let expected = Array(word.utf8)
            guard index + expected.count <= bytes.count, Array(bytes[index..<(index + expected.count)]) == expected else {
                throw error("expected \(word)")
            }
            index += expected.count
        }

        mutating func string() throws -> String {
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("expected a string") }
            index += 1
            var scalars = String.UnicodeScalarView()
            var run: [UInt8] = []
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    index += 1
                    scalars.append(contentsOf: String(decoding: run, as: UTF8.self).unicodeScalars)
                    return String(scalars)
                }
                if byte == UInt8(ascii: "\\") {
                    scalars.append(contentsOf: String(decoding: run, as: UTF8.self).unicodeScalars)
                    run.removeAll()
                    guard index + 1 < bytes.count else { throw error("ends inside an escape") }
                    let escape = bytes[index + 1]
                    index += 2
                    switch escape {
                    case UInt8(ascii: "n"): scalars.append("\n")
                    case UInt8(ascii: "t"): scalars.append("\t")
                    case UInt8(ascii: "r"): scalars.append("\r")
                    case UInt8(ascii: "b"): scalars.append("\u{08}")
                    case UInt8(ascii: "f"): scalars.append("\u{0C}")
                    case UInt8(ascii: "u"):
                        guard index + 4 <= bytes.count, let code = UInt32(String(decoding: bytes[index..<(index + 4)], as: UTF8.self), radix: 16) else {
                            throw error("bad \\u escape")
                        }
                        index += 4
                        var scalar = code
                        if (0xD800..<0xDC00).contains(code), index + 6 <= bytes.count, bytes[index] == UInt8(ascii: "\\"),
                           let low = UInt32(String(decoding: bytes[(index + 2)..<(index + 6)], as: UTF8.self), radix: 16) {
                            scalar = 0x10000 + (code - 0xD800) << 10 + (low - 0xDC00)
                            index += 6
                        }
                        scalars.append(Unicode.Scalar(scalar) ?? "\u{FFFD}")
                    default: scalars.append(Unicode.Scalar(escape))
                    }
                    continue
                }
                run.append(byte)
                index += 1
            }
            throw error("ends inside a string")
        }
    }

    // MARK: - Text

    /// MySQL's printed form: `{"a": 1, "b": [true, null]}`.
    var text: String {
        var out: [UInt8] = []
        write(into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    func write(into out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let value): out.append(contentsOf: (value ? "true" : "false").utf8)
        case .number(let text): out.append(contentsOf: text.utf8)
        case .string(let text): JSONBuffer.appendString(text, to: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { out.append(contentsOf: ", ".utf8) }
                element.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (index, member) in members.enumerated() {
                if index > 0 { out.append(contentsOf: ", ".utf8) }
                JSONBuffer.appendString(member.key, to: &out)
                out.append(contentsOf: ": ".utf8)
                member.value.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    // MARK: - Partial updates

    /// One step of a MySQL JSON path: `.key` or `[index]`.
    enum PathStep: Equatable {
        case key(String)
        case index(Int)
    }

    /// Parses the concrete paths MySQL writes in partial updates: `$`, `.key`, `."quoted key"`, `[N]`.
    static func parsePath(_ path: String) throws -> [PathStep] {
        let bytes = Array(path.utf8)
        guard bytes.first == UInt8(ascii: "$") else { throw BinlogDecodingError(.invalid("JSON path '\(path)' does not start with $")) }
        var steps: [PathStep] = []
        var index = 1
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: ".") {
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
                    var parser = Parser(bytes: bytes, index: index)
                    steps.append(.key(try parser.string()))
                    index = parser.index
                } else {
                    let start = index
                    while index < bytes.count, bytes[index] != UInt8(ascii: "."), bytes[index] != UInt8(ascii: "[") { index += 1 }
                    steps.append(.key(String(decoding: bytes[start..<index], as: UTF8.self)))
                }
            } else if bytes[index] == UInt8(ascii: "[") {
                let start = index + 1
                while index < bytes.count, bytes[index] != UInt8(ascii: "]") { index += 1 }
                guard index < bytes.count, let position = Int(String(decoding: bytes[start..<index], as: UTF8.self)) else {
                    throw BinlogDecodingError(.invalid("JSON path '\(path)' has a bad array index"))
                }
                steps.append(.index(position))
                index += 1
            } else {
                throw BinlogDecodingError(.invalid("JSON path '\(path)' is not a concrete path"))
            }
        }
        return steps
    }

    enum Operation: UInt8 {
        case replace = 0
        case insert = 1
        case remove = 2
    }

    /// Applies one diff the way MySQL does: REPLACE changes an existing value, INSERT adds a
    /// member or array element, REMOVE deletes one.
    mutating func apply(_ operation: Operation, at path: [PathStep], value: JSONDocument?) throws {
        guard let step = path.first else {
            guard operation == .replace, let value else { throw BinlogDecodingError(.invalid("JSON diff on the whole document must be a replace")) }
            self = value
            return
        }
        let rest = Array(path.dropFirst())
        switch (self, step) {
        case (.object(var members), .key(let key)):
            if let position = members.firstIndex(where: { $0.key == key }) {
                if rest.isEmpty {
                    switch operation {
                    case .remove: members.remove(at: position)
                    case .replace, .insert: members[position].value = try Self.required(value)
                    }
                } else {
                    try members[position].value.apply(operation, at: rest, value: value)
                }
            } else if rest.isEmpty, operation == .insert {
                members.append((key, try Self.required(value)))
                members.sort { $0.key.utf8.count != $1.key.utf8.count ? $0.key.utf8.count < $1.key.utf8.count
                    : $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            } else {
                throw BinlogDecodingError(.invalid("JSON diff path member '\(key)' does not exist"))
            }
            self = .object(members)
        case (.array(var elements), .index(let position)):
            if rest.isEmpty {
                switch operation {
                case .insert: elements.insert(try Self.required(value), at: min(max(position, 0), elements.count))
                case .replace:
                    guard elements.indices.contains(position) else { throw BinlogDecodingError(.invalid("JSON diff index \(position) out of range")) }
                    elements[position] = try Self.required(value)
                case .remove:
                    guard elements.indices.contains(position) else { throw BinlogDecodingError(.invalid("JSON diff index \(position) out of range")) }
                    elements.remove(at: position)
                }
            } else {
                guard elements.indices.contains(position) else { throw BinlogDecodingError(.invalid("JSON diff index \(position) out of range")) }
                try elements[position].apply(operation, at: rest, value: value)
            }
            self = .array(elements)
        default:
            throw BinlogDecodingError(.invalid("JSON diff path does not match the document's shape"))
        }
    }

    private static func required(_ value: JSONDocument?) throws -> JSONDocument {
        guard let value else { throw BinlogDecodingError(.invalid("JSON diff without a value")) }
        return value
    }
}
