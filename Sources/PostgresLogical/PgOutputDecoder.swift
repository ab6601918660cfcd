import FerryCore

/// Decodes pgoutput messages one at a time, keeping the one piece of state the format needs:
/// whether a streamed transaction's segment is open (its changes then carry the xid).
public struct PgOutputDecoder: Sendable {
    /// The `proto_version` asked for in START_REPLICATION (1–4).
    public let protocolVersion: Int
    /// `streaming 'parallel'` was asked for (protocol 4): Stream Abort then carries its LSN and time.
    public let parallelStreaming: Bool
    /// The xid of the streamed transaction whose segment is open.
    public private(set) var openStream: UInt32?

    public init(protocolVersion: Int, parallelStreaming: Bool = false) {
        self.protocolVersion = protocolVersion
        self.parallelStreaming = parallelStreaming
    }

    public mutating func decode(_ bytes: [UInt8]) throws -> PgOutputMessage {
        guard let type = bytes.first else { throw PgOutputError.truncated(message: "empty", offset: 0, needed: 1, available: 0) }
        var cursor = ByteCursor(bytes, message: Self.name(type), offset: 1)
        let message = try decode(type, &cursor)
        guard cursor.isAtEnd else {
            throw PgOutputError.malformed(message: cursor.message, offset: cursor.offset, detail: "\(bytes.count - cursor.offset) bytes left over")
        }
        return message
    }

    private mutating func decode(_ type: UInt8, _ cursor: inout ByteCursor) throws -> PgOutputMessage {
        // Inside a streamed segment, changes begin with the transaction's xid.
        func xid() throws -> UInt32? { openStream == nil ? nil : try cursor.uint32() }
        switch type {
        case UInt8(ascii: "B"):
            return .begin(.init(finalLSN: LSN(try cursor.uint64()), commitTime: try cursor.int64(), xid: try cursor.uint32()))
        case UInt8(ascii: "C"):
            return .commit(try commit(&cursor))
        case UInt8(ascii: "O"):
            return .origin(commitLSN: LSN(try cursor.uint64()), name: try cursor.string())
        case UInt8(ascii: "R"):
            let xid = try xid()
            let id = try cursor.uint32()
            let namespace = try cursor.string()
            let name = try cursor.string()
            let identityByte = try cursor.uint8()
            guard let identity = PgOutputMessage.Relation.ReplicaIdentity(rawValue: identityByte) else {
                throw PgOutputError.malformed(message: cursor.message, offset: cursor.offset - 1, detail: "replica identity \(identityByte)")
            }
            let count = Int(try cursor.int16())
            guard count >= 0 else { throw PgOutputError.malformed(message: cursor.message, offset: cursor.offset - 2, detail: "\(count) columns") }
            var columns: [PgOutputMessage.Relation.Column] = []
            columns.reserveCapacity(count)
            for _ in 0..<count {
                let flags = try cursor.uint8()
                columns.append(.init(isKey: flags & 1 != 0, name: try cursor.string(), typeOID: try cursor.uint32(), typeModifier: try cursor.int32()))
            }
            return .relation(.init(id: id, namespace: namespace, name: name, replicaIdentity: identity, columns: columns), xid: xid)
        case UInt8(ascii: "Y"):
            let xid = try xid()
            return .type(.init(oid: try cursor.uint32(), namespace: try cursor.string(), name: try cursor.string()), xid: xid)
        case UInt8(ascii: "I"):
            let xid = try xid()
            let relation = try cursor.uint32()
            try expect(UInt8(ascii: "N"), &cursor)
            return .insert(relation: relation, new: try tuple(&cursor), xid: xid)
        case UInt8(ascii: "U"):
            let xid = try xid()
            let relation = try cursor.uint32()
            var old: PgOutputMessage.OldTuple?
            var marker = try cursor.uint8()
            if marker == UInt8(ascii: "K") || marker == UInt8(ascii: "O") {
                let data = try tuple(&cursor)
                old = marker == UInt8(ascii: "K") ? .key(data) : .row(data)
                marker = try cursor.uint8()
            }
            guard marker == UInt8(ascii: "N") else {
                throw PgOutputError.malformed(message: cursor.message, offset: cursor.offset - 1, detail: "expected 'N' before the new row, found \(marker)")
            }
            return .update(relation: relation, old: old, new: try tuple(&cursor), xid: xid)
        case UInt8(ascii: "D"):
            let xid = try xid()
            let relation = try cursor.uint32()
            let marker = try cursor.uint8()
            guard marker == UInt8(ascii: "K") || marker == UInt8(ascii: "O") else {
                throw PgOutputError.malformed(message: cursor.message, offset: cursor.offset - 1, detail: "expected 'K' or 'O', found \(marker)")
            }
            let data = try tuple(&cursor)
            return .delete(relation: relation, old: marker == UInt8(ascii: "K") ? .key(data) : .row(data), xid: xid)
        case UInt8(ascii: "T"):
            let xid = try xid()
            let count = try cursor.int32()
            guard count >= 0 else { throw PgOutputError.malformed(message: cursor.message, offset: cursor.offset - 4, detail: "\(count) relations") }
            let options = try cursor.uint8()
            var relations: [UInt32] = []
            for _ in 0..<count { relations.append(try cursor.uint32()) }
            return .truncate(relations: relations, cascade: options & 1 != 0, restartIdentity: options & 2 != 0, xid: xid)
        case UInt8(ascii: "M"):
            let xid = try xid()
            let flags = try cursor.uint8()
            let lsn = LSN(try cursor.uint64())
            let prefix = try cursor.string()
            let length = Int(try cursor.int32())
            return .message(transactional: flags & 1 != 0, lsn: lsn, prefix: prefix, content: try cursor.bytes(length), xid: xid)
        case UInt8(ascii: "S"):
            let xid = try cursor.uint32()
            let first = try cursor.uint8() == 1
            openStream = xid
            return .streamStart(xid: xid, firstSegment: first)
        case UInt8(ascii: "E"):
            openStream = nil
            return .streamStop
        case UInt8(ascii: "c"):
            let xid = try cursor.uint32()
            return .streamCommit(xid: xid, try commit(&cursor))
        case UInt8(ascii: "A"):
            let xid = try cursor.uint32()
            let subtransaction = try cursor.uint32()
            guard protocolVersion >= 4, parallelStreaming else { return .streamAbort(xid: xid, subtransaction: subtransaction, abortLSN: nil, abortTime: nil) }
            return .streamAbort(xid: xid, subtransaction: subtransaction, abortLSN: LSN(try cursor.uint64()), abortTime: try cursor.int64())
        default:
            throw PgOutputError.unknownMessage(type: type)
        }
    }

    private func commit(_ cursor: inout ByteCursor) throws -> PgOutputMessage.Commit {
        .init(flags: try cursor.uint8(), commitLSN: LSN(try cursor.uint64()), endLSN: LSN(try cursor.uint64()), commitTime: try cursor.int64())
    }

    private func expect(_ marker: UInt8, _ cursor: inout ByteCursor) throws {
        let found = try cursor.uint8()
        guard found == marker else {
            throw PgOutputError.malformed(message: cursor.message, offset: cursor.offset - 1,
                                          detail: "expected '\(Character(UnicodeScalar(marker)))', found \(found)")
        }
    }

    private func tuple(_ cursor: inout ByteCursor) throws -> TupleData {
        let count = Int(try cursor.int16())
        guard count >= 0 else { throw PgOutputError.malformed(message: cursor.message, offset: cursor.offset - 2, detail: "\(count) columns") }
        var values: [TupleData.Value] = []
        values.reserveCapacity(count)
        for _ in 0..<count {
            let kind = try cursor.uint8()
            switch kind {
            case UInt8(ascii: "n"): values.append(.null)
            case UInt8(ascii: "u"): values.append(.unchangedToast)
            case UInt8(ascii: "t"): values.append(.text(try cursor.bytes(Int(try cursor.int32()))))
            case UInt8(ascii: "b"): values.append(.binary(try cursor.bytes(Int(try cursor.int32()))))
            default:
                throw PgOutputError.malformed(message: cursor.message, offset: cursor.offset - 1, detail: "column kind \(kind)")
            }
        }
        return TupleData(values)
    }

    static func name(_ type: UInt8) -> String {
        switch type {
        case UInt8(ascii: "B"): "Begin"
        case UInt8(ascii: "C"): "Commit"
        case UInt8(ascii: "O"): "Origin"
        case UInt8(ascii: "R"): "Relation"
        case UInt8(ascii: "Y"): "Type"
        case UInt8(ascii: "I"): "Insert"
        case UInt8(ascii: "U"): "Update"
        case UInt8(ascii: "D"): "Delete"
        case UInt8(ascii: "T"): "Truncate"
        case UInt8(ascii: "M"): "Message"
        case UInt8(ascii: "S"): "Stream Start"
        case UInt8(ascii: "E"): "Stream Stop"
        case UInt8(ascii: "c"): "Stream Commit"
        case UInt8(ascii: "A"): "Stream Abort"
        default: "unknown"
        }
    }
}
