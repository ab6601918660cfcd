/// The character sets Ferry decodes to UTF-8, and the collation ids that use them.
public enum CharacterSet: Sendable, Equatable {
    case utf8
    /// MySQL's `latin1` is Windows-1252 (with the five undefined bytes mapped to C1 controls).
    case latin1
    case ascii
    case binary
    case ucs2
    case utf16
    case utf16le
    case utf32
    /// A character set Ferry cannot decode exactly; the name is kept for the error.
    case unsupported(String)

    /// Character set of a collation id on MySQL 5.7/8.0 and MariaDB 10.x. Servers can be asked
    /// for the authoritative table (`information_schema.COLLATIONS`); this covers the defaults.
    public static func forCollation(_ id: UInt64) -> CharacterSet {
        let base = id >= 1024 && id < 2048 ? id - 1024 : id  // MariaDB NO PAD variants
        switch base {
        case 63: return .binary
        case 5, 8, 15, 31, 47, 48, 49, 94: return .latin1
        case 11, 65: return .ascii
        case 33, 76, 83, 192...215, 223: return .utf8
        case 45, 46, 224...247, 255...323: return .utf8
        case 35, 90, 128...151, 159: return .ucs2
        case 54, 55, 101...124: return .utf16
        case 56, 62: return .utf16le
        case 60, 61, 160...183: return .utf32
        default: return .unsupported("collation \(id)")
        }
    }

    /// Bytes per character of a collation's character set, for turning byte lengths in TABLE_MAP
    /// metadata into declared lengths; 4 (utf8mb4) when the collation is not known.
    public static func maximumBytesPerCharacter(forCollation id: UInt64?) -> Int {
        guard let id else { return 4 }
        let base = id >= 1024 && id < 2048 ? id - 1024 : id
        switch base {
        case 63, 5, 8, 15, 31, 47, 48, 49, 94, 11, 65: return 1
        case 33, 76, 83, 192...215, 223: return 3
        case 35, 90, 128...151, 159: return 2
        default: return 4
        }
    }

    /// Character set by its server name (`utf8mb4`, `latin1`, …).
    public static func named(_ name: String) -> CharacterSet {
        switch name.lowercased() {
        case "utf8mb4", "utf8mb3", "utf8": .utf8
        case "latin1": .latin1
        case "ascii": .ascii
        case "binary": .binary
        case "ucs2": .ucs2
        case "utf16": .utf16
        case "utf16le": .utf16le
        case "utf32": .utf32
        default: .unsupported(name)
        }
    }

    /// Decodes `bytes` to a Swift string; `nil` for `.binary` and `.unsupported`.
    public func decode(_ bytes: UnsafeRawBufferPointer) -> String? {
        switch self {
        case .utf8, .ascii:
            return String(decoding: bytes, as: UTF8.self)
        case .latin1:
            if !bytes.contains(where: { $0 >= 0x80 }) { return String(decoding: bytes, as: UTF8.self) }
            var scalars = String.UnicodeScalarView()
            for byte in bytes {
                scalars.append(Unicode.Scalar(Self.cp1252[Int(byte)]) ?? "\u{FFFD}")
            }
            return String(scalars)
        case .ucs2, .utf16:
            return decodeUTF16(bytes, bigEndian: true)
        case .utf16le:
            return decodeUTF16(bytes, bigEndian: false)
        case .utf32:
            var scalars = String.UnicodeScalarView()
            var index = 0
            while index + 4 <= bytes.count {
                let value = UInt32(bytes[index]) << 24 | UInt32(bytes[index + 1]) << 16 | UInt32(bytes[index + 2]) << 8 | UInt32(bytes[index + 3])
                scalars.append(Unicode.Scalar(value) ?? "\u{FFFD}")
                index += 4
            }
            return String(scalars)
        case .binary, .unsupported:
            return nil
        }
    }

    private func decodeUTF16(_ bytes: UnsafeRawBufferPointer, bigEndian: Bool) -> String {
        var units: [UInt16] = []
        units.reserveCapacity(bytes.count / 2)
        var index = 0
        while index + 2 <= bytes.count {
            let high = UInt16(bytes[index]), low = UInt16(bytes[index + 1])
            units.append(bigEndian ? high << 8 | low : low << 8 | high)
            index += 2
        }
        return String(decoding: units, as: UTF16.self)
    }

    /// Windows-1252 code points for bytes 0–255.
    private static let cp1252: [UInt32] = {
        var table = (0...255).map { UInt32($0) }
        let high: [UInt32] = [
            0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D, 0x017D, 0x8F,
            0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
        ]
        for (offset, codePoint) in high.enumerated() { table[0x80 + offset] = codePoint }
        return table
    }()
}
