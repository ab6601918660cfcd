import Logging
import NIOCore
import NIOPosix
import NIOSSL
import WireTLS

/// A connection to a MySQL or MariaDB server: login, text queries with streamed rows, and the
/// replica commands. Used from one task inside `withConnection`; not shareable.
public final class MySQLConnection {
    public let handshake: HandshakeV10
    public private(set) var capabilities: CapabilityFlags = []
    public private(set) var isTLS = false

    private let channel: any Channel
    private var inbound: NIOAsyncChannelInboundStream<MySQLPacket>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<MySQLPacket>
    private let logger: Logger
    private var nextSequence: UInt8 = 0

    private init(channel: any Channel, inbound: NIOAsyncChannelInboundStream<MySQLPacket>.AsyncIterator,
                 outbound: NIOAsyncChannelOutboundWriter<MySQLPacket>, handshake: HandshakeV10, logger: Logger) {
        self.channel = channel
        self.inbound = inbound
        self.outbound = outbound
        self.handshake = handshake
        self.logger = logger
    }

    public var isMariaDB: Bool { handshake.isMariaDB }
    public var serverVersion: String { handshake.displayVersion }

    /// Connects, logs in, runs `body`, then says goodbye and closes — also when `body` throws.
    /// `connected` receives a handle to the connection as soon as the TCP connection stands,
    /// before the handshake, so another task can close it while it logs in.
    public static func withConnection<Result: Sendable>(
        _ configuration: MySQLConnectionConfiguration,
        logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        connected: (MySQLWaker) -> Void = { _ in },
        _ body: (MySQLConnection) async throws -> Result
    ) async throws -> Result {
        let asyncChannel: NIOAsyncChannel<MySQLPacket, MySQLPacket>
        do {
            asyncChannel = try await ClientBootstrap(group: eventLoopGroup)
                .connectTimeout(.seconds(configuration.connectTimeoutSeconds))
                .channelOption(.socketOption(.so_keepalive), value: 1)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .connect(host: configuration.host, port: configuration.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(PacketDecoder()))
                        try channel.pipeline.syncOperations.addHandler(WakeHandler())
                        try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(PacketEncoder()))
                        return try NIOAsyncChannel<MySQLPacket, MySQLPacket>(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(backPressureStrategy: .init(lowWatermark: 64, highWatermark: 512)))
                    }
                }
        } catch {
            throw MySQLWireError.connectFailed(host: configuration.host, port: configuration.port, reason: describeConnectionError(error))
        }
        connected(MySQLWaker(channel: asyncChannel.channel))
        return try await asyncChannel.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            let first: MySQLPacket
            do {
                guard let packet = try await iterator.next() else {
                    throw MySQLWireError.connectionClosed("before sending its handshake")
                }
                first = packet
            } catch let error as MySQLWireError {
                throw error
            } catch {
                throw MySQLWireError.connectionClosed("before sending its handshake (\(describeConnectionError(error)))")
            }
            let handshake = try HandshakeV10.decode(from: first.payload)
            let connection = MySQLConnection(channel: asyncChannel.channel, inbound: iterator, outbound: outbound,
                                             handshake: handshake, logger: logger)
            connection.nextSequence = first.sequence &+ 1
            try await connection.authenticate(configuration)
            let result = try await body(connection)
            try? await connection.sendCommand(.quit)
            return result
        }
    }

    // MARK: - Authentication

    private func authenticate(_ configuration: MySQLConnectionConfiguration) async throws {
        var machine = AuthenticationStateMachine(
            credentials: .init(username: configuration.username, password: configuration.password, database: configuration.database),
            tlsMode: configuration.tls)
        var action = machine.handshakeReceived(handshake)
        while true {
            switch action {
            case .sendSSLRequestThenStartTLS(let request):
                try await channel.writeAndFlush(MySQLPacket(sequence: nextSequence, payload: request)).get()
                nextSequence &+= 1
                try await startTLS(configuration)
                action = machine.tlsEstablished()
                continue
            case .send(let payload):
                try await send(payload)
            case .awaitPacket:
                break
            case .authenticated(let capabilities):
                self.capabilities = capabilities
                logger.debug("logged in", metadata: ["ferry.server": "\(serverVersion)", "ferry.tls": "\(isTLS)"])
                return
            case .fail(let error):
                throw error
            }
            action = machine.packetReceived(try await receive().payload)
        }
    }

    private func startTLS(_ configuration: MySQLConnectionConfiguration) async throws {
        do {
            try await ClientTLS.start(on: channel, host: configuration.host, mode: configuration.tls, caFile: configuration.tlsCAFile)
            isTLS = true
        } catch {
            throw MySQLWireError.tlsFailed(describeConnectionError(error))
        }
    }

    // MARK: - Packets

    func receive() async throws -> MySQLPacket {
        while true {
            let packet = try await receiveOrWake()
            if !packet.isWake { return packet }
        }
    }

    /// The next packet, or a wake marker (`MySQLWaker`).
    private func receiveOrWake() async throws -> MySQLPacket {
        do {
            guard let packet = try await inbound.next() else {
                throw MySQLWireError.connectionClosed("unexpectedly")
            }
            if !packet.isWake { nextSequence = packet.sequence &+ 1 }
            return packet
        } catch let error as MySQLWireError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch let error as NIOSSLError {
            throw MySQLWireError.tlsFailed("\(error)")
        } catch let error as BoringSSLError {
            throw MySQLWireError.tlsFailed("\(error)")
        } catch {
            throw MySQLWireError.connectionClosed("(\(describeConnectionError(error)))")
        }
    }

    func send(_ payload: ByteBuffer) async throws {
        let parts = payload.readableBytes / PacketDecoder.maximumPartLength + 1
        do {
            try await outbound.write(MySQLPacket(sequence: nextSequence, payload: payload))
        } catch {
            throw MySQLWireError.connectionClosed("while sending (\(describeConnectionError(error)))")
        }
        nextSequence &+= UInt8(truncatingIfNeeded: parts)
    }

    /// Sends a command, which always starts a new sequence at 0.
    public func sendCommand(_ command: Command) async throws {
        var payload = channel.allocator.buffer(capacity: 64)
        command.encode(into: &payload)
        nextSequence = 0
        try await send(payload)
    }

    private func serverError(_ packet: MySQLPacket, context: String) -> MySQLWireError {
        let error = (try? ERRPacket.decode(from: packet.payload, capabilities: capabilities))
            ?? ERRPacket(errorCode: 0, sqlState: "HY000", message: "malformed error packet")
        return .server(error, context: context)
    }

    // MARK: - Queries

    /// Runs a statement and streams its rows to `onRow` as they arrive; returns the columns.
    /// Statements without a result set return no columns.
    @discardableResult
    public func query(_ sql: String, onRow: (TextRow) throws -> Void) async throws -> [ColumnDefinition41] {
        try await query(sql) { payload, columnCount in try onRow(try TextRow(payload: payload, columnCount: columnCount)) }
    }

    /// Runs a statement and hands over each row of its first result set as the packet's payload
    /// (`columnCount` length-encoded fields, 0xFB for NULL), for readers that decode the fields in
    /// place instead of through a `TextRow` per row (a snapshot reads millions).
    public func query(_ sql: String, onRowPayload: (ByteBuffer, _ columnCount: Int) throws -> Void) async throws -> [ColumnDefinition41] {
        try await sendCommand(.query(sql))
        var columns: [ColumnDefinition41] = []
        var firstResult = true
        while true {
            let head = try await receive()
            if head.isERR { throw serverError(head, context: "the statement `\(Self.abbreviated(sql))`") }
            if head.isOK { return columns }
            var countBuffer = head.payload
            guard let count = countBuffer.readLengthEncodedInteger(), count > 0, count < 4096 else {
                throw MySQLWireError.protocolViolation("bad column count in result set of `\(Self.abbreviated(sql))`")
            }
            var resultColumns: [ColumnDefinition41] = []
            for _ in 0..<count { resultColumns.append(try ColumnDefinition41.decode(from: try await receive().payload)) }
            if !capabilities.contains(.deprecateEOF) {
                guard try await receive().isEOF else { throw MySQLWireError.protocolViolation("missing EOF after column definitions") }
            }
            if firstResult { columns = resultColumns }
            var moreResults = false
            while true {
                let packet = try await receive()
                if packet.isEOF {
                    moreResults = (packet.payload.getInteger(at: packet.payload.readerIndex + 3, endianness: .little, as: UInt16.self) ?? 0) & 0x0008 != 0
                    break
                }
                if packet.isERR { throw serverError(packet, context: "the statement `\(Self.abbreviated(sql))`") }
                if firstResult { try onRowPayload(packet.payload, Int(count)) }
            }
            firstResult = false
            if !moreResults { return columns }
        }
    }

    /// Runs a statement and collects its rows.
    public func query(_ sql: String) async throws -> QueryResult {
        var rows: [TextRow] = []
        let columns = try await query(sql) { rows.append($0) }
        return QueryResult(columns: columns, rows: rows)
    }

    /// Runs statements that return no rows.
    public func execute(_ sql: String) async throws {
        _ = try await query(sql) { _ in }
    }

    static func abbreviated(_ sql: String) -> String {
        sql.count > 120 ? String(sql.prefix(117)) + "..." : sql
    }

    // MARK: - Replication

    /// Registers this connection as a replica (COM_REGISTER_SLAVE).
    public func registerReplica(serverID: UInt32, hostname: String, port: UInt16) async throws {
        try await sendCommand(.registerReplica(serverID: serverID, hostname: hostname, port: port))
        let reply = try await receive()
        if reply.isERR { throw serverError(reply, context: "registering as replica \(serverID)") }
    }

    /// Starts streaming the binlog; read it with `nextBinlogPacket()`.
    public func startBinlogDump(_ command: Command) async throws {
        try await sendCommand(command)
    }

    /// One item of the binlog stream.
    public enum BinlogStreamItem: Sendable {
        /// A complete event (header, body, checksum).
        case event(ByteBuffer)
        /// The server reached the end of the log in non-blocking mode.
        case endOfStream
        /// `MySQLWaker.wake()` was called: nothing arrived, the reader may look at other work.
        case wake
    }

    public func nextBinlogPacket() async throws -> BinlogStreamItem {
        let packet = try await receiveOrWake()
        if packet.isWake { return .wake }
        switch packet.header {
        case 0x00:
            return .event(packet.payload.getSlice(at: packet.payload.readerIndex + 1, length: packet.payload.readableBytes - 1)!)
        case 0xFE where packet.isEOF:
            return .endOfStream
        case 0xFF:
            throw serverError(packet, context: "the binlog dump")
        default:
            throw MySQLWireError.protocolViolation("binlog stream packet starts with \(packet.header.map { String($0) } ?? "nothing")")
        }
    }

    /// Lets another task interrupt a wait in `nextBinlogPacket()`.
    public var waker: MySQLWaker { MySQLWaker(channel: channel) }

    /// Fails the connection with `MySQLWireError.readTimeout` when nothing arrives for `seconds`
    /// while ferry is asking for data. A reader that stops asking (its consumer is full and holds
    /// the source back) is not waiting for the server, so that time does not count.
    public func enableReadTimeout(seconds: Double) async throws {
        let channel = self.channel
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(DemandReadTimeoutHandler(seconds: seconds), position: .first)
        }.get()
    }
}

/// One row of a text result set: each column's bytes, or `nil` for SQL NULL.
public struct TextRow: Sendable {
    public var values: [ByteBuffer?]

    init(payload: ByteBuffer, columnCount: Int) throws {
        var buffer = payload
        values = []
        values.reserveCapacity(columnCount)
        for _ in 0..<columnCount {
            if buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == 0xFB {
                buffer.moveReaderIndex(forwardBy: 1)
                values.append(nil)
            } else {
                guard let value = buffer.readLengthEncodedSlice() else { throw MySQLWireError.protocolViolation("truncated result row") }
                values.append(value)
            }
        }
    }

    public var count: Int { values.count }

    /// The column as UTF-8 text, or `nil` for NULL.
    public subscript(index: Int) -> String? { values[index].map { String(buffer: $0) } }

    public func bytes(_ index: Int) -> [UInt8]? { values[index].map { Array($0.readableBytesView) } }
}

/// A whole result set.
public struct QueryResult: Sendable {
    public var columns: [ColumnDefinition41]
    public var rows: [TextRow]

    /// The index of the column named `name` (case-insensitive).
    public func index(of name: String) -> Int? {
        columns.firstIndex { $0.name.lowercased() == name.lowercased() }
    }

    /// Text of the column named `name` in row `row`.
    public func value(_ name: String, row: Int = 0) -> String? {
        guard row < rows.count, let index = index(of: name) else { return nil }
        return rows[row][index]
    }
}

/// Makes a waiting `nextBinlogPacket()` return `.wake`, or ends the connection, from any task.
public struct MySQLWaker: Sendable {
    let channel: any Channel

    public func wake() {
        channel.pipeline.fireUserInboundEventTriggered(WakeHandler.Wake())
    }

    /// Closes the connection now: a wait or query in progress fails with `connectionClosed`.
    public func close() {
        channel.close(promise: nil)
    }
}

/// Turns a wake request into a marker packet (no payload — the decoder never produces one) in
/// the stream of packets, so the waiting reader returns.
final class WakeHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = MySQLPacket
    typealias InboundOut = MySQLPacket

    struct Wake: Sendable {}

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is Wake {
            context.fireChannelRead(wrapInboundOut(MySQLPacket(sequence: 0, payload: ByteBuffer())))
            // The async channel hands reads over at read-complete; without it the marker waits
            // for the next packet from the server.
            context.fireChannelReadComplete()
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}

/// A read timeout that runs only while a read is asked for: `read` (the channel wants data) arms
/// it, data disarms it. NIO's idle handler counts from the last data instead, so a reader held
/// back by its consumer (no reads asked for) would time out although the server was never asked.
/// Lives on the channel's event loop only.
final class DemandReadTimeoutHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    let seconds: Double
    private var timer: Scheduled<Void>?

    init(seconds: Double) { self.seconds = seconds }

    func read(context: ChannelHandlerContext) {
        if timer == nil {
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            let seconds = self.seconds
            timer = context.eventLoop.scheduleTask(in: .milliseconds(Int64(seconds * 1000))) {
                loopBound.value.fireErrorCaught(MySQLWireError.readTimeout(seconds: seconds))
                loopBound.value.close(promise: nil)
            }
        }
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        timer?.cancel()
        timer = nil
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }
}

