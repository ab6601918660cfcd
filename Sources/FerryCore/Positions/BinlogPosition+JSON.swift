import Foundation

extension BinlogPosition {
    /// The persisted form: `{"file":…,"pos":…,"gtid_pos":…,"step":…}` (stable keys; older forms stay readable).
    public var persistedJSON: String {
        var out: [UInt8] = []
        JSONBuffer.appendASCII("{\"file\":", to: &out)
        JSONBuffer.appendString(coordinates.file, to: &out)
        JSONBuffer.appendASCII(",\"pos\":", to: &out)
        JSONBuffer.appendUnsigned(coordinates.offset, to: &out)
        if let gtidPosition {
            JSONBuffer.appendASCII(",\"gtid_pos\":", to: &out)
            JSONBuffer.appendString(gtidPosition.description, to: &out)
            JSONBuffer.appendASCII(",\"flavor\":", to: &out)
            switch gtidPosition {
            case .mariadb: JSONBuffer.appendString("mariadb", to: &out)
            case .mysql: JSONBuffer.appendString("mysql", to: &out)
            }
        }
        if snapshotStep > 0 {
            JSONBuffer.appendASCII(",\"step\":", to: &out)
            JSONBuffer.appendUnsigned(UInt64(snapshotStep), to: &out)
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    /// Reads `persistedJSON`; `nil` when the text is not a position.
    public init?(persistedJSON text: String) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let file = object["file"] as? String, let offset = (object["pos"] as? NSNumber)?.uint64Value
        else { return nil }
        var gtid: GTIDPosition? = nil
        if let text = object["gtid_pos"] as? String {
            if object["flavor"] as? String == "mysql" {
                gtid = MySQLGTIDSet(parsing: Substring(text)).map { .mysql($0) }
            } else {
                gtid = MariaDBGTIDPosition(parsing: Substring(text)).map { .mariadb($0) }
            }
        }
        self.init(coordinates: BinlogCoordinates(file: file, offset: offset), gtidPosition: gtid,
                  snapshotStep: (object["step"] as? NSNumber)?.uint32Value ?? 0)
    }
}
