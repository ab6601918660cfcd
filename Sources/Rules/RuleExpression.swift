import FerryCore

/// A rule's condition or computed value, parsed from the YAML text:
///
///     changed(status) and after.status == 'paid' and before.total != null
///     op == 'delete' or table == 'shop.orders'
///     concat(after.first, ' ', after.last)      after.price * after.quantity
///
/// A bare column name means the row's new image (the old one for a delete).
public indirect enum RuleExpression: Sendable, Equatable {
    public enum Side: String, Sendable { case before, after }
    public enum Comparison: String, Sendable { case equal = "==", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">=" }
    public enum Arithmetic: String, Sendable { case add = "+", subtract = "-", multiply = "*", divide = "/" }
    public enum Function: String, Sendable, CaseIterable { case concat, lower, upper, coalesce, length }

    case literal(RuleValue)
    case column(Side?, String)
    /// `op`: c, u, d or r — or the names create, update, delete, read.
    case operation
    /// `table`: `db.table`.
    case table
    case changed(String)
    case not(RuleExpression)
    case and(RuleExpression, RuleExpression)
    case or(RuleExpression, RuleExpression)
    case compare(Comparison, RuleExpression, RuleExpression)
    case arithmetic(Arithmetic, RuleExpression, RuleExpression)
    case call(Function, [RuleExpression])

    /// Every column the expression names, for checking them against a table.
    public var columns: Set<String> {
        switch self {
        case .literal, .operation, .table: []
        case .column(_, let name), .changed(let name): [name]
        case .not(let inner): inner.columns
        case .and(let a, let b), .or(let a, let b), .compare(_, let a, let b), .arithmetic(_, let a, let b): a.columns.union(b.columns)
        case .call(_, let arguments): arguments.reduce(into: Set()) { $0.formUnion($1.columns) }
        }
    }

    /// What a computed column holds, as a source type name for the sinks that create columns.
    public var resultTypeName: String {
        switch self {
        case .not, .and, .or, .compare, .changed: "tinyint"
        case .arithmetic: "double"
        case .call(.length, _): "bigint"
        case .literal(.integer): "bigint"
        case .literal(.number): "double"
        case .literal(.decimal(let text)): Self.decimalTypeName(text)
        default: "text"
        }
    }
}

extension RuleExpression {
    /// The type of a number literal as written: `12.50` is decimal(4,2).
    static func decimalTypeName(_ text: String) -> String {
        let parts = text.drop { $0 == "-" }.split(separator: ".", omittingEmptySubsequences: false)
        let scale = parts.count == 2 ? parts[1].count : 0
        return "decimal(\(max(parts[0].drop { $0 == "0" }.count, 1) + scale),\(scale))"
    }
}

/// A value while an expression is evaluated.
public enum RuleValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    /// An exact number as text (`-?digits[.digits]`): a DECIMAL value, a number literal with a
    /// fraction, an unsigned value beyond Int64. Compared without rounding.
    case decimal(String)
    case text(String)

    init(_ value: Value?) {
        switch value {
        case nil, .null?, .absent?: self = .null
        case .int(let number)?: self = .integer(number)
        case .uint(let number)?: self = number <= UInt64(Int64.max) ? .integer(Int64(number)) : .decimal(String(number))
        case .year(let year)?: self = .integer(Int64(year))
        case .bit(let bits, _)?: self = bits <= UInt64(Int64.max) ? .integer(Int64(bits)) : .decimal(String(bits))
        case .float(let number)?: self = .number(Double(number))
        case .double(let number)?: self = .number(number)
        case .decimal(let text)?: self = .decimal(text)
        case .bool(let flag)?: self = .bool(flag)
        case let value?: self = ValueJSON.plainText(value).map { .text(String(decoding: $0, as: UTF8.self)) } ?? .null
        }
    }

    var isTrue: Bool {
        switch self {
        case .null: false
        case .bool(let flag): flag
        case .integer(let number): number != 0
        case .number(let number): number != 0
        case .decimal(let text): !(ExactNumber(text)?.isZero ?? true)
        case .text(let text): !text.isEmpty
        }
    }

    var number: Double? {
        switch self {
        case .integer(let number): Double(number)
        case .number(let number): number
        case .bool(let flag): flag ? 1 : 0
        case .decimal(let text), .text(let text): Double(text)
        case .null: nil
        }
    }

    var text: String? {
        switch self {
        case .null: nil
        case .bool(let flag): flag ? "true" : "false"
        case .integer(let number): String(number)
        case .number(let number): number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)
        case .decimal(let text), .text(let text): text
        }
    }

    /// The value as an exact number, when it is one.
    var exact: ExactNumber? {
        switch self {
        case .integer(let number): ExactNumber(String(number))
        case .decimal(let text): ExactNumber(text)
        default: nil
        }
    }

    /// The value a computed column gets.
    var columnValue: Value {
        switch self {
        case .null: .null
        case .bool(let flag): .int(flag ? 1 : 0)
        case .integer(let number): .int(number)
        case .number(let number): .double(number)
        case .decimal(let text): .decimal(text)
        case .text(let text): .string(text)
        }
    }
}

/// The change an expression is evaluated against.
public struct RuleContext {
    let event: ChangeEvent
    /// Column name → index in the event's rows.
    let columns: [String: Int]

    func value(_ side: RuleExpression.Side?, _ name: String) -> Value? {
        guard let index = columns[name] else { return nil }
        switch side {
        case .before: return event.before?[index]
        case .after: return event.after?[index]
        case nil: return (event.after ?? event.before)?[index]
        }
    }
}

extension RuleExpression {
    func evaluate(_ context: RuleContext) -> RuleValue {
        switch self {
        case .literal(let value): return value
        case .column(let side, let name): return RuleValue(context.value(side, name))
        case .operation: return .text(context.event.operation.code)
        case .table: return .text(context.event.table.description)
        case .changed(let name):
            let before = context.value(.before, name), after = context.value(.after, name)
            if case .absent? = after { return .bool(false) }
            return .bool(before != after && !(before == nil && after == .null) && !(after == nil && before == .null))
        case .not(let inner): return .bool(!inner.evaluate(context).isTrue)
        case .and(let a, let b): return .bool(a.evaluate(context).isTrue && b.evaluate(context).isTrue)
        case .or(let a, let b): return .bool(a.evaluate(context).isTrue || b.evaluate(context).isTrue)
        case .compare(let comparison, let a, let b):
            var left = a.evaluate(context), right = b.evaluate(context)
            // `op == 'delete'` reads as well as `op == 'd'`.
            if case .operation = a, case .text(let name) = right { right = .text(Self.operationCode(name)) }
            if case .operation = b, case .text(let name) = left { left = .text(Self.operationCode(name)) }
            return .bool(Self.compare(comparison, left, right))
        case .arithmetic(let operation, let a, let b):
            let left = a.evaluate(context), right = b.evaluate(context)
            if operation == .add, case .text = left, let l = left.text, let r = right.text, right.number == nil || left.number == nil { return .text(l + r) }
            if case .integer(let l) = left, case .integer(let r) = right, let exact = Self.integral(operation, l, r) { return .integer(exact) }
            guard let l = left.number, let r = right.number else { return .null }
            switch operation {
            case .add: return .number(l + r)
            case .subtract: return .number(l - r)
            case .multiply: return .number(l * r)
            case .divide: return r == 0 ? .null : .number(l / r)
            }
        case .call(let function, let arguments):
            let values = arguments.map { $0.evaluate(context) }
            switch function {
            case .concat: return .text(values.compactMap(\.text).joined())
            case .lower: return values.first?.text.map { .text($0.lowercased()) } ?? .null
            case .upper: return values.first?.text.map { .text($0.uppercased()) } ?? .null
            case .coalesce: return values.first { $0 != .null } ?? .null
            case .length: return values.first?.text.map { .integer(Int64($0.count)) } ?? .null
            }
        }
    }

    private static func operationCode(_ name: String) -> String {
        ["create": "c", "insert": "c", "update": "u", "delete": "d", "read": "r", "snapshot": "r"][name.lowercased()] ?? name
    }

    /// Integer arithmetic, nil when the result does not fit Int64 or is a division (both are
    /// then done in doubles).
    private static func integral(_ operation: Arithmetic, _ l: Int64, _ r: Int64) -> Int64? {
        let result = switch operation {
        case .add: l.addingReportingOverflow(r)
        case .subtract: l.subtractingReportingOverflow(r)
        case .multiply: l.multipliedReportingOverflow(by: r)
        case .divide: (partialValue: Int64(0), overflow: true)
        }
        return result.overflow ? nil : result.partialValue
    }

    static func compare(_ comparison: Comparison, _ a: RuleValue, _ b: RuleValue) -> Bool {
        if a == .null || b == .null {
            let same = a == .null && b == .null
            switch comparison {
            case .equal: return same
            case .notEqual: return !same
            default: return false
            }
        }
        let order: Int
        if case .text(let l) = a, case .text(let r) = b {
            order = l == r ? 0 : (l < r ? -1 : 1)
        } else if case .integer(let l) = a, case .integer(let r) = b {
            order = l == r ? 0 : (l < r ? -1 : 1)
        } else if let l = a.exact, let r = b.exact {
            order = l.compare(r)
        } else if let l = a.number, let r = b.number {
            order = l == r ? 0 : (l < r ? -1 : 1)
        } else if let l = a.text, let r = b.text {
            order = l == r ? 0 : (l < r ? -1 : 1)
        } else {
            return comparison == .notEqual
        }
        switch comparison {
        case .equal: return order == 0
        case .notEqual: return order != 0
        case .less: return order < 0
        case .lessOrEqual: return order <= 0
        case .greater: return order > 0
        case .greaterOrEqual: return order >= 0
        }
    }
}

/// A number written `-?digits[.digits]`, ordered without rounding (DECIMAL(65,30) included).
struct ExactNumber {
    let negative: Bool
    /// Integer digits without leading zeros.
    let digits: Substring
    /// Fraction digits without trailing zeros.
    let fraction: Substring

    init?(_ text: String) {
        var rest = Substring(text)
        let negative = rest.first == "-"
        if negative || rest.first == "+" { rest = rest.dropFirst() }
        let parts = rest.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard !rest.isEmpty, parts.allSatisfy({ $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }), !parts[0].isEmpty || parts.count == 2 else { return nil }
        digits = parts[0].drop { $0 == "0" }
        fraction = parts.count == 2 ? Substring(parts[1].reversed().drop { $0 == "0" }.reversed()) : ""
        self.negative = negative && !(digits.isEmpty && fraction.isEmpty)
    }

    var isZero: Bool { digits.isEmpty && fraction.isEmpty }

    /// -1, 0 or 1.
    func compare(_ other: ExactNumber) -> Int {
        if negative != other.negative { return negative ? -1 : 1 }
        let magnitude: Int
        if digits.count != other.digits.count {
            magnitude = digits.count < other.digits.count ? -1 : 1
        } else if digits != other.digits {
            magnitude = digits < other.digits ? -1 : 1
        } else {
            let width = max(fraction.count, other.fraction.count)
            let l = fraction + String(repeating: "0", count: width - fraction.count)
            let r = other.fraction + String(repeating: "0", count: width - other.fraction.count)
            magnitude = l == r ? 0 : (l < r ? -1 : 1)
        }
        return negative ? -magnitude : magnitude
    }
}
