import AsyncHTTPClient
import Crypto
import FerryCore
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// An HTTP endpoint as a target: each batch is POSTed as one JSON document of events (in source
/// order, each with its stable id), signed with HMAC-SHA256 when a secret is set. 2xx is success;
/// 408, 429 and 5xx, timeouts and lost connections are retried with backoff; any other answer is a
/// rejection (stop, or dead letters). Delivery is at least once: a receiver that keeps the ids it
/// has seen gets every change exactly once.
///
/// Addresses on the machine's own networks — loopback, private, link-local (cloud metadata) — are
/// refused unless `allow_private` is set, checked on the addresses the host resolves to before
/// every request; redirects are not followed.
public actor WebhookSink: SinkSession {
    public struct Configuration: Sendable {
        public var name: String
        public var pipeline: String
        public var url: String
        public var secret: String?
        public var headers: [(String, String)]
        public var timeoutSeconds: Int
        /// Most events in one POST; a larger batch goes out as several POSTs, in order.
        public var maximumEvents: Int
        public var allowPrivate: Bool
        public var format: EventJSONWriter.Format

        public init(name: String, pipeline: String, url: String, secret: String? = nil, headers: [(String, String)] = [], timeoutSeconds: Int,
                    maximumEvents: Int, allowPrivate: Bool, format: EventJSONWriter.Format = .debezium) throws {
            guard let components = URLComponents(string: url), let scheme = components.scheme, ["http", "https"].contains(scheme),
                  let host = components.host, !host.isEmpty else {
                throw FerryError(code: .configInvalid, message: "'\(Secrets.redactedURL(url))' is not an http(s) URL", fix: "use https://host/path")
            }
            self.name = name
            self.pipeline = pipeline
            self.url = url
            self.secret = secret
            self.headers = headers
            self.timeoutSeconds = timeoutSeconds
            self.maximumEvents = maximumEvents
            self.allowPrivate = allowPrivate
            self.format = format
        }

        var host: String { URLComponents(string: url)?.host?.trimmingCharacters(in: CharacterSet(charactersIn: "[]")) ?? "" }
    }

    public nonisolated let name: String
    let configuration: Configuration
    let logger: Logger
    private var client: HTTPClient?
    private var checked: (at: ContinuousClock.Instant, addresses: [String])?
    /// The checked address the HTTP client connects to, so a resolver that answers differently
    /// the second time (DNS rebinding) cannot send the request elsewhere.
    private var pinned: String?
    private let writer: EventJSONWriter

    public init(configuration: Configuration, logger: Logger) {
        self.name = configuration.name
        self.configuration = configuration
        self.logger = logger
        self.writer = EventJSONWriter(format: configuration.format)
    }

    private func http() -> HTTPClient {
        if let client { return client }
        var settings = HTTPClient.Configuration(redirectConfiguration: .disallow,
                                                timeout: .init(connect: .seconds(Int64(configuration.timeoutSeconds)),
                                                               read: .seconds(Int64(configuration.timeoutSeconds))))
        settings.decompression = .disabled
        if let pinned { settings.dnsOverride = [configuration.host: pinned] }
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: settings)
        self.client = client
        return client
    }

    /// The endpoint's addresses, refused when not public (unless allowed); re-resolved every 30 s.
    private func checkAddress() async throws {
        if let checked, ContinuousClock.now - checked.at < .seconds(30) { return }
        let addresses = await AddressPolicy.resolve(configuration.host)
        guard !addresses.isEmpty else {
            throw WebhookSinkError.unavailable(sink: name, message: "cannot resolve \(configuration.host)")
        }
        if !configuration.allowPrivate {
            for address in addresses {
                if let reason = AddressPolicy.refusal(address) {
                    throw WebhookSinkError.forbiddenAddress(sink: name, host: configuration.host, address: address, reason: reason)
                }
            }
        }
        // Connect to an address that was checked, never to what a second lookup returns.
        let pin = addresses.contains(pinned ?? "") ? pinned : addresses.first
        checked = (ContinuousClock.now, addresses)
        if pin != pinned {
            // State first, then the await: nothing read before it is written back after it.
            let replaced = client
            client = nil
            pinned = pin
            try? await replaced?.shutdown()
        }
    }

    /// Webhooks keep no position: the state store's is used, and receivers drop repeated ids.
    public func open() async throws -> SourcePosition? {
        try await checkAddress()
        return nil
    }

    public func close() async throws {
        try await client?.shutdown()
        client = nil
    }


    public func apply(_ transactions: [Transaction]) async throws {
        var events: [(event: ChangeEvent, count: Int)] = []
        for transaction in transactions {
            let rows = transaction.events.filter { $0.operation != .ddl }
            events += rows.map { ($0, rows.count) }
        }
        guard !events.isEmpty else { return }
        try await checkAddress()
        var start = 0
        while start < events.count {
            let end = min(events.count, start + configuration.maximumEvents)
            try await post(Self.body(Array(events[start..<end]), pipeline: configuration.pipeline, sink: name, writer: writer), first: events[start].event)
            start = end
        }
    }

    /// `{"pipeline":…,"sink":…,"events":[{"id":…,"txn_events":…,<Debezium envelope>},…]}`; with
    /// `format: debezium-schema` each event is `{"id":…,"txn_events":…,"schema":…,"payload":…}`.
    static func body(_ events: [(event: ChangeEvent, count: Int)], pipeline: String, sink: String, writer: EventJSONWriter) -> [UInt8] {
        var out: [UInt8] = []
        JSONBuffer.appendASCII("{\"pipeline\":", to: &out)
        JSONBuffer.appendString(pipeline, to: &out)
        JSONBuffer.appendASCII(",\"sink\":", to: &out)
        JSONBuffer.appendString(sink, to: &out)
        JSONBuffer.appendASCII(",\"events\":[", to: &out)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for (index, item) in events.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            var line: [UInt8] = []
            writer.write(item.event, processedAtMillis: now, into: &line)
            out.append(UInt8(ascii: "{"))
            JSONBuffer.appendASCII("\"id\":\"", to: &out)
            item.event.appendStableID(to: &out)
            JSONBuffer.appendASCII("\",\"txn_events\":", to: &out)
            JSONBuffer.appendInteger(Int64(item.count), to: &out)
            out.append(UInt8(ascii: ","))
            out.append(contentsOf: line.dropFirst().dropLast())
        }
        JSONBuffer.appendASCII("]}", to: &out)
        return out
    }

    /// `sha256=<hex HMAC-SHA256 of the body with the secret>`.
    static func signature(_ body: [UInt8], secret: String) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(secret.utf8)))
        return "sha256=" + code.map { String(format: "%02x", $0) }.joined()
    }

    private func post(_ body: [UInt8], first: ChangeEvent) async throws {
        var request = HTTPClientRequest(url: configuration.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "ferry")
        request.headers.add(name: "X-Ferry-Pipeline", value: configuration.pipeline)
        request.headers.add(name: "X-Ferry-Delivery", value: first.stableID)
        if let secret = configuration.secret { request.headers.add(name: "X-Ferry-Signature", value: Self.signature(body, secret: secret)) }
        for (name, value) in configuration.headers { request.headers.replaceOrAdd(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response: HTTPClientResponse
        do {
            response = try await http().execute(request, timeout: .seconds(Int64(configuration.timeoutSeconds)))
        } catch {
            throw WebhookSinkError.unavailable(sink: name, message: "\(error)")
        }
        let answer = try? await response.body.collect(upTo: 4096)
        let code = Int(response.status.code)
        guard !(200...299).contains(code) else { return }
        let text = answer.map { String(buffer: $0) } ?? ""
        if code == 408 || code == 429 || code >= 500 {
            throw WebhookSinkError.unavailable(sink: name, message: "the endpoint answered \(code) \(text.prefix(200))")
        }
        throw WebhookSinkError.rejected(sink: name, table: first.table, position: first.source.position, status: code, message: String(text.prefix(500)))
    }
}

enum WebhookSinkError: ClassifiedError, FerryErrorConvertible, CustomStringConvertible {
    case unavailable(sink: String, message: String)
    case forbiddenAddress(sink: String, host: String, address: String, reason: String)
    case rejected(sink: String, table: TableName, position: SourcePosition, status: Int, message: String)

    var isTransient: Bool {
        if case .unavailable = self { return true }
        return false
    }


    var ferryError: FerryError {
        switch self {
        case .unavailable(let sink, let message):
            return FerryError(code: .sinkWebhookUnavailable, message: "webhook sink \(sink): \(message)",
                              fix: "check the endpoint's URL and that it answers within timeout_seconds", disposition: .retry)
        case .forbiddenAddress(let sink, let host, let address, let reason):
            return FerryError(code: .sinkWebhookAddressRefused, message: "webhook sink \(sink): \(host) is \(address), \(reason)",
                              fix: "webhooks may not reach the machine's own networks or cloud metadata; set allow_private: true on the sink if this endpoint is meant")
        case .rejected(let sink, let table, let position, let status, let message):
            return FerryError(code: .sinkWebhookRejected, message: "webhook sink \(sink): the endpoint answered \(status)\(message.isEmpty ? "" : ": \(message)")",
                              context: [("table", table.description), ("position", position.place)],
                              fix: "the endpoint refused the batch for good (4xx); fix the endpoint, or use error_policy: dead-letter")
        }
    }
}

extension WebhookSink {
    /// The keys of a `type: webhook` sink (besides `type`).
    public static let settings: [SinkSetting] = [
        SinkSetting("url", .text, required: true, doc: "https://HOST/PATH that receives POSTed JSON batches"),
        SinkSetting("secret", .secret, doc: "signs each body: X-Ferry-Signature: sha256=<hex HMAC-SHA256>"),
        SinkSetting("headers", .mapping, doc: "extra request headers (values are redacted in /api/v1/config)"),
        SinkSetting("timeout_seconds", .integer, default: "10", doc: "connect and read timeout"),
        SinkSetting("max_events", .integer, default: "1000", doc: "most events per POST; a larger batch is several POSTs, in order"),
        SinkSetting("allow_private", .boolean, default: "false", doc: "true to reach loopback, private or link-local addresses"),
        SinkSetting("format", .text, default: "debezium", doc: "debezium (the envelope) or debezium-schema (Kafka Connect's schema and payload)"),
    ]
}
