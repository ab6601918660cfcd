import NIOCore

/// FORMAT_DESCRIPTION_EVENT (type 15): describes how the following events are laid out.
///
/// binlog_version u16 · server_version char[50] · create_timestamp u32 · header_length u8 ·
/// post_header_lengths u8[n] · checksum_alg u8 · (CRC32 u32) — the last two only from servers
/// that know checksums (MySQL ≥ 5.6.1, MariaDB ≥ 5.3).
public struct FormatDescriptionEvent: Sendable, Equatable {
    public enum ChecksumAlgorithm: UInt8, Sendable {
        case off = 0
        case crc32 = 1
    }

    public var binlogVersion: UInt16
    public var serverVersion: String {
        didSet { isMariaDB = Self.isMariaDB(serverVersion) }
    }
    /// Kept, not computed: the parser asks for every table map, and a case-insensitive search
    /// there cost a tenth of a stream of small transactions.
    public private(set) var isMariaDB: Bool
    public var createTimestamp: UInt32
    public var headerLength: UInt8
    /// Post-header length per event type, indexed by `type - 1`.
    public var postHeaderLengths: [UInt8]
    public var checksumAlgorithm: ChecksumAlgorithm

    public init(binlogVersion: UInt16, serverVersion: String, createTimestamp: UInt32, headerLength: UInt8,
                postHeaderLengths: [UInt8], checksumAlgorithm: ChecksumAlgorithm) {
        self.binlogVersion = binlogVersion
        self.serverVersion = serverVersion
        self.isMariaDB = Self.isMariaDB(serverVersion)
        self.createTimestamp = createTimestamp
        self.headerLength = headerLength
        self.postHeaderLengths = postHeaderLengths
        self.checksumAlgorithm = checksumAlgorithm
    }

    static func isMariaDB(_ version: String) -> Bool { version.lowercased().contains("mariadb") }

    /// The post-header length the server declared for `type`, if it declared one.
    public func postHeaderLength(of type: UInt8) -> Int? {
        let index = Int(type) - 1
        guard index >= 0, index < postHeaderLengths.count else { return nil }
        return Int(postHeaderLengths[index])
    }

    /// The server version field of an FDE body.
    static func serverVersion(ofBody body: ByteBuffer) -> String {
        let bytes = body.getBytes(at: body.readerIndex + 2, length: min(50, max(0, body.readableBytes - 2))) ?? []
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// Whether a whole FDE body (after the common header, including any trailer) ends with the
    /// algorithm byte and four checksum bytes.
    static func hasChecksumTrailer(body: ByteBuffer) -> Bool {
        body.readableBytes >= 2 + 50 + 4 + 1 + 5 && serverKnowsChecksums(serverVersion(ofBody: body))
    }

    /// The checksum algorithm byte of a whole FDE body; `.off` for servers that predate checksums.
    static func checksumAlgorithm(ofBody body: ByteBuffer) -> ChecksumAlgorithm {
        guard hasChecksumTrailer(body: body) else { return .off }
        let algorithmByte = body.getInteger(at: body.writerIndex - 5, as: UInt8.self) ?? 0
        return ChecksumAlgorithm(rawValue: algorithmByte) ?? .off
    }

    /// Decodes the body; `body` excludes the trailing CRC but includes the algorithm byte.
    static func decode(from body: inout ByteBuffer, hasChecksumTrailer: Bool) throws -> FormatDescriptionEvent {
        let version: UInt16 = try body.readLE()
        let versionBytes = try body.readBytesChecked(length: 50)
        let serverVersion = String(decoding: versionBytes.prefix { $0 != 0 }, as: UTF8.self)
        let created: UInt32 = try body.readLE()
        let headerLength: UInt8 = try body.readLE()
        guard headerLength >= 19 else {
            throw BinlogDecodingError(.invalid("FORMAT_DESCRIPTION header length \(headerLength) < 19"))
        }
        var algorithm = ChecksumAlgorithm.off
        var lengthsCount = body.readableBytes
        if hasChecksumTrailer {
            lengthsCount -= 1
        }
        guard lengthsCount >= 0 else { throw BinlogDecodingError(.truncated(needed: 1, available: 0)) }
        let lengths = try body.readBytesChecked(length: lengthsCount)
        if hasChecksumTrailer {
            let raw: UInt8 = try body.readLE()
            guard let known = ChecksumAlgorithm(rawValue: raw) else {
                throw BinlogDecodingError(.invalid("unknown binlog checksum algorithm \(raw)"))
            }
            algorithm = known
        }
        return FormatDescriptionEvent(binlogVersion: version, serverVersion: serverVersion, createTimestamp: created,
                                      headerLength: headerLength, postHeaderLengths: lengths, checksumAlgorithm: algorithm)
    }

    /// Servers from these versions on append the checksum algorithm to the FDE.
    static func serverKnowsChecksums(_ version: String) -> Bool {
        let numbers = version.split(whereSeparator: { !$0.isNumber }).prefix(3).compactMap { Int($0) }
        guard numbers.count == 3 else { return false }
        let product = numbers[0] * 10000 + numbers[1] * 100 + numbers[2]
        if version.lowercased().contains("mariadb") { return product >= 50300 }
        return product >= 50601
    }
}
