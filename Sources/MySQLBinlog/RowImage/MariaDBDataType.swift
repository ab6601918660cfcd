/// Column types MariaDB implements as type plugins. TABLE_MAP describes them as plain
/// `BINARY(16)`/`BINARY(4)` — only information_schema's DATA_TYPE tells them apart — and row
/// images carry their stored bytes (trailing zero bytes stripped, as for any BINARY). Their value
/// is the text SELECT returns.
public enum MariaDBDataType: String, Sendable, Hashable, CaseIterable {
    case uuid, inet4, inet6

    /// The stored size in bytes.
    public var byteCount: Int { self == .inet4 ? 4 : 16 }

    /// The text SELECT returns for the stored bytes (zero-padded to `byteCount` first).
    public func text(_ stored: [UInt8]) -> String {
        var bytes = stored
        if bytes.count < byteCount { bytes += [UInt8](repeating: 0, count: byteCount - bytes.count) }
        switch self {
        case .uuid: return Self.uuidText(bytes)
        case .inet4: return Self.dotted(bytes[0..<4])
        case .inet6: return Self.inet6Text(bytes)
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// `01020304-0506-0708-090a-0b0c0d0e0f10`: the bytes in stored order (MariaDB keeps a UUID's
    /// text order in the binlog, also for the time-ordered versions it sorts differently).
    static func uuidText(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(36)
        for (index, byte) in bytes.prefix(16).enumerated() {
            if index == 4 || index == 6 || index == 8 || index == 10 { out.append(UInt8(ascii: "-")) }
            out.append(hexDigits[Int(byte >> 4)])
            out.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func dotted(_ bytes: ArraySlice<UInt8>) -> String {
        bytes.map { String($0) }.joined(separator: ".")
    }

    /// As MariaDB prints INET6 (the INET6_NTOA rules): the longest run of two or more zero groups
    /// (the first of equal runs) becomes `::`, groups in lower-case hex without leading zeros; when
    /// that run is the first six groups (IPv4-compatible, `::1.2.3.4`) or the first five followed
    /// by `ffff` (IPv4-mapped, `::ffff:1.2.3.4`), the last four bytes are printed dotted.
    static func inet6Text(_ bytes: [UInt8]) -> String {
        let groups = (0..<8).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
        var best = (start: -1, length: 0)
        var run = (start: -1, length: 0)
        for (index, group) in groups.enumerated() {
            if group == 0 {
                run = run.start < 0 ? (index, 1) : (run.start, run.length + 1)
                if run.length > best.length { best = run }
            } else {
                run = (-1, 0)
            }
        }
        if best.length < 2 { best = (-1, 0) }
        if best.start == 0, best.length == 6 { return "::" + dotted(bytes[12..<16]) }
        if best.start == 0, best.length == 5, groups[5] == 0xFFFF { return "::ffff:" + dotted(bytes[12..<16]) }
        var text = ""
        var index = 0
        while index < 8 {
            if index == best.start {
                text += "::"
                index += best.length
                continue
            }
            if !text.isEmpty, !text.hasSuffix(":") { text += ":" }
            text += String(groups[index], radix: 16)
            index += 1
        }
        return text
    }
}
