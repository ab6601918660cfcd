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
        default: "text"
        }
    }
}

/// A value while an expression is evaluated.
public enum RuleValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case text(String)

    init(_ value: Value?) {
        switch value {
        case nil, .null?, .absent?: self = .null
        case .int(let number)?: self = .integer(number)
        case .uint(let number)?: self = number <= UInt64(Int64.max) ? .integer(Int64(number)) : .number(Double(number))
        case .year(let year)?: self = .integer(Int64(year))
        case .bit(let bits, _)?: self = bits <= UInt64(Int64.max) ? .integer(Int64(bits)) : .number(Double(bits))
        case .float(let number)?: self = .number(Double(number))
        case .double(let number)?: self = .number(number)
        case .decimal(let text)?: self = Double(text).map { .number($0) } ?? .text(text)
        case let value?: self = ValueJSON.plainText(value).map { .text(String(decoding: $0, as: UTF8.self)) } ?? .null
        }
    }

    var isTrue: Bool {
        switch self {
        case .null: false
        case .bool(let flag): flag
        case .integer(let number): number != 0
        case .number(let number): number != 0
        case .text(let text): !text.isEmpty
        }
    }

    var number: Double? {
        switch self {
        case .integer(let number): Double(number)
        case .number(let number): number
        case .bool(let flag): flag ? 1 : 0
        case .text(let text): Double(text)
        case .null: nil
        }
    }

    var text: String? {
        switch self {
        case .null: nil
        case .bool(let flag): flag ? "true" : "false"
        case .integer(let number): String(number)
        case .number(let number): number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)
        case .text(let text): text
        }
    }

    /// The value a computed column gets.
    var columnValue: Value {
        switch self {
        case .null: .null
        case .bool(let flag): .int(flag ? 1 : 0)
        case .integer(let number): .int(number)
        case .number(let number): .double(number)
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
            guard let l = left.number, let r = right.number else { return .null }
            switch operation {
            case .add: return Self.integral(l + r, left, right)
            case .subtract: return Self.integral(l - r, left, right)
            case .multiply: return Self.integral(l * r, left, right)
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

    private static func integral(_ result: Double, _ a: RuleValue, _ b: RuleValue) -> RuleValue {
        if case .integer = a, case .integer = b, abs(result) < 9e18 { return .integer(Int64(result)) }
        return .number(result)
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
