/// MySQL column type codes as they appear in TABLE_MAP events (`enum_field_types`).
public enum ColumnType: UInt8, Sendable, CaseIterable {
    case decimal = 0
    case tiny = 1
    case short = 2
    case long = 3
    case float = 4
    case double = 5
    case null = 6
    case timestamp = 7
    case longlong = 8
    case int24 = 9
    case date = 10
    case time = 11
    case datetime = 12
    case year = 13
    case newDate = 14
    case varchar = 15
    case bit = 16
    case timestamp2 = 17
    case datetime2 = 18
    case time2 = 19
    case typedArray = 20
    case vector = 242
    case json = 245
    case newDecimal = 246
    case enumeration = 247
    case set = 248
    case tinyBlob = 249
    case mediumBlob = 250
    case longBlob = 251
    case blob = 252
    case varString = 253
    case string = 254
    case geometry = 255

    /// Number of metadata bytes this type has in a TABLE_MAP event.
    var metadataLength: Int {
        switch self {
        case .float, .double, .blob, .geometry, .json, .time2, .datetime2, .timestamp2, .tinyBlob, .mediumBlob, .longBlob:
            1
        case .varchar, .varString, .bit, .newDecimal, .string, .enumeration, .set:
            2
        case .vector:
            1
        default:
            0
        }
    }

    /// Numeric types carry a bit in the SIGNEDNESS optional metadata.
    var isNumeric: Bool {
        switch self {
        case .tiny, .short, .int24, .long, .longlong, .newDecimal, .float, .double, .decimal: true
        default: false
        }
    }
}
