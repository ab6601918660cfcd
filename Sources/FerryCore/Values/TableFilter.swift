/// Include/exclude globs (`TableGlob`) over `database.table`. With no include globs every table is included; excludes win.
public struct TableFilter: Sendable {
    public var include: [String]
    public var exclude: [String]

    public init(include: [String] = [], exclude: [String] = []) {
        self.include = include
        self.exclude = exclude
    }

    public func includes(_ table: TableName) -> Bool {
        let name = table.description
        if exclude.contains(where: { TableGlob.matches($0, name) }) { return false }
        return include.isEmpty || include.contains { TableGlob.matches($0, name) }
    }

}
