/// Writes change events as JSON lines: the Debezium envelope or Ferry's compact form.
///
/// Hand-written into a byte array because this is the hot path of `ferry tail` and every
/// append-only sink; Foundation's encoder is far slower and cannot keep exact values.
public struct EventJSONWriter: Sendable {
    public enum Format: String, Sendable, CaseIterable {
        /// `{"before","after","source":{…},"op","ts_ms"}`
        case debezium
        /// `{"op","table","position","ts_ms","before","after"}`
        case compact
        /// `{"schema":{…},"payload":{<debezium>}}`: Kafka Connect's JSON with schemas, for consumers
        /// that read column types from the message (`DebeziumSchema`).
        case debeziumSchema = "debezium-schema"
    }

    public var format: Format
    /// `connector` field of the Debezium `source` block.
    public var connector: StaticString = "mysql"

    public init(format: Format) {
        self.format = format
    }

    /// Appends one JSON object for `event` and a newline.
    /// - Parameter processedAtMillis: the envelope's top-level `ts_ms` (Debezium: processing time).
    public func write(_ event: ChangeEvent, processedAtMillis: Int64, into out: inout [UInt8]) {
        var cache = SourceBlockCache()
        out.append(UInt8(ascii: "{"))
        withUnsafePointer(to: event) { writeMembers($0, processedAtMillis: processedAtMillis, cache: &cache, into: &out) }
    }

    /// Appends the events of a transaction (those at `indices`, or all, that `include` takes), so a
    /// large transaction can be written and its output flushed a part at a time; the parts of the
    /// `source` block that its events share are encoded once. `leadingFields`, when given, writes
    /// extra `"key":value,` pairs at the start of each object (a sink's event id). Both are given
    /// a pointer to the event, valid during the call.
    public func write(_ transaction: Transaction, events indices: Range<Int>? = nil, processedAtMillis: Int64, into out: inout [UInt8],
                      where include: ((UnsafePointer<ChangeEvent>) -> Bool)? = nil,
                      leadingFields: ((UnsafePointer<ChangeEvent>, inout [UInt8]) -> Void)? = nil) {
        var cache = SourceBlockCache()
        // Events are passed on by pointer: passed by value, an event is copied out of the array
        // (the compiler cannot tell the call leaves the array alone), which retains and releases
        // everything it holds.
        transaction.events.withUnsafeBufferPointer { events in
            guard let base = events.baseAddress else { return }
            if let indices { precondition(indices.lowerBound >= 0 && indices.upperBound <= events.count, "events \(indices) of \(events.count)") }
            for index in indices ?? events.indices {
                let event = base + index
                if let include, !include(event) { continue }
                out.append(UInt8(ascii: "{"))
                leadingFields?(event, &out)
                writeMembers(event, processedAtMillis: processedAtMillis, cache: &cache, into: &out)
            }
        }
    }

    /// Encoded pieces of the `source` block, valid for events of one transaction.
    struct SourceBlockCache {
        /// `{"connector":…,"pos":N,"row":`
        var prefix: [UInt8] = []
        /// `,"ts_ms":…,"db":…,"table":…}` for `schema`.
        var suffix: [UInt8] = []
        var suffixTable: TableName?
        /// The `schema` half per table schema, for `debezium-schema`.
        var envelopes: [ObjectIdentifier: [UInt8]] = [:]
        /// The compact form's `,"position":…,"gtid_pos":…,"row":`, and its quoted table name.
        var compactPosition: [UInt8] = []
        var compactTable: [UInt8] = []
        var compactTableName: TableName?
    }

    /// Everything of an event's object after its `{`, and a newline.
    private func writeMembers(_ event: UnsafePointer<ChangeEvent>, processedAtMillis: Int64, cache: inout SourceBlockCache, into out: inout [UInt8]) {
        if format == .debeziumSchema {
            JSONBuffer.appendASCII("\"schema\":", to: &out)
            if let schema = event.pointee.schema, event.pointee.operation != .ddl {
                let key = ObjectIdentifier(schema)
                if cache.envelopes[key] == nil { cache.envelopes[key] = DebeziumSchema.envelope(schema, sourceName: event.pointee.source.name, postgres: event.pointee.source.position.wal != nil) }
                out.append(contentsOf: cache.envelopes[key]!)
            } else {
                JSONBuffer.appendASCII("null", to: &out)
            }
            JSONBuffer.appendASCII(",\"payload\":{", to: &out)
        }
        if event.pointee.operation == .ddl {
            writeDDL(event, into: &out)
        } else {
            switch format {
            case .debezium, .debeziumSchema: writeDebezium(event, processedAtMillis: processedAtMillis, cache: &cache, into: &out)
            case .compact: writeCompact(event, cache: &cache, into: &out)
            }
        }
        if format == .debeziumSchema { out.append(UInt8(ascii: "}")) }
        out.append(UInt8(ascii: "\n"))
    }

    private func writeDebezium(_ event: UnsafePointer<ChangeEvent>, processedAtMillis: Int64, cache: inout SourceBlockCache, into out: inout [UInt8]) {
        JSONBuffer.appendASCII("\"before\":", to: &out)
        writeRow(event.pointee.before, schema: event.pointee.schema, into: &out)
        JSONBuffer.appendASCII(",\"after\":", to: &out)
        writeRow(event.pointee.after, schema: event.pointee.schema, into: &out)
        JSONBuffer.appendASCII(",\"source\":", to: &out)
        if cache.prefix.isEmpty { writeSourcePrefix(event, into: &cache.prefix) }
        if cache.suffixTable != event.pointee.table {
            cache.suffix.removeAll(keepingCapacity: true)
            writeSourceSuffix(event, into: &cache.suffix)
            cache.suffixTable = event.pointee.table
        }
        out.append(contentsOf: cache.prefix)
        JSONBuffer.appendInteger(Int64(event.pointee.source.row), to: &out)
        // Debezium's way to tell snapshot rows from changes, and where a snapshot ends.
        if event.pointee.operation == .read {
            JSONBuffer.appendASCII(",\"snapshot\":", to: &out)
            JSONBuffer.appendString(event.pointee.source.snapshotMark.debeziumText, to: &out)
        } else {
            JSONBuffer.appendASCII(",\"snapshot\":\"false\"", to: &out)
        }
        out.append(contentsOf: cache.suffix)
        JSONBuffer.appendASCII(",\"op\":\"", to: &out)
        out.append(contentsOf: event.pointee.operation.code.utf8)
        JSONBuffer.appendASCII("\",\"ts_ms\":", to: &out)
        JSONBuffer.appendInteger(processedAtMillis, to: &out)
        out.append(UInt8(ascii: "}"))
    }

    private func writeCompact(_ event: UnsafePointer<ChangeEvent>, cache: inout SourceBlockCache, into out: inout [UInt8]) {
        JSONBuffer.appendASCII("\"op\":\"", to: &out)
        out.append(contentsOf: event.pointee.operation.code.utf8)
        JSONBuffer.appendASCII("\",\"table\":", to: &out)
        if cache.compactTableName != event.pointee.table {
            cache.compactTable.removeAll(keepingCapacity: true)
            JSONBuffer.appendString(event.pointee.table.description, to: &cache.compactTable)
            cache.compactTableName = event.pointee.table
        }
        out.append(contentsOf: cache.compactTable)
        if cache.compactPosition.isEmpty {
            JSONBuffer.appendASCII(",\"position\":", to: &cache.compactPosition)
            switch event.pointee.source.position {
            case .binlog(let position):
                JSONBuffer.appendString(position.coordinates.description, to: &cache.compactPosition)
                if let gtid = position.gtidPosition {
                    JSONBuffer.appendASCII(",\"gtid_pos\":", to: &cache.compactPosition)
                    JSONBuffer.appendString(gtid.description, to: &cache.compactPosition)
                }
            case .wal(let position):
                JSONBuffer.appendString(position.lsn.description, to: &cache.compactPosition)
                if let xid = position.xid {
                    JSONBuffer.appendASCII(",\"xid\":", to: &cache.compactPosition)
                    JSONBuffer.appendUnsigned(UInt64(xid), to: &cache.compactPosition)
                }
            }
            JSONBuffer.appendASCII(",\"row\":", to: &cache.compactPosition)
        }
        out.append(contentsOf: cache.compactPosition)
        JSONBuffer.appendInteger(Int64(event.pointee.source.row), to: &out)
        JSONBuffer.appendASCII(",\"ts_ms\":", to: &out)
        JSONBuffer.appendInteger(event.pointee.source.timestampMillis, to: &out)
        JSONBuffer.appendASCII(",\"before\":", to: &out)
        writeRow(event.pointee.before, schema: event.pointee.schema, into: &out)
        JSONBuffer.appendASCII(",\"after\":", to: &out)
        writeRow(event.pointee.after, schema: event.pointee.schema, into: &out)
        out.append(UInt8(ascii: "}"))
    }

    private func writeDDL(_ event: UnsafePointer<ChangeEvent>, into out: inout [UInt8]) {
        JSONBuffer.appendASCII("\"op\":\"ddl\",\"ddl\":", to: &out)
        JSONBuffer.appendString(event.pointee.statement ?? "", to: &out)
        JSONBuffer.appendASCII(",\"source\":", to: &out)
        writeSource(event, into: &out)
        out.append(UInt8(ascii: "}"))
    }

    private func writeSource(_ event: UnsafePointer<ChangeEvent>, into out: inout [UInt8]) {
        writeSourcePrefix(event, into: &out)
        JSONBuffer.appendInteger(Int64(event.pointee.source.row), to: &out)
        writeSourceSuffix(event, into: &out)
    }

    private func writeSourcePrefix(_ event: UnsafePointer<ChangeEvent>, into out: inout [UInt8]) {
        let source = event.pointee.source
        JSONBuffer.appendASCII("{\"version\":\"", to: &out)
        JSONBuffer.appendASCII(FerryVersion.current, to: &out)
        JSONBuffer.appendASCII("\",\"connector\":\"", to: &out)
        JSONBuffer.appendASCII(source.position.wal == nil ? connector : "postgresql", to: &out)
        JSONBuffer.appendASCII("\",\"name\":", to: &out)
        JSONBuffer.appendString(source.name, to: &out)
        JSONBuffer.appendASCII(",\"server_id\":", to: &out)
        JSONBuffer.appendUnsigned(UInt64(source.serverID), to: &out)
        JSONBuffer.appendASCII(",\"gtid\":", to: &out)
        appendOptionalString(source.gtid, to: &out)
        switch source.position {
        case .binlog(let position):
            JSONBuffer.appendASCII(",\"gtid_pos\":", to: &out)
            appendOptionalString(position.gtidPosition?.description, to: &out)
            JSONBuffer.appendASCII(",\"file\":", to: &out)
            JSONBuffer.appendString(position.coordinates.file, to: &out)
            JSONBuffer.appendASCII(",\"pos\":", to: &out)
            JSONBuffer.appendUnsigned(position.coordinates.offset, to: &out)
        case .wal(let position):
            // Debezium's PostgreSQL names: the LSN as a number, the transaction id.
            JSONBuffer.appendASCII(",\"lsn\":", to: &out)
            JSONBuffer.appendUnsigned(position.lsn.value, to: &out)
            JSONBuffer.appendASCII(",\"txId\":", to: &out)
            if let xid = position.xid { JSONBuffer.appendUnsigned(UInt64(xid), to: &out) } else { JSONBuffer.appendASCII("null", to: &out) }
            JSONBuffer.appendASCII(",\"xmin\":null", to: &out)
        }
        if source.position.snapshotStep > 0 {
            JSONBuffer.appendASCII(",\"snapshot_step\":", to: &out)
            JSONBuffer.appendUnsigned(UInt64(source.position.snapshotStep), to: &out)
        }
        JSONBuffer.appendASCII(",\"row\":", to: &out)
    }

    private func writeSourceSuffix(_ event: UnsafePointer<ChangeEvent>, into out: inout [UInt8]) {
        JSONBuffer.appendASCII(",\"ts_ms\":", to: &out)
        JSONBuffer.appendInteger(event.pointee.source.timestampMillis, to: &out)
        // A PostgreSQL table's namespace is its schema, as Debezium's PostgreSQL source names it.
        JSONBuffer.appendASCII(event.pointee.source.position.wal == nil ? ",\"db\":" : ",\"schema\":", to: &out)
        JSONBuffer.appendString(event.pointee.table.database, to: &out)
        JSONBuffer.appendASCII(",\"table\":", to: &out)
        appendOptionalString(event.pointee.table.table.isEmpty ? nil : event.pointee.table.table, to: &out)
        out.append(UInt8(ascii: "}"))
    }

    private func writeRow(_ row: Row?, schema: TableSchema?, into out: inout [UInt8]) {
        ValueJSON.appendRow(row, schema: schema, to: &out)
    }

    private func appendOptionalString(_ text: String?, to out: inout [UInt8]) {
        if let text { JSONBuffer.appendString(text, to: &out) } else { JSONBuffer.appendASCII("null", to: &out) }
    }
}
