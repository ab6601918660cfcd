import Foundation

/// A PostgreSQL source's position: the end of the last delivered transaction's commit record —
/// where the stream resumes, and what the replication slot may confirm once every target holds
/// it — and the snapshot step. The transaction id annotates it (the `source` block shows it) but
/// is not part of the place.
public struct WALPosition: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var lsn: LSN
    public var xid: UInt32?
    /// 0 for a source transaction; n for the n-th snapshot chunk delivered after it.
    public var snapshotStep: UInt32

    public init(lsn: LSN, xid: UInt32? = nil, snapshotStep: UInt32 = 0) {
        self.lsn = lsn
        self.xid = xid
        self.snapshotStep = snapshotStep
    }

    public func isSamePlace(as other: WALPosition) -> Bool { lsn == other.lsn && snapshotStep == other.snapshotStep }

    /// The same place: the xid annotates it, as `<` ignores it too.
    public static func == (lhs: WALPosition, rhs: WALPosition) -> Bool { lhs.isSamePlace(as: rhs) }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(lsn)
        hasher.combine(snapshotStep)
    }

    public static func < (lhs: WALPosition, rhs: WALPosition) -> Bool {
        (lhs.lsn, lhs.snapshotStep) < (rhs.lsn, rhs.snapshotStep)
    }

    /// `0/16B3748 (xid 731)`.
    public var description: String {
        lsn.description + (snapshotStep > 0 ? "#\(snapshotStep)" : "") + (xid.map { " (xid \($0))" } ?? "")
    }

    /// Orders like the position: the LSN (up to 2^55, 32 PiB of WAL) and the step (up to 255).
    public var version: Int64 {
        Int64(min(lsn.value, (1 << 55) - 1)) << 8 | Int64(min(snapshotStep, 255))
    }

    /// `{"lsn":"0/16B3748","xid":731,"step":2}` (xid and step when present).
    public var persistedJSON: String {
        var out: [UInt8] = []
        JSONBuffer.appendASCII("{\"lsn\":", to: &out)
        JSONBuffer.appendString(lsn.description, to: &out)
        if let xid {
            JSONBuffer.appendASCII(",\"xid\":", to: &out)
            JSONBuffer.appendUnsigned(UInt64(xid), to: &out)
        }
        if snapshotStep > 0 {
            JSONBuffer.appendASCII(",\"step\":", to: &out)
            JSONBuffer.appendUnsigned(UInt64(snapshotStep), to: &out)
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    public init?(persistedJSON text: String) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let lsnText = object["lsn"] as? String, let lsn = LSN(lsnText) else { return nil }
        let xid = (object["xid"] as? NSNumber).flatMap { UInt32(exactly: $0.uint64Value) }
        self.init(lsn: lsn, xid: xid, snapshotStep: UInt32(clamping: (object["step"] as? NSNumber)?.uint64Value ?? 0))
    }

    enum CodingKeys: String, CodingKey { case lsn, xid, step }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let text = try container.decode(String.self, forKey: .lsn)
        guard let lsn = LSN(text) else {
            throw DecodingError.dataCorruptedError(forKey: .lsn, in: container, debugDescription: "'\(text)' is not an LSN (X/Y)")
        }
        self.init(lsn: lsn, xid: try container.decodeIfPresent(UInt32.self, forKey: .xid),
                  snapshotStep: try container.decodeIfPresent(UInt32.self, forKey: .step) ?? 0)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(lsn.description, forKey: .lsn)
        try container.encodeIfPresent(xid, forKey: .xid)
        if snapshotStep > 0 { try container.encode(snapshotStep, forKey: .step) }
    }
}
