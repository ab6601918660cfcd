import FerryCore
import NIOCore

/// WRITE/UPDATE/DELETE_ROWS events v1 (23–25) and v2 (30–32), MySQL PARTIAL_UPDATE_ROWS (39)
/// and MariaDB's compressed variants (166–171).
///
/// Post-header: table_id u48 · flags u16 · (v2: extra_data_len u16 · extra data).
/// Body: column_count lenenc · columns-present bitmap · (updates: after-image bitmap) · rows.
/// Each row image: null bitmap over present columns, then the non-null values.
/// The row images are kept undecoded until `decodeRows(using:)`, so filtered tables cost nothing.
public struct RowsEvent: Sendable {
    public static let statementEndFlag: UInt16 = 0x0001
    /// Table id MySQL uses for the empty "end of statement" rows event.
    public static let dummyTableID: UInt64 = 0x00FF_FFFF

    public var kind: RowsEventKind
    public var tableID: UInt64
    public var flags: UInt16
    public var columnCount: Int
    public var presentBefore: [UInt8]
    public var presentAfter: [UInt8]
    /// The row images (inflated when the event was compressed).
    public var rowData: ByteBuffer

    public var isStatementEnd: Bool { flags & Self.statementEndFlag != 0 }

    static func decode(from body: inout ByteBuffer, type: BinlogEventType, postHeaderLength: Int) throws -> RowsEvent {
        guard let layout = type.rowsLayout else { throw BinlogDecodingError(.invalid("\(type) is not a rows event")) }
        let tableID = try body.readUnsignedLE(byteCount: postHeaderLength == 6 ? 4 : 6)
        let flags: UInt16 = try body.readLE()
        if layout.hasExtraData {
            let extraLength: UInt16 = try body.readLE()
            guard extraLength >= 2 else { throw BinlogDecodingError(.invalid("rows extra-data length \(extraLength) < 2")) }
            try body.skipChecked(Int(extraLength) - 2)
        }
        let rawCount = try body.readLengthEncodedInteger()
        guard rawCount <= 4096 else { throw BinlogDecodingError(.invalid("rows event declares \(rawCount) columns")) }
        let columnCount = Int(rawCount)
        let bitmapBytes = (columnCount + 7) / 8
        let presentBefore = try body.readBytesChecked(length: bitmapBytes)
        let isUpdate = layout.kind == .update || layout.kind == .partialUpdate
        let presentAfter = isUpdate ? try body.readBytesChecked(length: bitmapBytes) : presentBefore
        var rowData = body.slice()
        body.moveReaderIndex(to: body.writerIndex)
        if layout.compressed {
            let inflated = try MariaDBCompression.inflate(&rowData)
            rowData = ByteBufferAllocatorHolder.allocator.buffer(bytes: inflated)
        }
        return RowsEvent(kind: layout.kind, tableID: tableID, flags: flags, columnCount: columnCount,
                         presentBefore: presentBefore, presentAfter: presentAfter, rowData: rowData)
    }

    /// One row change: `before` for updates and deletes, `after` for writes and updates.
    public struct RowChange: Sendable {
        public var before: Row?
        public var after: Row?

        public init(before: Row?, after: Row?) {
            self.before = before
            self.after = after
        }
    }

    /// Decodes every row image with the table's decoder.
    public func decodeRows(using decoder: TableDecoder) throws -> [RowChange] {
        guard columnCount == decoder.columns.count else {
            throw BinlogDecodingError(.invalid("rows event has \(columnCount) columns, its TABLE_MAP \(decoder.columns.count)"))
        }
        let beforeCount = presentBefore.popCount(columns: columnCount)
        let afterCount = presentAfter.popCount(columns: columnCount)
        var data = rowData
        var changes: [RowChange] = []
        while data.readableBytes > 0 {
            switch kind {
            case .write:
                changes.append(RowChange(before: nil, after: try decoder.decodeRow(from: &data, present: presentBefore, presentCount: beforeCount)))
            case .delete:
                changes.append(RowChange(before: try decoder.decodeRow(from: &data, present: presentBefore, presentCount: beforeCount), after: nil))
            case .update:
                let before = try decoder.decodeRow(from: &data, present: presentBefore, presentCount: beforeCount)
                let after = try decoder.decodeRow(from: &data, present: presentAfter, presentCount: afterCount)
                changes.append(RowChange(before: before, after: after))
            case .partialUpdate:
                let before = try decoder.decodeRow(from: &data, present: presentBefore, presentCount: beforeCount)
                let after = try decoder.decodePartialAfterImage(from: &data, present: presentAfter, presentCount: afterCount, before: before)
                changes.append(RowChange(before: before, after: after))
            }
        }
        return changes
    }
}

extension [UInt8] {
    func popCount(columns: Int) -> Int {
        var count = 0
        for index in 0..<columns where self[index >> 3] & (1 << (index & 7)) != 0 { count += 1 }
        return count
    }
}
