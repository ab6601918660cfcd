#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
    /// A character set the C library's iconv converts (single-byte national sets, and the East
    /// Asian multi-byte ones).
    case converted(ConvertedCharacterSet)
    /// A character set Ferry cannot decode exactly. No name: a column decoder holding a character
    /// set copies as plain bytes, and the table's decoder names the set in its error.
    case unsupported

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
        default: return .unsupported
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
        default: ConvertedCharacterSet(rawValue: name.lowercased()).map { .converted($0) } ?? .unsupported
        }
    }

    /// The longest character in bytes, where the set alone says it (not for `utf8`, whose
    /// collation tells utf8mb3 from utf8mb4).
    public var maximumBytesPerCharacter: Int? {
        switch self {
        case .latin1, .ascii, .binary: 1
        case .ucs2: 2
        case .utf32: 4
        case .converted(let set): set.maximumBytes
        case .utf8, .utf16, .utf16le, .unsupported: nil
        }
    }

    /// The server's name of the set, for column definitions (`nil` when unknown).
    public var serverName: String? {
        switch self {
        case .binary: "binary"
        case .latin1: "latin1"
        case .ascii: "ascii"
        case .utf8: "utf8mb4"
        case .ucs2: "ucs2"
        case .utf16: "utf16"
        case .utf16le: "utf16le"
        case .utf32: "utf32"
        case .converted(let set): set.rawValue
        case .unsupported: nil
        }
    }

    /// Decodes `bytes` to a Swift string; `nil` for `.binary` and `.unsupported`, and for bytes
    /// an iconv-converted set cannot read.
    public func decode(_ bytes: UnsafeRawBufferPointer) -> String? {
        switch self {
        case .converted(let set):
            if !bytes.contains(where: { $0 >= 0x80 }) {
                return String(decoding: bytes, as: UTF8.self)
            }
            let text = Self.iconvDecode(bytes, from: set.iconvName)
            return set == .sjis ? text.map(Self.jisReading) : text
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

    /// CP932's reading of 0x815F, 0x8160, 0x8161, 0x817C, 0x8191, 0x8192, 0x81CA → JIS X 0208's.
    static let jisDifferences: [Unicode.Scalar: Unicode.Scalar] = [
        "\u{FF3C}": "\u{005C}", "\u{FF5E}": "\u{301C}", "\u{2225}": "\u{2016}", "\u{FF0D}": "\u{2212}",
        "\u{FFE0}": "\u{00A2}", "\u{FFE1}": "\u{00A3}", "\u{FFE2}": "\u{00AC}",
    ]

    static func jisReading(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { jisDifferences[$0] != nil }) else { return text }
        return String(String.UnicodeScalarView(text.unicodeScalars.map { jisDifferences[$0] ?? $0 }))
    }

    /// One conversion to UTF-8 with the C library's iconv; `nil` when a byte sequence is not a
    /// character of the set (or iconv does not know it).
    static func iconvDecode(_ bytes: UnsafeRawBufferPointer, from name: String) -> String? {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return "" }
        let converter = iconv_open("UTF-8", name)
        guard let converter, converter != iconv_t(bitPattern: -1) else { return nil }
        defer { iconv_close(converter) }
        var output = [UInt8](repeating: 0, count: bytes.count * 4 + 4)
        let written: Int? = output.withUnsafeMutableBytes { out in
            var input: UnsafeMutablePointer<CChar>? = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: CChar.self))
            var inputLeft = bytes.count
            var target: UnsafeMutablePointer<CChar>? = out.baseAddress!.assumingMemoryBound(to: CChar.self)
            var targetLeft = out.count
            guard iconv(converter, &input, &inputLeft, &target, &targetLeft) != -1, inputLeft == 0 else { return nil }
            return out.count - targetLeft
        }
        guard let written else { return nil }
        return String(decoding: output[..<written], as: UTF8.self)
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

/// The server character sets iconv converts, by their server names.
public enum ConvertedCharacterSet: String, Sendable, CaseIterable {
    case latin2, latin5, latin7, greek, hebrew, koi8r, koi8u, cp1250, cp1251, cp1256, cp1257, cp850, cp852, cp866
    case dec8, hp8, macroman, tis620, armscii8, geostd8
    case gbk, big5, sjis, cp932, euckr, gb2312, ujis, eucjpms, gb18030

    /// Server character sets iconv converts, with iconv's name for each and the longest
    /// character in bytes. `sjis` is read as CP932 (0x5C a backslash and 0x7E a tilde, as MySQL
    /// has them, where glibc's SHIFT_JIS has a yen sign and an overline), then the seven
    /// characters where CP932 and JIS X 0208 differ get JIS's reading, which MySQL's sjis uses.
    static let iconv: [ConvertedCharacterSet: (name: String, maximumBytes: Int)] = [
        .latin2: ("ISO-8859-2", 1), .latin5: ("ISO-8859-9", 1), .latin7: ("ISO-8859-13", 1), .greek: ("ISO-8859-7", 1),
        .hebrew: ("ISO-8859-8", 1), .koi8r: ("KOI8-R", 1), .koi8u: ("KOI8-U", 1), .cp1250: ("CP1250", 1), .cp1251: ("CP1251", 1),
        .cp1256: ("CP1256", 1), .cp1257: ("CP1257", 1), .cp850: ("CP850", 1), .cp852: ("CP852", 1), .cp866: ("CP866", 1),
        .dec8: ("DEC-MCS", 1), .hp8: ("HP-ROMAN8", 1), .macroman: ("MACINTOSH", 1), .tis620: ("TIS-620", 1),
        .armscii8: ("ARMSCII-8", 1), .geostd8: ("GEORGIAN-PS", 1),
        .gbk: ("GBK", 2), .big5: ("BIG5", 2), .sjis: ("CP932", 2), .cp932: ("CP932", 2), .euckr: ("EUC-KR", 2),
        .gb2312: ("GB2312", 2), .ujis: ("EUC-JP", 3), .eucjpms: ("EUC-JP-MS", 3), .gb18030: ("GB18030", 4),
    ]

    /// iconv's name for the set.
    public var iconvName: String { Self.iconv[self]!.name }
    /// The longest character in bytes.
    public var maximumBytes: Int { Self.iconv[self]!.maximumBytes }
}
