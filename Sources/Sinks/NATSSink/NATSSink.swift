import FerryCore
import Foundation
import Logging
import NIOCore

/// NATS JetStream as a target (the NATS protocol over SwiftNIO, written here). Every change is
/// published as its Debezium JSON to a subject from a template, with `Nats-Msg-Id` set to the
/// event's stable id, so JetStream drops a replayed message inside the stream's duplicate window;
/// a batch counts as applied only when JetStream acknowledged every message of it.
///
/// A subject with `{key}` names the row: an update that changes the key is then published as a
/// delete under the old key and a create under the new one, and with `tombstones` each delete is
/// followed by an empty message on its subject — Debezium's shape for keyed, compacted topics.
///
/// Where the sink stands is read back from the stream itself: each message carries its
/// transaction's position, the position before it, and whether it ends its transaction, so after
/// a crash the sink resumes after the last transaction JetStream holds whole — even when ferry was
/// down longer than the duplicate window.
public actor NATSSink: SinkSession {
    public struct Configuration: Sendable {
        public var name: String
        public var pipeline: String
        public var host: String
        public var port: Int
        public var user: String?
        public var password: String?
        /// The JetStream stream; created when missing (file storage), over `streamSubjects`.
        public var stream: String
        /// `{db}`, `{table}` and `{key}`; default `ferry.{db}.{table}`.
        public var subject: String
        /// Default: the template with each placeholder as `*`.
        public var streamSubjects: [String]
        /// JetStream's duplicate window for a stream ferry creates. Default 2 minutes.
        public var duplicateWindowSeconds: Int
        /// JetStream's `max_msgs_per_subject` for a stream ferry creates; nil: no limit.
        public var maximumMessagesPerSubject: Int?
        public var format: EventJSONWriter.Format
        /// An empty message after each delete, on its (keyed) subject.
        public var tombstones: Bool
        let template: NATSSubject

        public init(name: String, pipeline: String, url: String, password: String?, stream: String, subject: String,
                    streamSubjects: [String]? = nil, duplicateWindowSeconds: Int, maximumMessagesPerSubject: Int? = nil,
                    format: EventJSONWriter.Format = .debezium, tombstones: Bool = false) throws {
            guard let components = URLComponents(string: url), components.scheme == "nats", let host = components.host, !host.isEmpty else {
                throw FerryError(code: .configInvalid, message: "'\(Secrets.redactedURL(url))' is not a NATS URL", fix: "use nats://[user@]host[:port]")
            }
            self.name = name
            self.pipeline = pipeline
            self.host = host
            self.port = components.port ?? 4222
            self.user = components.user
            self.password = password ?? components.password
            do {
                template = try NATSSubject(template: subject)
            } catch {
                throw FerryError(code: .configInvalid, message: error.description, fix: "e.g. subject: \"ferry.{db}.{table}\" or \"ferry.{db}.{table}.{key}\"")
            }
            guard !tombstones || template.isKeyed else {
                throw FerryError(code: .configInvalid, message: "tombstones need a subject that names the row; '\(subject)' has no {key}",
                                 fix: "add {key} to the subject, e.g. \"ferry.{db}.{table}.{key}\", or drop tombstones")
            }
            // On a subject per table a per-subject limit would throw each table's history away.
            guard maximumMessagesPerSubject == nil || template.isKeyed else {
                throw FerryError(code: .configInvalid, message: "max_messages_per_subject needs a subject that names the row; '\(subject)' has no {key}",
                                 fix: "add {key} to the subject, e.g. \"ferry.{db}.{table}.{key}\", or set limits on a stream you create yourself")
            }
            self.stream = stream
            self.subject = subject
            self.streamSubjects = streamSubjects ?? [template.wildcard]
            self.duplicateWindowSeconds = duplicateWindowSeconds
            self.maximumMessagesPerSubject = maximumMessagesPerSubject
            self.format = format
            self.tombstones = tombstones
        }
    }

    public nonisolated let name: String
    let configuration: Configuration
    let logger: Logger
    private var connection: NATSConnection?
    private nonisolated let interrupter = ConnectionInterrupter()
    /// The position of the last transaction published whole (carried as `Ferry-Previous`).
    private var previous: SourcePosition?
    private let writer: EventJSONWriter
    /// Each table's subject: the text before and after its key token when the subject is keyed.
    private var subjects: [TableName: (prefix: [UInt8], suffix: [UInt8], whole: String)] = [:]

    public init(configuration: Configuration, logger: Logger) {
        self.name = configuration.name
        self.configuration = configuration
        self.logger = logger
        self.writer = EventJSONWriter(format: configuration.format)
    }

    private func connected() async throws -> NATSConnection {
        if let connection, !connection.isClosed { return connection }
        do {
            guard !interrupter.isFired else { throw CancellationError() }
            let interrupter = self.interrupter
            let connection = try await NATSConnection.connect(host: configuration.host, port: configuration.port, user: configuration.user,
                                                              password: configuration.password, connected: { interrupter.register($0) })
            self.connection = connection
            return connection
        } catch let error as NATSServerError {
            throw NATSSinkError.refused(sink: name, message: error.message)
        } catch {
            throw NATSSinkError.unavailable(sink: name, host: "\(configuration.host):\(configuration.port)", underlying: "\(error)")
        }
    }

    public func open() async throws -> SourcePosition? {
        let connection = try await connected()
        let info = try await api(connection, "$JS.API.STREAM.INFO.\(configuration.stream)", [:])
        var lastSequence = ((info["state"] as? [String: Any])?["last_seq"] as? NSNumber)?.intValue ?? 0
        if let wanted = configuration.maximumMessagesPerSubject, let config = info["config"] as? [String: Any],
           let existing = (config["max_msgs_per_subject"] as? NSNumber)?.intValue, existing != wanted {
            logger.warning("the JetStream stream exists with another max_msgs_per_subject; ferry sets it only on a stream it creates",
                           metadata: [LoggingKeys.sink: "\(name)", "ferry.stream": "\(configuration.stream)",
                                      "ferry.max_msgs_per_subject": "\(existing)", "ferry.wanted": "\(wanted)"])
        }
        if let error = info["error"] as? [String: Any] {
            guard (error["code"] as? NSNumber)?.intValue == 404 else { throw NATSSinkError.refused(sink: name, message: "\(error["description"] ?? error)") }
            var settings: [String: Any] = [
                "name": configuration.stream, "subjects": configuration.streamSubjects, "storage": "file",
                "duplicate_window": configuration.duplicateWindowSeconds * 1_000_000_000,
            ]
            if let perSubject = configuration.maximumMessagesPerSubject { settings["max_msgs_per_subject"] = perSubject }
            let created = try await api(connection, "$JS.API.STREAM.CREATE.\(configuration.stream)", settings)
            if let error = created["error"] as? [String: Any] {
                throw NATSSinkError.refused(sink: name, message: "cannot create stream \(configuration.stream): \(error["description"] ?? error)")
            }
            logger.notice("JetStream stream created", metadata: [LoggingKeys.sink: "\(name)", "ferry.stream": "\(configuration.stream)",
                                                                 "ferry.subjects": "\(configuration.streamSubjects.joined(separator: ","))"])
            lastSequence = 0
        }
        previous = nil
        // The newest message of this pipeline and sink says where the sink stands.
        var sequence = lastSequence
        while sequence > 0, lastSequence - sequence <= 1000 {
            let message = try await api(connection, "$JS.API.STREAM.MSG.GET.\(configuration.stream)", ["seq": sequence])
            guard let body = message["message"] as? [String: Any] else {
                // A message removed by a per-subject limit, an age limit or a purge leaves a gap.
                guard ((message["error"] as? [String: Any])?["code"] as? NSNumber)?.intValue == 404 else { break }
                sequence -= 1
                continue
            }
            let headers = (body["hdrs"] as? String).flatMap { Data(base64Encoded: $0) }.map { NATSDecoder.headers(Array($0)).fields } ?? [:]
            if headers["Ferry-Pipeline"] == configuration.pipeline, headers["Ferry-Sink"] == name {
                let position = headers["Ferry-Position"].flatMap(SourcePosition.init(persistedJSON:))
                let before = headers["Ferry-Previous"].flatMap(SourcePosition.init(persistedJSON:))
                previous = headers["Ferry-Last"] == "1" ? position : before
                return previous
            }
            sequence -= 1
        }
        return nil
    }

    public func close() async throws {
        await connection?.close()
        connection = nil
    }

    public nonisolated func interrupt() {
        interrupter.fire()
    }

    /// Bytes of messages written at a time while the rest of the batch is encoded, so that the
    /// server stores one piece while ferry encodes the next; acknowledgements are awaited at the end.
    static let pieceBytes = 256 << 10

    /// A publish's control line (`HPUB <subject> <reply> <sizes>`) must fit nats-server's default
    /// max_control_line of 4096 bytes.
    static let maximumSubjectBytes = 4000

    public func apply(_ transactions: [Transaction]) async throws {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var before = previous
        var connection: NATSConnection?
        var piece: [NATSConnection.Message] = []
        var pieceSize = 0
        var origins: [(event: ChangeEvent, subject: String)] = []
        var sent: [EventLoopFuture<[NATSConnection.Reply]>] = []
        for transaction in transactions {
            let messages = try outgoing(transaction.events)
            // The headers every message of the transaction shares, made once for it.
            var shared: [UInt8] = []
            NATSEncoder.headerLines([("Ferry-Pipeline", configuration.pipeline), ("Ferry-Sink", name),
                                     ("Ferry-Position", transaction.position.persistedJSON), ("Ferry-Previous", before?.persistedJSON ?? "")],
                                    into: &shared)
            for (index, message) in messages.enumerated() {
                let event = message.event
                var payload: [UInt8] = []
                var id = event.stableID
                if message.tombstone {
                    id += ".tombstone"
                } else {
                    writer.write(event, processedAtMillis: now, into: &payload)
                    payload.removeLast()
                }
                let headerBlock = NATSEncoder.headerBlock([("Nats-Msg-Id", id)], shared: shared,
                                                          [("Ferry-Last", index == messages.count - 1 ? "1" : "0")])
                // The server ends the connection on a message over its limits: such a change is
                // refused here, with its table and position, instead of failing the batch for ever.
                if message.subject.utf8.count > Self.maximumSubjectBytes {
                    throw NATSSinkError.rejected(sink: name, table: event.table, position: event.source.position, code: 10054,
                                                 message: "the subject is \(message.subject.utf8.count) bytes (a long key); the server's control lines take at most 4096 (max_control_line)")
                }
                if connection == nil { connection = try await connected() }
                if let limit = connection?.maximumPayload, payload.count + headerBlock.count > limit {
                    throw NATSSinkError.rejected(sink: name, table: event.table, position: event.source.position, code: 10054,
                                                 message: "the change is \(payload.count + headerBlock.count) bytes as a message; the server takes at most \(limit) (max_payload)")
                }
                pieceSize += payload.count + headerBlock.count
                piece.append(NATSConnection.Message(subject: message.subject, headerBlock: headerBlock, payload: payload))
                origins.append((event, message.subject))
                if pieceSize >= Self.pieceBytes, let connection {
                    sent.append(try await publish(piece, on: connection))
                    piece.removeAll(keepingCapacity: true)
                    pieceSize = 0
                }
            }
            before = transaction.position
        }
        guard let connection else {
            previous = before
            return
        }
        if !piece.isEmpty { sent.append(try await publish(piece, on: connection)) }
        var replies: [NATSConnection.Reply] = []
        replies.reserveCapacity(origins.count)
        for acknowledgements in sent {
            do {
                replies += try await acknowledgements.get()
            } catch {
                throw lostConnection(error)
            }
        }
        for (reply, (event, subject)) in zip(replies, origins) {
            if reply.status == 503 {
                throw NATSSinkError.noStream(sink: name, subject: subject, stream: configuration.stream)
            }
            // `{"stream":"S","seq":N}` (with `"duplicate":true` for a replay): checked without a JSON parser,
            // which cost more than the publish; anything else is parsed for its error.
            if Self.isAck(reply.payload) { continue }
            let ack = (try? JSONSerialization.jsonObject(with: Data(reply.payload))) as? [String: Any] ?? [:]
            if let error = ack["error"] as? [String: Any] {
                let code = (error["code"] as? NSNumber)?.intValue ?? 0
                throw NATSSinkError.rejected(sink: name, table: event.table, position: event.source.position, code: code,
                                             message: "\(error["description"] ?? error)")
            }
            guard ack["seq"] != nil else {
                throw NATSSinkError.rejected(sink: name, table: event.table, position: event.source.position, code: 0,
                                             message: "no JetStream acknowledgement: \(String(decoding: reply.payload.prefix(200), as: UTF8.self))")
            }
        }
        previous = before
    }

    /// Writes one piece; its acknowledgements arrive through the future.
    private func publish(_ messages: [NATSConnection.Message], on connection: NATSConnection) async throws -> EventLoopFuture<[NATSConnection.Reply]> {
        do {
            return try await connection.publish(messages)
        } catch {
            throw lostConnection(error)
        }
    }

    private func lostConnection(_ error: any Error) -> NATSSinkError {
        connection = nil
        if let refused = error as? NATSServerError { return .refused(sink: name, message: refused.message) }
        return .unavailable(sink: name, host: "\(configuration.host):\(configuration.port)", underlying: "\(error)")
    }

    static let sequenceField = Array("\"seq\":".utf8)
    static let errorField = Array("\"error\"".utf8)

    /// A JetStream publish acknowledgement without an error.
    static func isAck(_ payload: [UInt8]) -> Bool {
        func contains(_ needle: [UInt8]) -> Bool {
            guard payload.count >= needle.count else { return false }
            return (0...(payload.count - needle.count)).contains { start in payload[start..<(start + needle.count)].elementsEqual(needle) }
        }
        return contains(sequenceField) && !contains(errorField)
    }

    /// One message: a change on its subject, or the tombstone that follows a delete.
    struct Outgoing {
        var event: ChangeEvent
        var subject: String
        var tombstone = false
    }

    /// The messages of a transaction's row changes. On a keyed subject an update that changed the
    /// key becomes a delete under the old key and a create under the new one (ids `.1` and `.2`,
    /// as a rule's split), so the old key's subject does not keep the row's last state; with
    /// tombstones every delete is followed by an empty message on its subject.
    func outgoing(_ events: [ChangeEvent]) throws -> [Outgoing] {
        var messages: [Outgoing] = []
        messages.reserveCapacity(events.count)
        for event in events where event.operation != .ddl {
            guard configuration.template.isKeyed else {
                messages.append(Outgoing(event: event, subject: subject(for: event.table)))
                continue
            }
            // An update's after image may leave its unchanged key out (binlog_row_image=MINIMAL).
            let before = try event.before.map { try subject(for: event, row: $0) }
            let after = try event.after.map { try subject(for: event, row: event.before.map($0.completed(from:)) ?? $0) }
            if event.operation == .update, let before, let after, before != after {
                let (removal, arrival) = event.splitIntoRemovalAndArrival
                messages.append(Outgoing(event: removal, subject: before))
                if configuration.tombstones { messages.append(Outgoing(event: removal, subject: before, tombstone: true)) }
                messages.append(Outgoing(event: arrival, subject: after))
                continue
            }
            guard let subject = after ?? before else { continue }
            messages.append(Outgoing(event: event, subject: subject))
            if event.operation == .delete, configuration.tombstones { messages.append(Outgoing(event: event, subject: subject, tombstone: true)) }
        }
        return messages
    }

    /// The subject of a table's changes, made once per table (`replacingOccurrences` per message
    /// cost a fifth of the sink's time).
    func subject(for table: TableName) -> String {
        tableSubject(table).whole
    }

    /// The subject of one row of a keyed template.
    func subject(for event: ChangeEvent, row: Row) throws -> String {
        guard let key = event.schema?.primaryKey, !key.isEmpty else {
            throw NATSSinkError.noKey(sink: name, table: event.table, position: event.source.position, subject: configuration.subject)
        }
        let parts = tableSubject(event.table)
        var subject = parts.prefix
        NATSSubject.appendKey(row, key: key, to: &subject)
        subject += parts.suffix
        return String(decoding: subject, as: UTF8.self)
    }

    private func tableSubject(_ table: TableName) -> (prefix: [UInt8], suffix: [UInt8], whole: String) {
        if let subject = subjects[table] { return subject }
        let (prefix, suffix) = configuration.template.tableParts(table)
        let subject = (prefix, suffix, String(decoding: prefix + suffix, as: UTF8.self))
        subjects[table] = subject
        return subject
    }

    private func api(_ connection: NATSConnection, _ subject: String, _ body: [String: Any]) async throws -> [String: Any] {
        let reply: NATSConnection.Reply
        do {
            reply = try await connection.request(subject, Array(try JSONSerialization.data(withJSONObject: body)))
        } catch {
            self.connection = nil
            throw NATSSinkError.unavailable(sink: name, host: "\(configuration.host):\(configuration.port)", underlying: "\(error)")
        }
        if reply.status == 503 {
            throw NATSSinkError.refused(sink: name, message: "JetStream is not enabled on the server (no responders for \(subject))")
        }
        return (try? JSONSerialization.jsonObject(with: Data(reply.payload))) as? [String: Any] ?? [:]
    }
}

enum NATSSinkError: ClassifiedError, FerryErrorConvertible, CustomStringConvertible {
    case unavailable(sink: String, host: String, underlying: String)
    case refused(sink: String, message: String)
    case noStream(sink: String, subject: String, stream: String)
    case rejected(sink: String, table: TableName, position: SourcePosition, code: Int, message: String)
    case noKey(sink: String, table: TableName, position: SourcePosition, subject: String)

    var isTransient: Bool {
        switch self {
        case .unavailable: return true
        case .rejected(_, _, _, let code, _): return code == 503 || code == 429 || code == 0
        case .refused, .noStream, .noKey: return false
        }
    }


    var ferryError: FerryError {
        switch self {
        case .unavailable(let sink, let host, let underlying):
            return FerryError(code: .sinkNATSUnavailable, message: "NATS sink \(sink): cannot reach \(host): \(underlying)",
                              fix: "check the host and port in the sink's url and that nats-server runs", disposition: .retry)
        case .refused(let sink, let message):
            let auth = message.lowercased().contains("authorization")
            return FerryError(code: auth ? .sinkNATSAuth : .sinkNATSRefused, message: "NATS sink \(sink): \(message)",
                              fix: auth ? "check the user in the sink's url and its password" : "start nats-server with JetStream (-js)")
        case .noStream(let sink, let subject, let stream):
            return FerryError(code: .sinkNATSNoStream, message: "NATS sink \(sink): no JetStream stream takes subject \(subject)",
                              fix: "add the subject to stream \(stream)'s subjects, or set the sink's stream_subjects")
        case .rejected(let sink, let table, let position, let code, let message):
            return FerryError(code: .sinkNATSRejected, message: "NATS sink \(sink): JetStream refused a message (\(code)): \(message)",
                              context: [("table", table.description), ("position", position.place)],
                              fix: message.contains("max_control_line") ? "give the table a shorter key (mapping.<table>.key), or drop {key} from the subject"
                                  : code == 10054 || message.contains("maximum") ? "raise the server's max_payload, or exclude the table's large columns" : nil)
        case .noKey(let sink, let table, let position, let subject):
            return FerryError(code: .sinkNATSRejected, message: "NATS sink \(sink): the subject \(subject) names the row by {key}, and table \(table) has no key",
                              context: [("table", table.description), ("position", position.place)],
                              fix: "give the table a key with mapping.\(table).key on the pipeline, or exclude it from this sink")
        }
    }
}

extension NATSSink {
    /// The keys of a `type: nats` sink (besides `type`).
    public static let settings: [SinkSetting] = [
        SinkSetting("url", .text, required: true, doc: "nats://[USER@]HOST:4222"),
        .password(),
        SinkSetting("stream", .text, default: "FERRY", doc: "the JetStream stream; created when missing"),
        SinkSetting("subject", .text, default: "ferry.{db}.{table}", doc: "the subject template; {db}, {table} and {key} (the row's key as one token)"),
        SinkSetting("stream_subjects", .list, doc: "the subjects of a stream ferry creates; default: the template with * for each placeholder"),
        SinkSetting("duplicate_window_seconds", .integer, default: "120", doc: "JetStream's dedupe window for a stream ferry creates"),
        SinkSetting("max_messages_per_subject", .integer, doc: "JetStream's max_msgs_per_subject for a stream ferry creates (1 with {key}: the latest message of each row)"),
        SinkSetting("format", .text, default: "debezium", doc: "debezium (the envelope) or debezium-schema (Kafka Connect's schema and payload)"),
        SinkSetting("tombstones", .boolean, default: "false", doc: "true to follow each delete with an empty message on its subject (needs {key})"),
    ]
}
