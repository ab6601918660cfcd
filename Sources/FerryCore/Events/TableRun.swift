/// A value derived from a change's table (a target table's name, an index, a subject), kept for
/// the next change: a batch's changes come in runs of one table, so the last table's value is
/// nearly always the one asked for, and deriving it again per change is what costs.
public struct TableRun<Value> {
    private var last: (table: TableName, value: Value)?

    public init() {}

    /// The value for `table`: the last one when the table is the same, else `make`'s.
    public mutating func value(for table: TableName, _ make: () throws -> Value) rethrows -> Value {
        if let last, last.table == table { return last.value }
        let value = try make()
        last = (table, value)
        return value
    }
}
