import FerryCore

/// What ferry knows of one PostgreSQL type: how to read its text form into a `Value`, the
/// column's type for a PostgreSQL target (`nativeType`) and the nearest MySQL type, which every
/// other sink's mapping understands.
///
/// Built-in types are known by OID. A type a database defines (enum, domain, composite, an
/// extension's type, an array of any of these) is resolved by the source from `pg_type`, into a
/// `PgType` of the kind its values read as: a domain as its base type, an enum as `.enumeration`,
/// everything else as text. Such a type does not exist in another database, so its native type
/// is the built-in one its text fits (`text`, or the domain's base type).
public struct PgType: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case boolean, smallint, integer, bigint, oid, real, double, numeric, money
        case text, bytea, date, time, timestamp, timestamptz, json, uuid, enumeration
        /// Anything read as its canonical text (`Value.sourceText`): intervals, ranges, arrays,
        /// network, geometric and bit-string types, `timetz`, xml, tsvector, composites, …
        case other
    }

    public var kind: Kind
    /// The type for a PostgreSQL target, without the column's modifier: `numeric`, `integer[]`.
    public var baseName: String

    public init(kind: Kind, baseName: String) {
        self.kind = kind
        self.baseName = baseName
    }

    /// The built-in types by OID (`pg_type.dat`); arrays are listed with their element types.
    public static func builtIn(_ oid: UInt32) -> PgType? {
        if let type = scalars[oid] { return type }
        if let element = arrayElements[oid], let type = scalars[element] { return PgType(kind: .other, baseName: type.baseName + "[]") }
        return nil
    }

    static let scalars: [UInt32: PgType] = {
        let table: [(UInt32, Kind, String)] = [
            (16, .boolean, "boolean"), (17, .bytea, "bytea"), (18, .text, "\"char\""), (19, .text, "name"),
            (20, .bigint, "bigint"), (21, .smallint, "smallint"), (22, .other, "int2vector"), (23, .integer, "integer"), (25, .text, "text"),
            (30, .other, "oidvector"),
            (26, .oid, "oid"), (114, .json, "json"), (142, .other, "xml"), (600, .other, "point"), (601, .other, "lseg"),
            (602, .other, "path"), (603, .other, "box"), (604, .other, "polygon"), (628, .other, "line"),
            (650, .other, "cidr"), (700, .real, "real"), (701, .double, "double precision"), (718, .other, "circle"),
            (774, .other, "macaddr8"), (790, .money, "money"), (829, .other, "macaddr"), (869, .other, "inet"),
            (1042, .text, "character"), (1043, .text, "character varying"), (1082, .date, "date"),
            (1083, .time, "time without time zone"), (1114, .timestamp, "timestamp without time zone"),
            (1184, .timestamptz, "timestamp with time zone"), (1186, .other, "interval"),
            (1266, .other, "time with time zone"), (1560, .other, "bit"), (1562, .other, "bit varying"),
            (1700, .numeric, "numeric"), (2950, .uuid, "uuid"), (3220, .other, "pg_lsn"), (3614, .other, "tsvector"),
            (3615, .other, "tsquery"), (3802, .json, "jsonb"), (4072, .other, "jsonpath"),
            (3904, .other, "int4range"), (3906, .other, "numrange"), (3908, .other, "tsrange"), (3910, .other, "tstzrange"),
            (3912, .other, "daterange"), (3926, .other, "int8range"), (4451, .other, "int4multirange"),
            (4532, .other, "nummultirange"), (4533, .other, "tsmultirange"), (4534, .other, "tstzmultirange"),
            (4535, .other, "datemultirange"), (4536, .other, "int8multirange"),
        ]
        return Dictionary(uniqueKeysWithValues: table.map { ($0.0, PgType(kind: $0.1, baseName: $0.2)) })
    }()

    /// Array type OID → element type OID, for the element types above.
    static let arrayElements: [UInt32: UInt32] = [
        1000: 16, 1001: 17, 1002: 18, 1003: 19, 1016: 20, 1005: 21, 1007: 23, 1009: 25, 1028: 26, 199: 114, 143: 142,
        1017: 600, 1018: 601, 1019: 602, 1020: 603, 1027: 604, 629: 628, 651: 650, 1021: 700, 1022: 701, 719: 718,
        775: 774, 791: 790, 1040: 829, 1041: 869, 1014: 1042, 1015: 1043, 1182: 1082, 1183: 1083, 1115: 1114,
        1185: 1184, 1187: 1186, 1270: 1266, 1561: 1560, 1563: 1562, 1231: 1700, 2951: 2950, 3221: 3220, 3643: 3614,
        3645: 3615, 3807: 3802, 4073: 4072, 3905: 3904, 3907: 3906, 3909: 3908, 3911: 3910, 3913: 3912, 3927: 3926,
        6150: 4451, 6151: 4532, 6152: 4533, 6153: 4534, 6155: 4535, 6157: 4536,
    ]

    /// The column's type for a PostgreSQL target with its modifier applied, as `format_type`
    /// writes it: `numeric(12,2)`, `character varying(40)`, `timestamp(3) with time zone`.
    public func nativeType(modifier: Int32) -> String {
        let isArray = baseName.hasSuffix("[]")
        let scalar = isArray ? String(baseName.dropLast(2)) : baseName
        return Self.applying(modifier: modifier, to: scalar) + (isArray ? "[]" : "")
    }

    static func applying(modifier: Int32, to name: String) -> String {
        guard modifier >= 0 else { return name == "character" ? "bpchar" : name }
        switch name {
        case "numeric":
            guard let (precision, scale) = numericPrecisionScale(modifier) else { return name }
            return "numeric(\(precision),\(scale))"
        case "character", "character varying":
            return modifier >= 4 ? "\(name)(\(modifier - 4))" : name
        case "bit", "bit varying":
            return "\(name)(\(modifier))"
        case "timestamp without time zone", "timestamp with time zone", "time without time zone", "time with time zone":
            let words = name.split(separator: " ", maxSplits: 1)
            return "\(words[0])(\(modifier)) \(words[1])"
        case "interval":
            let precision = modifier & 0xFFFF
            return precision == 0xFFFF ? name : "interval(\(precision))"
        default:
            return name
        }
    }

    /// A `numeric(p,s)` column's precision and scale; nil for an unconstrained `numeric`.
    static func numericPrecisionScale(_ modifier: Int32) -> (precision: Int32, scale: Int32)? {
        guard modifier >= 4 else { return nil }
        let packed = modifier - 4
        // The scale is an 11-bit signed field (negative scales exist since PostgreSQL 15).
        return ((packed >> 16) & 0xFFFF, ((packed & 0x7FF) ^ 1024) - 1024)
    }

    /// Fractional-second digits a temporal column keeps (its modifier, or 6 without one).
    public static func fractionDigits(modifier: Int32) -> UInt8 {
        (0...6).contains(modifier) ? UInt8(modifier) : 6
    }

    /// The nearest MySQL type, which the sinks other than PostgreSQL map from. A type MySQL
    /// cannot hold exactly becomes `longtext` (`longblob` for bytes): the value's text is kept.
    public func mysqlType(modifier: Int32) -> String {
        switch kind {
        case .boolean: return "boolean"
        case .smallint: return "smallint"
        case .integer: return "int"
        case .bigint: return "bigint"
        case .oid: return "int unsigned"
        case .real: return "float"
        case .double: return "double"
        case .money: return "decimal(19,2)"
        case .numeric:
            guard let (precision, scale) = Self.numericPrecisionScale(modifier) else { return "longtext" }
            return (1...65).contains(precision) && (0...30).contains(scale) && scale <= precision ? "decimal(\(precision),\(scale))" : "longtext"
        case .text:
            if baseName == "\"char\"" { return "char(1)" }
            let length = modifier - 4
            if baseName == "character", modifier >= 4, length <= 255 { return "char(\(length))" }
            if baseName == "character varying", modifier >= 4, length <= 16_383 { return "varchar(\(length))" }
            return baseName == "name" ? "varchar(63)" : "longtext"
        case .bytea: return "longblob"
        case .date: return "date"
        case .time: return "time(\(Self.fractionDigits(modifier: modifier)))"
        case .timestamp: return "datetime(\(Self.fractionDigits(modifier: modifier)))"
        // An instant, in UTC: MySQL's TIMESTAMP holds only 1970–2038, DATETIME every year here.
        case .timestamptz: return "datetime(\(Self.fractionDigits(modifier: modifier)))"
        case .json: return "json"
        case .uuid: return "uuid"
        case .enumeration: return "varchar(64)"
        case .other: return "longtext"
        }
    }

    /// The character set MySQL-shaped targets give a column of this type.
    public var charset: String? {
        switch kind {
        case .text, .enumeration, .other, .json: "utf8mb4"
        case .bytea: "binary"
        default: nil
        }
    }
}
