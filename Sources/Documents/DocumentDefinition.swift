import FerryCore

/// A document built from a root table and the tables joined to it (`documents:` of a pipeline):
/// one document per root row, keyed by the root's primary key (one or more columns), landing in
/// the table `<root db>.<name>` as `(key columns…, document JSON)`.
public struct DocumentDefinition: Sendable {
    public var name: String
    public var root: TableName
    /// The root's columns in the document; nil: all.
    public var columns: [String]?
    public var joins: [DocumentJoin]
    /// `file:line`, for errors.
    public var location: String

    public init(name: String, root: TableName, columns: [String]? = nil, joins: [DocumentJoin] = [], location: String) {
        self.name = name
        self.root = root
        self.columns = columns
        self.joins = joins
        self.location = location
    }

    /// Where the documents land.
    public var table: TableName { TableName(database: root.database, table: name) }

    /// Every table the document reads.
    public var tables: [TableName] {
        func walk(_ joins: [DocumentJoin]) -> [TableName] {
            joins.flatMap { join in [join.table] + (join.through.map { [$0.table] } ?? []) + walk(join.joins) }
        }
        return [root] + walk(joins)
    }
}

/// A table joined to its parent in a document.
///
/// - `one`: the child row whose `childColumns` equal the parent's `parentColumns` (many-to-one or
///   one-to-one), an object or `null`;
/// - `many`: every such child row (one-to-many), an array in key order;
/// - with `through`: a link table between them (many-to-many): link rows whose
///   `through.parentColumns` equal the parent's `parentColumns`, and the child rows whose
///   `childColumns` equal the link rows' `through.childColumns`.
///
/// Columns pair up in order (a join on several columns matches on all of them); a null in any
/// of them joins nothing, as in SQL.
public struct DocumentJoin: Sendable {
    public enum Kind: String, Sendable { case one, many }

    public struct Through: Sendable {
        public var table: TableName
        public var parentColumns: [String]
        public var childColumns: [String]

        public init(table: TableName, parentColumns: [String], childColumns: [String]) {
            self.table = table
            self.parentColumns = parentColumns
            self.childColumns = childColumns
        }
    }

    /// The field of the parent object that holds the joined row(s).
    public var field: String
    public var table: TableName
    public var kind: Kind
    public var parentColumns: [String]
    public var childColumns: [String]
    public var through: Through?
    public var columns: [String]?
    public var joins: [DocumentJoin]
    public var location: String

    public init(field: String, table: TableName, kind: Kind, parentColumns: [String], childColumns: [String], through: Through? = nil,
                columns: [String]? = nil, joins: [DocumentJoin] = [], location: String) {
        self.field = field
        self.table = table
        self.kind = kind
        self.parentColumns = parentColumns
        self.childColumns = childColumns
        self.through = through
        self.columns = columns
        self.joins = joins
        self.location = location
    }
}
