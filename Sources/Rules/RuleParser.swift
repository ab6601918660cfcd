/// Parses a rule expression. Precedence, loosest first: `or`/`||`, `and`/`&&`, `not`/`!`,
/// comparisons, `+ -`, `* /`. Strings are quoted with `'` or `"` (backslash escapes the quote).
public struct RuleParser {
    enum Token: Equatable {
        case identifier(String)
        case string(String)
        case integer(Int64)
        /// A number with a fraction, or too large for Int64, kept exact.
        case decimal(String)
        case symbol(String)
        case end
    }

    private var tokens: [(token: Token, offset: Int)] = []
    private var position = 0

    /// Parses `text`; a mistake is a `RuleSyntaxError` with the 1-based column where it is.
    public static func parse(_ text: String) throws(RuleSyntaxError) -> RuleExpression {
        var parser = RuleParser()
        parser.tokens = try tokenize(text)
        let expression = try parser.parseOr()
        guard parser.current == .end else { throw parser.failure("unexpected \(parser.describe(parser.current))") }
        return expression
    }

    private var current: Token { tokens[position].token }

    private func failure(_ message: String) -> RuleSyntaxError {
        RuleSyntaxError(message: message, column: tokens[position].offset + 1)
    }

    private func describe(_ token: Token) -> String {
        switch token {
        case .identifier(let name): "'\(name)'"
        case .string(let text): "the string '\(text)'"
        case .integer(let number): "\(number)"
        case .decimal(let text): text
        case .symbol(let symbol): "'\(symbol)'"
        case .end: "the end"
        }
    }

    private mutating func accept(_ symbol: String) -> Bool {
        if current == .symbol(symbol) || current == .identifier(symbol) {
            position += 1
            return true
        }
        return false
    }

    private mutating func expect(_ symbol: String) throws(RuleSyntaxError) {
        guard accept(symbol) else { throw failure("expected '\(symbol)' but found \(describe(current))") }
    }

    private mutating func parseOr() throws(RuleSyntaxError) -> RuleExpression {
        var left = try parseAnd()
        while accept("or") || accept("||") { left = .or(left, try parseAnd()) }
        return left
    }

    private mutating func parseAnd() throws(RuleSyntaxError) -> RuleExpression {
        var left = try parseNot()
        while accept("and") || accept("&&") { left = .and(left, try parseNot()) }
        return left
    }

    private mutating func parseNot() throws(RuleSyntaxError) -> RuleExpression {
        if accept("not") || accept("!") { return .not(try parseNot()) }
        return try parseComparison()
    }

    private mutating func parseComparison() throws(RuleSyntaxError) -> RuleExpression {
        let left = try parseSum()
        for comparison in [RuleExpression.Comparison.equal, .notEqual, .lessOrEqual, .greaterOrEqual, .less, .greater] where accept(comparison.rawValue) {
            return .compare(comparison, left, try parseSum())
        }
        return left
    }

    private mutating func parseSum() throws(RuleSyntaxError) -> RuleExpression {
        var left = try parseProduct()
        while true {
            if accept("+") { left = .arithmetic(.add, left, try parseProduct()) } else if accept("-") { left = .arithmetic(.subtract, left, try parseProduct()) } else { return left }
        }
    }

    private mutating func parseProduct() throws(RuleSyntaxError) -> RuleExpression {
        var left = try parsePrimary()
        while true {
            if accept("*") { left = .arithmetic(.multiply, left, try parsePrimary()) } else if accept("/") { left = .arithmetic(.divide, left, try parsePrimary()) } else { return left }
        }
    }

    private mutating func parsePrimary() throws(RuleSyntaxError) -> RuleExpression {
        let token = current
        switch token {
        case .string(let text):
            position += 1
            return .literal(.text(text))
        case .integer(let number):
            position += 1
            return .literal(.integer(number))
        case .decimal(let text):
            position += 1
            return .literal(.decimal(text))
        case .symbol("("):
            position += 1
            let inner = try parseOr()
            try expect(")")
            return inner
        case .symbol("-"):
            position += 1
            // A negative number is a literal, so it stays exact.
            switch current {
            case .integer(let number):
                position += 1
                return .literal(.integer(-number))
            case .decimal(let text):
                position += 1
                return .literal(.decimal("-" + text))
            default: break
            }
            return .arithmetic(.subtract, .literal(.integer(0)), try parsePrimary())
        case .identifier(let name):
            position += 1
            switch name {
            case "null": return .literal(.null)
            case "true": return .literal(.bool(true))
            case "false": return .literal(.bool(false))
            case "op": return .operation
            case "table": return .table
            case "before", "after":
                guard accept(".") else { return .column(nil, name) }
                guard case .identifier(let column) = current else { throw failure("expected a column name after '\(name).'") }
                position += 1
                return .column(RuleExpression.Side(rawValue: name), column)
            case "changed":
                try expect("(")
                guard case .identifier(let column) = current else { throw failure("changed() takes a column name") }
                position += 1
                try expect(")")
                return .changed(column)
            default:
                if current == .symbol("(") {
                    guard let function = RuleExpression.Function(rawValue: name) else {
                        throw RuleSyntaxError(message: "unknown function '\(name)' (known: changed, \(RuleExpression.Function.allCases.map(\.rawValue).joined(separator: ", ")))",
                                              column: tokens[position - 1].offset + 1)
                    }
                    position += 1
                    var arguments: [RuleExpression] = []
                    if !accept(")") {
                        repeat { arguments.append(try parseOr()) } while accept(",")
                        try expect(")")
                    }
                    return .call(function, arguments)
                }
                return .column(nil, name)
            }
        default:
            throw failure("expected a value, a column or '(' but found \(describe(token))")
        }
    }

    private static func tokenize(_ text: String) throws(RuleSyntaxError) -> [(token: Token, offset: Int)] {
        let characters = Array(text)
        var tokens: [(Token, Int)] = []
        var index = 0
        while index < characters.count {
            let character = characters[index]
            let start = index
            if character.isWhitespace {
                index += 1
                continue
            }
            if character.isLetter || character == "_" {
                while index < characters.count, characters[index].isLetter || characters[index].isNumber || characters[index] == "_" { index += 1 }
                tokens.append((.identifier(String(characters[start..<index])), start))
            } else if character.isNumber {
                while index < characters.count, characters[index].isNumber || characters[index] == "." { index += 1 }
                let literal = String(characters[start..<index])
                if let integer = Int64(literal) {
                    tokens.append((.integer(integer), start))
                } else if literal.filter({ $0 == "." }).count <= 1, literal.last != "." {
                    tokens.append((.decimal(literal), start))
                } else {
                    throw RuleSyntaxError(message: "'\(literal)' is not a number", column: start + 1)
                }
            } else if character == "'" || character == "\"" {
                index += 1
                var value = ""
                while index < characters.count, characters[index] != character {
                    if characters[index] == "\\", index + 1 < characters.count { index += 1 }
                    value.append(characters[index])
                    index += 1
                }
                guard index < characters.count else { throw RuleSyntaxError(message: "a string is not closed", column: start + 1) }
                index += 1
                tokens.append((.string(value), start))
            } else {
                let pair = index + 1 < characters.count ? String(characters[index...index + 1]) : ""
                if ["==", "!=", "<=", ">=", "&&", "||"].contains(pair) {
                    tokens.append((.symbol(pair), start))
                    index += 2
                } else if "<>!+-*/(),.".contains(character) {
                    tokens.append((.symbol(String(character)), start))
                    index += 1
                } else if character == "=" {
                    throw RuleSyntaxError(message: "'=' compares nothing: write '=='", column: start + 1)
                } else {
                    throw RuleSyntaxError(message: "unexpected '\(character)'", column: start + 1)
                }
            }
        }
        tokens.append((.end, characters.count))
        return tokens
    }
}

/// A rule expression that does not parse, with the 1-based column of the mistake.
public struct RuleSyntaxError: Error, Equatable {
    public var message: String
    public var column: Int
}
