import CZlib
import NIOCore

/// MariaDB's compressed binlog payloads (`log_bin_compress`): one header byte `0x80 | n`, the
/// uncompressed length in `n` (1–4) big-endian bytes, then a zlib stream.
enum MariaDBCompression {
    /// Largest payload Ferry will inflate (MariaDB's events are bounded by max_allowed_packet, ≤ 1 GiB).
    static let maximumLength = 1 << 30

    static func inflate(_ buffer: inout ByteBuffer) throws -> [UInt8] {
        let header: UInt8 = try buffer.readLE()
        let lengthBytes = Int(header & 0x07)
        guard header & 0x80 != 0, (1...4).contains(lengthBytes) else {
            throw BinlogDecodingError(.decompressionFailed("header byte 0x\(String(header, radix: 16))"))
        }
        let length = Int(try buffer.readUnsignedBE(byteCount: lengthBytes))
        guard length <= maximumLength else {
            throw BinlogDecodingError(.decompressionFailed("declared length \(length) is too large"))
        }
        var output = [UInt8](repeating: 0, count: length)
        var produced = uLongf(length)
        let status = buffer.withUnsafeReadableBytes { input in
            output.withUnsafeMutableBytes { out in
                uncompress(out.baseAddress?.assumingMemoryBound(to: Bytef.self), &produced,
                           input.baseAddress?.assumingMemoryBound(to: Bytef.self), uLong(input.count))
            }
        }
        guard status == Z_OK, Int(produced) == length else {
            throw BinlogDecodingError(.decompressionFailed("zlib status \(status), \(produced) of \(length) bytes"))
        }
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return output
    }
}

/// CRC-32 (IEEE, as zlib computes it) over readable bytes.
public enum BinlogChecksum {
    public static func crc32(of bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress else { return 0 }
        return UInt32(CZlib.crc32(0, base.assumingMemoryBound(to: Bytef.self), uInt(bytes.count)))
    }
}
