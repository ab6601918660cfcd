/// The types of a database's columns, built-in ones by OID and the database's own (enums,
/// domains, composites, extension types, arrays of them) from its `pg_type` rows, which the source
/// reads for OIDs it does not know (`missing`, then `add`, until nothing is missing).
public struct PgTypeCatalog: Sendable {
    /// One `pg_type` row: `oid, typtype, typbasetype, typelem, typtypmod, typcategory`.
    public struct Row: Sendable, Equatable {
        public var oid: UInt32
        /// `b` base, `c` composite, `d` domain, `e` enum, `p` pseudo, `r` range, `m` multirange.
        public var kind: UInt8
        public var baseType: UInt32
        public var element: UInt32
        public var baseModifier: Int32
        /// `A` for arrays.
        public var category: UInt8

        public init(oid: UInt32, kind: UInt8, baseType: UInt32, element: UInt32, baseModifier: Int32, category: UInt8) {
            self.oid = oid
            self.kind = kind
            self.baseType = baseType
            self.element = element
            self.baseModifier = baseModifier
            self.category = category
        }
    }

    /// The query that reads `Row`s for `$1`, an `oid[]`.
    public static let query = "SELECT oid::text, typtype::text, typbasetype::text, typelem::text, typtypmod::text, typcategory::text FROM pg_type WHERE oid = ANY($1::oid[])"

    private var rows: [UInt32: Row] = [:]

    public init() {}

    public mutating func add(_ row: Row) { rows[row.oid] = row }

    /// OIDs among `oids` (and the types they are built on) that are neither built in nor read yet.
    public func missing(_ oids: [UInt32]) -> [UInt32] {
        var missing: Set<UInt32> = []
        var pending = oids
        var seen: Set<UInt32> = []
        while let oid = pending.popLast() {
            guard seen.insert(oid).inserted, PgType.builtIn(oid) == nil else { continue }
            guard let row = rows[oid] else {
                missing.insert(oid)
                continue
            }
            if row.kind == UInt8(ascii: "d") { pending.append(row.baseType) }
            if row.category == UInt8(ascii: "A"), row.element != 0 { pending.append(row.element) }
        }
        return missing.sorted()
    }

    /// How a column of type `oid` with `modifier` reads, and the modifier its native type takes
    /// (a domain's own, since the column's is -1); nil while the type is missing.
    public func column(oid: UInt32, modifier: Int32) -> (type: PgType, modifier: Int32)? {
        if let type = PgType.builtIn(oid) { return (type, modifier) }
        guard let row = rows[oid] else { return nil }
        switch row.kind {
        case UInt8(ascii: "d"):
            return column(oid: row.baseType, modifier: row.baseModifier)
        case UInt8(ascii: "e"):
            return (PgType(kind: .enumeration, baseName: "text"), -1)
        default:
            guard row.category == UInt8(ascii: "A"), row.element != 0 else { return (PgType(kind: .other, baseName: "text"), -1) }
            // An array of the database's own type: the array literal, as an array of the type its
            // elements are written in.
            guard let element = column(oid: row.element, modifier: modifier) else { return nil }
            let name = element.type.kind == .other || element.type.kind == .enumeration ? "text" : element.type.baseName
            return (PgType(kind: .other, baseName: name + "[]"), element.modifier)
        }
    }
}
