#if canImport(Glibc)
import Glibc
#endif
import FerryCore
import MySQLBinlog
import MySQLSource
import NIOCore

/// `ferry read-binlog FILE…`: decodes binlog files from disk with the same parser and
/// transaction assembly as the live stream — for inspection, and for the decode benchmark.
public enum BinlogFileDecoder {
    public enum Output: String, Sendable, CaseIterable {
        /// Decode to typed rows and count them; print nothing.
        case none
        case debezium
        case compact
    }

    public struct Statistics: Sendable {
        public var files = 0
        public var bytes = 0
        public var events = 0
        public var rows = 0
    }

    public static func run(paths: [String], output: Output, filter: TableFilter, sourceName: String = "file",
                           writer destination: FileDescriptorOutput?) throws -> Statistics {
        var statistics = Statistics()
        let writer = EventJSONWriter(format: output == .compact ? .compact : .debezium)
        for path in paths {
            let bytes = try readFile(path)
            statistics.files += 1
            statistics.bytes += bytes.readableBytes
            let name = path.split(separator: "/").last.map(String.init) ?? path
            var events = try BinlogParser.events(inFile: bytes)
            var parser = BinlogParser()
            var assembler = TransactionAssembler(sourceName: sourceName, start: BinlogPosition(coordinates: BinlogCoordinates(file: name, offset: 4), gtidPosition: nil))
            var decoders: [UInt64: (map: TableMapEvent, decoder: TableDecoder?)] = [:]
            while let event = try events.next() {
                let record = try parser.parse(event, file: name)
                statistics.events += 1
                var completed: TransactionAssembler.Output? = nil
                switch record.event {
                case .tableMap(let map):
                    if decoders[map.tableID]?.map != map {
                        let name = TableName(database: map.database, table: map.table)
                        decoders[map.tableID] = (map, filter.includes(name) ? TableDecoder(tableMap: map, mariadb: parser.isMariaDB) : nil)
                    }
                case .rows(let rows):
                    guard let decoder = decoders[rows.tableID]?.decoder else {
                        assembler.filteredRowsReceived(header: record.header)
                        continue
                    }
                    let changes = try rows.decodeRows(using: decoder)
                    statistics.rows += changes.count
                    if output != .none { assembler.rowsReceived(kind: rows.kind, schema: decoder.schema, changes: changes, header: record.header) }
                case .mariadbGTID(let gtid): assembler.mariadbGTIDReceived(gtid, header: record.header)
                case .mysqlGTID(let gtid): assembler.mysqlGTIDReceived(gtid, header: record.header)
                case .mariadbGTIDList(let list): assembler.gtidListReceived(list)
                case .previousGTIDs(let previous): assembler.previousGTIDsReceived(previous)
                case .xid: completed = assembler.xidReceived(header: record.header)
                case .query(let query): completed = assembler.queryReceived(query, header: record.header)
                default: assembler.otherEventReceived(header: record.header)
                }
                if case .transaction(let transaction) = completed, let destination, output != .none, !transaction.events.isEmpty {
                    try destination.append { buffer in writer.write(transaction, processedAtMillis: transaction.timestampMillis, into: &buffer) }
                }
            }
        }
        try destination?.flush()
        return statistics
    }

    static func readFile(_ path: String) throws -> ByteBuffer {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else {
            throw FerryError(code: .cliFile, message: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw FerryError(code: .cliFile, message: "cannot stat \(path)") }
        let size = Int(info.st_size)
        var buffer = ByteBufferAllocator().buffer(capacity: size)
        var total = 0
        while total < size {
            let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { raw in
                read(descriptor, raw.baseAddress, raw.count)
            }
            if count <= 0 { break }
            total += count
        }
        return buffer
    }
}
