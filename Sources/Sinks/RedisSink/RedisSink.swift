import FerryCore
import Foundation
import Logging
import NIOCore

/// Redis as a target (RESP over SwiftNIO, written here). Per table, first matching rule wins:
/// a **hash** per row (`HSET`, one field per column), a **JSON** string per row (`SET`), or a
/// **stream** of change events (`XADD`, one entry per change with its stable id). Keys come from
/// templates; rows may expire (`ttl_seconds`); deletes remove the key.
///
/// Each batch is one `MULTI … EXEC` that also sets `ferry:offsets:<pipeline>:<sink>` to the batch's
/// last position: data and position change together or not at all, so after a crash the sink
/// resumes exactly after what Redis holds — hashes and strings are rewritten whole, and stream
/// entries are never added twice.
///
/// Cluster mode fences by epoch: the session sets `ferry:epoch:<pipeline>:<sink>` to its claim's
/// epoch when it opens (unless a newer one is there), and each batch `WATCH`es that key, reads
/// it, and sends its one `MULTI … EXEC` only while it is not newer; a newer owner's mark in
/// between makes Redis drop the whole `EXEC`.
public actor RedisSink: SinkSession {
    public enum Mode: String, Sendable, CaseIterable {
        case hash, json, stream
    }

    /// How the tables matching `tables` land.
    public struct TableRule: Sendable, Equatable {
        public var tables: String
        public var mode: Mode
        /// `{db}`, `{table}`, `{key}` (the key columns joined by `:`) and `{<column>}`.
        public var key: String
        public var ttlSeconds: Int?
        /// Streams: `MAXLEN ~ n`.
        public var maximumLength: Int?
        /// Streams: the form of each entry's `event` field.
        public var format: EventJSONWriter.Format

        public init(tables: String, mode: Mode, key: String? = nil, ttlSeconds: Int? = nil, maximumLength: Int? = nil,
                    format: EventJSONWriter.Format = .debezium) {
            self.tables = tables
            self.mode = mode
            self.key = key ?? (mode == .stream ? "{db}.{table}" : "{db}.{table}:{key}")
            self.ttlSeconds = ttlSeconds
            self.maximumLength = maximumLength
            self.format = format
        }
    }

    public struct Configuration: Sendable {
        public var name: String
        public var pipeline: String
        public var host: String
        public var port: Int
        public var database: Int
        public var username: String?
        public var password: String?
        /// First match wins; tables no rule matches are JSON strings under `{db}.{table}:{key}`.
        public var rules: [TableRule]
        /// Cluster mode: the epoch of this node's claim on the pipeline.
        public var epoch: Int64?

        public init(name: String, pipeline: String, host: String, port: Int = 6379, database: Int = 0, username: String? = nil,
                    password: String? = nil, rules: [TableRule] = [], epoch: Int64? = nil) {
            self.name = name
            self.pipeline = pipeline
            self.host = host
            self.port = port
            self.database = database
            self.username = username
            self.password = password
            self.rules = rules
            self.epoch = epoch
        }

        /// `redis://[user@]host[:port][/db]`.
        public init(name: String, pipeline: String, url: String, password: String?, rules: [TableRule], epoch: Int64? = nil) throws {
            guard let components = URLComponents(string: url), components.scheme == "redis", let host = components.host, !host.isEmpty else {
                throw FerryError(code: .configInvalid, message: "'\(Secrets.redactedURL(url))' is not a Redis URL", fix: "use redis://[user@]host[:port][/db]")
            }
            let path = components.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            guard path.isEmpty || Int(path) != nil else {
                throw FerryError(code: .configInvalid, message: "'\(path)' in \(Secrets.redactedURL(url)) is not a database number", fix: "use redis://host:6379/0")
            }
            self.init(name: name, pipeline: pipeline, host: host, port: components.port ?? 6379, database: Int(path) ?? 0,
                      username: components.user, password: password ?? components.password, rules: rules, epoch: epoch)
        }
    }

    public nonisolated let name: String
    let configuration: Configuration
    let logger: Logger
    private var connection: RedisConnection?
    private nonisolated let interrupter = ConnectionInterrupter()
    private var rules: [TableName: TableRule] = [:]

    public init(configuration: Configuration, logger: Logger) {
        self.name = configuration.name
        self.configuration = configuration
        self.logger = logger
    }

    var offsetsKey: String { "ferry:offsets:\(configuration.pipeline):\(name)" }
    var epochKey: String { "ferry:epoch:\(configuration.pipeline):\(name)" }

    private func connected() async throws -> RedisConnection {
        if let connection, !connection.isClosed { return connection }
        do {
            guard !interrupter.isFired else { throw CancellationError() }
            let connection = try await RedisConnection.connect(host: configuration.host, port: configuration.port)
            interrupter.register { connection.closeNow() }
            var setup: [[String]] = []
            if let password = configuration.password {
                setup.append(["AUTH"] + (configuration.username.map { [$0] } ?? []) + [password])
            }
            if configuration.database != 0 { setup.append(["SELECT", String(configuration.database)]) }
            setup.append(["PING"])
            let replies = try await connection.send(setup.map { $0.map { Array($0.utf8) } })
            for (command, reply) in zip(setup, replies) {
                if case .error(let message) = reply {
                    await connection.close()
                    throw RedisSinkError.refused(sink: name, command: command[0], message: message)
                }
            }
            self.connection = connection
            return connection
        } catch let error as RedisSinkError {
            throw error
        } catch {
            throw RedisSinkError.unavailable(sink: name, host: "\(configuration.host):\(configuration.port)", underlying: "\(error)")
        }
    }

    public func open() async throws -> SourcePosition? {
        let connection = try await connected()
        if let epoch = configuration.epoch { try await take(epoch, on: connection) }
        let reply: RESPValue
        do {
            reply = try await connection.send(["GET", offsetsKey])
        } catch {
            throw lost(error)
        }
        switch reply {
        case .bulk(let bytes?): return SourcePosition(persistedJSON: String(decoding: bytes, as: UTF8.self))
        case .error(let message): throw RedisSinkError.refused(sink: name, command: "GET", message: message)
        default: return nil
        }
    }

    /// Marks the epoch key with this session's epoch unless a newer owner's is there.
    private func take(_ epoch: Int64, on connection: RedisConnection) async throws {
        while true {
            try await watchEpoch(epoch, on: connection)
            let replies: [RESPValue]
            do {
                replies = try await connection.send([["MULTI"], ["SET", epochKey, String(epoch)], ["EXEC"]].map { $0.map { Array($0.utf8) } })
            } catch {
                throw lost(error)
            }
            // A null EXEC: the key changed since WATCH; look again.
            if case .array(_?) = replies.last { return }
        }
    }

    /// `WATCH`es the epoch key and refuses when it holds a newer epoch than this session's.
    private func watchEpoch(_ epoch: Int64, on connection: RedisConnection) async throws {
        let replies: [RESPValue]
        do {
            replies = try await connection.send([["WATCH", epochKey], ["GET", epochKey]].map { $0.map { Array($0.utf8) } })
        } catch {
            throw lost(error)
        }
        if case .error(let message) = replies.first { throw RedisSinkError.refused(sink: name, command: "WATCH", message: message) }
        guard let stored = replies.last?.text.flatMap({ Int64($0) }), stored > epoch else { return }
        _ = try? await connection.send(["UNWATCH"])
        throw fenced(epoch, stored: stored)
    }

    private func fenced(_ epoch: Int64, stored: Int64) -> FerryError {
        .fencedByTarget(sink: name, pipeline: configuration.pipeline, epoch: epoch, stored: String(stored), where: "Redis's \(epochKey)")
    }

    public func close() async throws {
        await connection?.close()
        connection = nil
    }

    public nonisolated func interrupt() {
        interrupter.fire()
    }

    /// Bytes of commands written to Redis at a time while the rest of the batch is encoded, so
    /// that Redis parses and queues one piece while ferry encodes the next.
    static let pieceBytes = 256 << 10

    public func apply(_ transactions: [Transaction]) async throws {
        guard let last = transactions.last else { return }
        let connection = try await connected()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        // Redis never rolls a transaction back: a command failing inside EXEC leaves the others
        // (and the position) applied. Hashes and strings replace any key (DEL, SET), so only XADD
        // can fail on a key of another type; that is checked before anything is written.
        var streams: [[UInt8]: ChangeEvent] = [:]
        for transaction in transactions {
            for event in transaction.events where event.operation != .ddl {
                let rule = rule(for: event.table)
                if rule.mode == .stream {
                    let key = try RedisCommands.streamKey(event, rule: rule)
                    if streams[key] == nil { streams[key] = event }
                }
            }
        }
        if !streams.isEmpty {
            let keys = Array(streams.keys)
            let types: [RESPValue]
            do {
                types = try await connection.send(keys.map { [Array("TYPE".utf8), $0] })
            } catch {
                throw lost(error)
            }
            for (key, type) in zip(keys, types) where type != .simpleString("stream") && type != .simpleString("none") {
                let event = streams[key]!
                throw RedisSinkError.rejected(sink: name, table: event.table, position: event.source.position,
                                              message: "WRONGTYPE: the stream key \(String(decoding: key, as: UTF8.self)) holds a \(type.text ?? "value of another type")")
            }
        }
        // Pieces of about `pieceBytes`, each one MULTI … EXEC that also sets the position of the
        // last transaction it ends, sent while the next is encoded so that Redis runs one piece
        // while ferry writes the next. A transaction larger than a piece spans several; a replay
        // after a crash rewrites the same values. Stream entries must never be added twice: a
        // batch with any is one piece. So is a fenced batch: EXEC ends a WATCH, which guards one.
        if let epoch = configuration.epoch { try await watchEpoch(epoch, on: connection) }
        let splittable = streams.isEmpty && configuration.epoch == nil
        var piece = RedisPiece()
        var scratch: [UInt8] = []
        var pieces: [(replies: EventLoopFuture<[RESPValue]>, origins: [ChangeEvent?])] = []
        do {
            for (index, transaction) in transactions.enumerated() {
                for event in transaction.events where event.operation != .ddl {
                    let written = try RedisCommands.write(event, rule: rule(for: event.table), processedAtMillis: now, into: &piece.writer, scratch: &scratch)
                    for _ in 0..<written { piece.origins.append(event) }
                    if splittable, piece.writer.bytes.count >= Self.pieceBytes {
                        pieces.append(try await send(&piece, position: piece.lastWhole, on: connection))
                    }
                }
                piece.lastWhole = transaction.position
                if splittable, index < transactions.count - 1, piece.writer.bytes.count >= Self.pieceBytes {
                    pieces.append(try await send(&piece, position: piece.lastWhole, on: connection))
                }
            }
        } catch {
            // Pieces sent are whole MULTI … EXEC units; their replies are left unread, so the
            // connection is not used again.
            if !pieces.isEmpty {
                connection.closeNow()
                self.connection = nil
            }
            throw error
        }
        pieces.append(try await send(&piece, position: last.position, on: connection))
        for (answer, origins) in pieces {
            let replies: [RESPValue]
            do {
                replies = try await answer.get()
            } catch {
                throw lost(error)
            }
            if let epoch = configuration.epoch, case .array(nil) = replies.last {
                // The epoch key changed after WATCH: a newer owner marked it.
                let stored = try? await connection.send(["GET", epochKey])
                throw fenced(epoch, stored: stored?.text.flatMap { Int64($0) } ?? 0)
            }
            try check(replies, origins: origins)
        }
    }

    /// The replies to one piece: `OK` to MULTI, one per queued command, and EXEC's results.
    private func check(_ replies: [RESPValue], origins: [ChangeEvent?]) throws {
        // A command Redis refuses while queueing aborts the whole transaction (EXECABORT).
        for (index, reply) in replies.enumerated().dropLast() {
            if case .error(let message) = reply, index < origins.count, let event = origins[index] {
                throw RedisSinkError.rejected(sink: name, table: event.table, position: event.source.position, message: message)
            }
        }
        switch replies.last {
        case .array(let results?):
            for (offset, result) in results.enumerated() {
                if case .error(let message) = result, offset + 1 < origins.count, let event = origins[offset + 1] {
                    throw RedisSinkError.rejected(sink: name, table: event.table, position: event.source.position, message: message)
                }
            }
        case .error(let message):
            throw RedisSinkError.refused(sink: name, command: "EXEC", message: message)
        default:
            throw RedisSinkError.refused(sink: name, command: "EXEC", message: "the transaction was not executed")
        }
    }

    /// Ends `piece` (the position, when it ends a transaction, then EXEC), writes it, and starts
    /// the next one; returns the piece's replies to come and what each command came from.
    private func send(_ piece: inout RedisPiece, position: SourcePosition?, on connection: RedisConnection) async throws
        -> (replies: EventLoopFuture<[RESPValue]>, origins: [ChangeEvent?]) {
        if let position {
            piece.writer.command([Array("SET".utf8), Array(offsetsKey.utf8), Array(position.persistedJSON.utf8)])
            piece.origins.append(nil)
        }
        piece.writer.command([Array("EXEC".utf8)])
        let replies: EventLoopFuture<[RESPValue]>
        do {
            replies = try await connection.write(piece.writer.bytes, commands: piece.writer.count)
        } catch {
            throw lost(error)
        }
        let origins = piece.origins
        piece.start()
        return (replies, origins)
    }

    private func rule(for table: TableName) -> TableRule {
        if let rule = rules[table] { return rule }
        let rule = configuration.rules.first { TableGlob.matches($0.tables, table.description) } ?? TableRule(tables: "*", mode: .json)
        rules[table] = rule
        return rule
    }

    private func lost(_ error: any Error) -> RedisSinkError {
        connection = nil
        return .unavailable(sink: name, host: "\(configuration.host):\(configuration.port)", underlying: "\(error)")
    }
}

/// One MULTI … EXEC being written: its commands, what each came from (`nil`: MULTI, the
/// position), and the last transaction it holds whole.
struct RedisPiece {
    var writer = RESPCommandWriter()
    var origins: [ChangeEvent?] = []
    var lastWhole: SourcePosition?

    init() {
        start()
    }

    mutating func start() {
        writer.reset()
        writer.command([Array("MULTI".utf8)])
        origins.removeAll(keepingCapacity: true)
        origins.append(nil)
        lastWhole = nil
    }
}

/// Why a Redis write failed; a lost connection is retried, refusals are not.
enum RedisSinkError: ClassifiedError, FerryErrorConvertible, CustomStringConvertible {
    case unavailable(sink: String, host: String, underlying: String)
    case refused(sink: String, command: String, message: String)
    case rejected(sink: String, table: TableName, position: SourcePosition, message: String)

    var isTransient: Bool {
        switch self {
        case .unavailable: return true
        case .refused(_, _, let message): return message.hasPrefix("LOADING") || message.hasPrefix("BUSY") || message.hasPrefix("TRYAGAIN")
        case .rejected: return false
        }
    }


    var ferryError: FerryError {
        switch self {
        case .unavailable(let sink, let host, let underlying):
            return FerryError(code: .sinkRedisUnavailable, message: "Redis sink \(sink): cannot reach \(host): \(underlying)",
                              fix: "check the host and port in the sink's url and that Redis is running", disposition: .retry)
        case .refused(let sink, let command, let message):
            let auth = command == "AUTH" || message.hasPrefix("NOAUTH") || message.hasPrefix("WRONGPASS")
            return FerryError(code: auth ? .sinkRedisAuth : .sinkRedisRefused, message: "Redis sink \(sink): \(command) refused: \(message)",
                              fix: auth ? "check the sink's password (and user in the url) against Redis's requirepass or ACL" : nil)
        case .rejected(let sink, let table, let position, let message):
            return FerryError(code: .sinkRedisRejected, message: "Redis sink \(sink): \(message)",
                              context: [("table", table.description), ("position", position.place)],
                              fix: "a key the template makes holds another type (WRONGTYPE): give the table its own key template, or remove the key")
        }
    }
}

extension RedisSink {
    /// The keys of a `type: redis` sink (besides `type`).
    public static let settings: [SinkSetting] = [
        SinkSetting("url", .text, required: true, doc: "redis://[USER@]HOST:PORT/DB (rediss:// for TLS)"),
        .password(),
        SinkSetting("tables", .mapping, doc: "per table glob: { mode: hash | json | stream, key: template, ttl_seconds, max_length, format }, first match wins; unmatched tables: json (docs/sinks/redis.md)"),
    ]
}
