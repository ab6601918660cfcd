import Logging
import NIOCore
import NIOPosix
import WireTLS

/// A connection to PostgreSQL speaking the frontend/backend protocol 3.0: login (SCRAM-SHA-256,
/// MD5, cleartext; TLS), simple and extended queries with text results, and `COPY … FROM STDIN`.
///
/// One owner: the task that made it uses it, one exchange at a time. Other tasks can only close
/// it (`closer`). Cancelling the owner's task closes the channel, so every wait ends promptly
/// with `connectionClosed` — no exchange outlives its caller. After any error other than a
/// server's ErrorResponse the connection is closed and must be replaced.
public final class PostgresWireConnection {
    public let closer: PostgresCloser
    /// The server's run-time parameters reported at login (`server_version`, …).
    public private(set) var parameters: [String: String] = [:]
    /// `I` idle, `T` in a transaction block, `E` in a failed transaction block.
    public private(set) var transactionStatus: UInt8 = UInt8(ascii: "I")

    private let channel: any Channel
    private let inbox: MessageInbox
    private let logger: Logger
    private var pending: [BackendMessage] = []
    private var pendingIndex = 0

    private init(channel: any Channel, inbox: MessageInbox, logger: Logger) {
        self.channel = channel
        self.inbox = inbox
        self.logger = logger
        self.closer = PostgresCloser(channel: channel)
    }

    public var isClosed: Bool { !channel.isActive }
    public var serverVersion: String { parameters["server_version"] ?? "" }

    /// Connects and logs in. `connected` receives the closer as soon as the TCP connection
    /// stands, so another task can end a login that hangs.
    nonisolated(nonsending) public static func connect(_ configuration: PostgresWireConfiguration, logger: Logger,
                               eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                               connected: (PostgresCloser) -> Void = { _ in }) async throws -> PostgresWireConnection {
        let inbox = MessageInbox()
        let wantsTLS = configuration.tls != .disable
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: eventLoopGroup)
                .connectTimeout(.seconds(configuration.connectTimeoutSeconds))
                .channelOption(.socketOption(.so_keepalive), value: 1)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(BackendMessageDecoder(expectsSSLAnswer: wantsTLS)))
                        try channel.pipeline.syncOperations.addHandler(InboxHandler(inbox: inbox))
                    }
                }
                .connect(host: configuration.host, port: configuration.port).get()
        } catch {
            throw PostgresWireError.connectFailed(host: configuration.host, port: configuration.port, reason: describeConnectionError(error))
        }
        inbox.attach { [channel] in channel.read() }
        let connection = PostgresWireConnection(channel: channel, inbox: inbox, logger: logger)
        connected(connection.closer)
        do {
            try await connection.login(configuration)
            return connection
        } catch {
            await connection.close()
            throw error
        }
    }

    nonisolated(nonsending) private func login(_ configuration: PostgresWireConfiguration) async throws {
        if configuration.tls != .disable {
            var request = channel.allocator.buffer(capacity: 8)
            FrontendMessage.sslRequest(into: &request)
            try await send(request)
            switch try await receive() {
            case .sslAnswer(UInt8(ascii: "S")):
                try await startTLS(configuration)
            case .sslAnswer(UInt8(ascii: "N")):
                guard configuration.tls == .prefer else {
                    throw PostgresWireError.tls("the server does not accept TLS connections and sslmode is \(configuration.tls.rawValue)")
                }
            case let other:
                throw PostgresWireError.protocolViolation("\(other) in answer to the TLS request")
            }
        }
        var startup = channel.allocator.buffer(capacity: 128)
        let parameters = [("user", configuration.user), ("database", configuration.database), ("application_name", "ferry"),
                          ("client_encoding", "UTF8"), ("DateStyle", "ISO, YMD")] + configuration.options
        FrontendMessage.startup(parameters: parameters, into: &startup)
        try await send(startup)
        var machine = StartupStateMachine(user: configuration.user, password: configuration.password)
        while true {
            var buffer = channel.allocator.buffer(capacity: 256)
            switch machine.received(try await receive()) {
            case .wait: continue
            case .ready:
                self.parameters = machine.parameters
                logger.debug("logged in to PostgreSQL", metadata: ["ferry.server": "\(serverVersion)"])
                return
            case .fail(let error): throw error
            case .sendPassword(let password): FrontendMessage.password(password, into: &buffer)
            case .sendSASLInitialResponse(let mechanism, let data): FrontendMessage.saslInitialResponse(mechanism: mechanism, data: data, into: &buffer)
            case .sendSASLResponse(let data): FrontendMessage.saslResponse(data, into: &buffer)
            }
            try await send(buffer)
        }
    }

    nonisolated(nonsending) private func startTLS(_ configuration: PostgresWireConfiguration) async throws {
        do {
            try await ClientTLS.start(on: channel, host: configuration.host, mode: configuration.tls, caFile: configuration.tlsCAFile)
        } catch {
            throw PostgresWireError.tls(describeConnectionError(error))
        }
    }

    /// Says goodbye and closes; waits until the channel has ended. Safe to call more than once.
    nonisolated(nonsending) public func close() async {
        if channel.isActive {
            var goodbye = channel.allocator.buffer(capacity: 5)
            FrontendMessage.terminate(into: &goodbye)
            channel.writeAndFlush(goodbye, promise: nil)
        }
        channel.close(promise: nil)
        try? await channel.closeFuture.get()
    }

    // MARK: - Messages

    /// Writes `buffer`; cancellation closes the connection.
    nonisolated(nonsending) func send(_ buffer: ByteBuffer) async throws {
        try await failingClosed {
            try await self.channel.writeAndFlush(buffer).get()
        }
    }

    /// The next message from the server (notices are logged and skipped).
    nonisolated(nonsending) func receive() async throws -> BackendMessage {
        while true {
            if pendingIndex == pending.count {
                pending = try await failingClosed { try await self.inbox.next() }
                pendingIndex = 0
            }
            let message = pending[pendingIndex]
            pendingIndex += 1
            if case .notice(let notice) = message {
                logger.debug("PostgreSQL notice", metadata: ["ferry.notice": "\(notice)"])
                continue
            }
            if case .parameterStatus(let name, let value) = message {
                parameters[name] = value
            }
            return message
        }
    }

    /// Runs `body`; cancellation closes the channel (so `body` ends with it) and anything but a
    /// wire error becomes `connectionClosed`.
    nonisolated(nonsending) private func failingClosed<T>(_ body: () async throws -> T) async throws -> T {
        let closer = self.closer
        do {
            return try await withTaskCancellationHandler(operation: body, onCancel: { closer.close() })
        } catch let error as PostgresWireError {
            throw error
        } catch {
            closer.close()
            // A write fails only with "closed"; why it closed (a TLS failure, say) is the news.
            throw inbox.endReason ?? PostgresWireError.connectionClosed("(\(describeConnectionError(error)))")
        }
    }

    /// Reads up to ReadyForQuery, collecting the rows; a server error is thrown after it (the
    /// connection stays usable). `copyIn` tells a COPY waiting for data.
    nonisolated(nonsending) private func readResult(copyIn: Bool = false) async throws -> PostgresResult {
        var result = PostgresResult()
        var failure: PostgresServerError?
        while true {
            let message = try await receive()
            switch message {
            case .rowDescription(let columns):
                // A new result set (the next statement of a simple query) replaces the last one.
                result.columns = columns
                result.rows.removeAll()
            case .dataRow(let values):
                result.rows.append(values)
            case .commandComplete(let tag):
                result.commandTag = tag
            case .error(let error):
                failure = failure ?? error
            case .readyForQuery(let status):
                transactionStatus = status
                if let failure { throw PostgresWireError.server(failure) }
                return result
            case .copyInResponse where copyIn:
                result.copyInStarted = true
                return result
            case .parseComplete, .bindComplete, .noData, .emptyQueryResponse, .closeComplete, .parameterStatus, .parameterDescription,
                 .notification, .portalSuspended:
                continue
            default:
                closer.close()
                throw PostgresWireError.protocolViolation("\(message) in answer to a query")
            }
        }
    }

    // MARK: - Queries

    /// Runs one or more statements separated by `;` with the simple protocol (no parameters);
    /// returns the rows of the last statement that had any.
    @discardableResult
    nonisolated(nonsending) public func simpleQuery(_ sql: String) async throws -> PostgresResult {
        var buffer = channel.allocator.buffer(capacity: sql.utf8.count + 6)
        FrontendMessage.query(sql, into: &buffer)
        try await send(buffer)
        return try await readResult()
    }

    /// Runs one statement with parameters (`$1`, `$2`, …) through the extended protocol.
    @discardableResult
    nonisolated(nonsending) public func query(_ sql: String, _ parameters: [FrontendMessage.Parameter] = []) async throws -> PostgresResult {
        var size = sql.utf8.count + 64
        for parameter in parameters { size += 8 + (parameter.value?.readableBytes ?? 0) }
        var buffer = channel.allocator.buffer(capacity: size)
        FrontendMessage.extendedQuery(sql, parameters: parameters, into: &buffer)
        try await send(buffer)
        return try await readResult()
    }

    /// Streams data into `COPY … FROM STDIN` (`sql`). `produce` appends the next piece of COPY
    /// data to its buffer and returns whether more follows; each piece is sent while the next
    /// is produced. A server error (a constraint, a bad value) is thrown once the server has
    /// finished the statement; the connection stays usable.
    nonisolated(nonsending) public func copyIn(_ sql: String, pieceBytes: Int = 256 * 1024, _ produce: (inout ByteBuffer) throws -> Bool) async throws -> PostgresResult {
        var start = channel.allocator.buffer(capacity: sql.utf8.count + 6)
        FrontendMessage.query(sql, into: &start)
        try await send(start)
        let answer = try await readResult(copyIn: true)
        guard answer.copyInStarted else {
            throw PostgresWireError.protocolViolation("`\(sql.prefix(80))` did not start a COPY FROM STDIN")
        }
        var previous: EventLoopFuture<Void>?
        var more = true
        do {
            // Stop early when the server has refused: it ignores the rest (a notice, e.g. from a
            // trigger, is no refusal — stopping then would end the COPY with rows missing).
            while more, !inbox.hasFailure {
                var piece = channel.allocator.buffer(capacity: pieceBytes + pieceBytes / 8)
                piece.writeInteger(UInt8(ascii: "d"))
                piece.writeInteger(Int32(0))
                more = try produce(&piece)
                piece.setInteger(Int32(piece.writerIndex - 1), at: 1)
                if piece.readableBytes > 5 {
                    if let previous { try await failingClosed { try await previous.get() } }
                    previous = channel.writeAndFlush(piece)
                }
            }
        } catch let error as PostgresWireError {
            throw error
        } catch {
            // The producer failed: end the COPY so the connection stays usable, then report it.
            var fail = channel.allocator.buffer(capacity: 64)
            FrontendMessage.copyFail("ferry could not produce the rows", into: &fail)
            try await send(fail)
            _ = try? await readResult()
            throw error
        }
        if let previous { try await failingClosed { try await previous.get() } }
        var done = channel.allocator.buffer(capacity: 5)
        FrontendMessage.copyDone(into: &done)
        try await send(done)
        return try await readResult()
    }

    // MARK: - Streaming replication

    /// Starts a replication stream with `command` (`START_REPLICATION …`, on a connection opened
    /// with the startup parameter `replication` = `database`). From the server's
    /// CopyBothResponse on, CopyData flows both ways: `nextCopyData` reads the server's,
    /// `sendCopyData` answers. A refusal (no such slot, a bad option) is thrown as the server's
    /// error, and the connection stays usable.
    nonisolated(nonsending) public func startCopyBoth(_ command: String) async throws {
        var buffer = channel.allocator.buffer(capacity: command.utf8.count + 6)
        FrontendMessage.query(command, into: &buffer)
        try await send(buffer)
        while true {
            let message = try await receive()
            switch message {
            case .copyBothResponse:
                return
            case .error(let error):
                _ = try? await readResult()
                throw PostgresWireError.server(error)
            case .parameterStatus:
                continue
            default:
                closer.close()
                throw PostgresWireError.protocolViolation("\(message) in answer to `\(command.prefix(80))`")
            }
        }
    }

    /// The next CopyData payload of the stream; nil when the server ended it (its CopyDone is
    /// answered, and the command's completion read, so the connection can run commands again).
    nonisolated(nonsending) public func nextCopyData() async throws -> [UInt8]? {
        while true {
            let message = try await receive()
            switch message {
            case .copyData(var data):
                return data.readBytes(length: data.readableBytes) ?? []
            case .copyDone:
                var done = channel.allocator.buffer(capacity: 5)
                FrontendMessage.copyDone(into: &done)
                try await send(done)
                _ = try await readResult()
                return nil
            case .error(let error):
                closer.close()
                throw PostgresWireError.server(error)
            case .commandComplete:
                // A walsender that finishes (the server shutting down) ends the command without CopyDone.
                closer.close()
                throw PostgresWireError.connectionClosed("the server ended the replication stream (it may be shutting down)")
            case .parameterStatus:
                continue
            default:
                closer.close()
                throw PostgresWireError.protocolViolation("\(message) during a replication stream")
            }
        }
    }

    /// Sends one CopyData payload (a standby status update) into the stream.
    nonisolated(nonsending) public func sendCopyData(_ bytes: [UInt8]) async throws {
        var buffer = channel.allocator.buffer(capacity: bytes.count + 5)
        bytes.withUnsafeBytes { FrontendMessage.copyData($0, into: &buffer) }
        try await send(buffer)
    }
}

/// Closes a connection from any task: a wait or query in progress fails with `connectionClosed`.
public struct PostgresCloser: Sendable {
    let channel: any Channel

    public func close() {
        channel.close(promise: nil)
    }
}

/// A statement's answer in text form.
public struct PostgresResult: Sendable {
    public var columns: [String] = []
    /// Each row's columns as text bytes, `nil` for NULL.
    public var rows: [[ByteBuffer?]] = []
    /// `INSERT 0 5`, `COPY 100`, …
    public var commandTag = ""
    var copyInStarted = false

    public init() {}

    /// The text of `column` in `row`; `nil` for NULL, and for a row or column the result does
    /// not have (an empty answer reads as no value, not as a crash).
    public func text(_ row: Int, _ column: Int) -> String? {
        guard rows.indices.contains(row), rows[row].indices.contains(column) else { return nil }
        return rows[row][column].map { String(buffer: $0) }
    }

    /// The number of rows the command reports (the last number of its tag).
    public var affectedRows: Int? { commandTag.split(separator: " ").last.flatMap { Int($0) } }
}
