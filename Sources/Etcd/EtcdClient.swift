import AsyncHTTPClient
import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOSSL

/// Where and how to reach an etcd cluster.
public struct EtcdConfiguration: Sendable {
    /// The members' client URLs (`http://host:2379`, `https://host:2379`); requests go to one
    /// and move to the next when it fails.
    public var endpoints: [String]
    public var user: String?
    public var password: String?
    /// PEM files: the CA that signed the members' certificates (else the system's roots), and a
    /// client certificate and key when the members ask for one (`--client-cert-auth`).
    public var caFile: String?
    public var certificateFile: String?
    public var keyFile: String?
    /// How long one endpoint gets to answer one request before the next endpoint is tried.
    public var attemptTimeout: Duration
    /// How long a request may take over all its attempts.
    public var requestTimeout: Duration
    /// A watch that hears nothing for this long reconnects (it resumes at the next revision).
    /// Longer than etcd's interval of progress notices (10 minutes by default), so a quiet watch
    /// reconnects knowing how far it is.
    public var watchIdleTimeout: Duration

    public init(endpoints: [String], user: String? = nil, password: String? = nil,
                caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil,
                attemptTimeout: Duration = .seconds(2), requestTimeout: Duration = .seconds(6),
                watchIdleTimeout: Duration = .seconds(660)) {
        self.endpoints = endpoints
        self.user = user
        self.password = password
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.attemptTimeout = attemptTimeout
        self.requestTimeout = requestTimeout
        self.watchIdleTimeout = watchIdleTimeout
    }
}

extension EtcdConfiguration: CustomStringConvertible {
    /// Endpoints and user; never the password.
    public var description: String {
        "etcd \(endpoints.joined(separator: ",")) as \(user ?? "(no user)")\(caFile == nil ? "" : " with TLS")"
    }
}

/// A client of etcd v3 through its JSON gateway (`/v3/...` on the members' client port).
///
/// We use the gateway rather than gRPC: no maintained Swift gRPC package is in our dependency set,
/// every etcd since 3.3 serves the gateway on the same port, and the few calls cluster mode needs
/// (range, put, delete, txn, leases, watch) map one to one onto it (docs/cluster.md).
///
/// Each request goes to the endpoint that last answered; a connection failure, a timeout or a
/// member without a leader moves it to the next endpoint until `requestTimeout`. A put or txn
/// whose answer was lost may therefore run twice: callers make them idempotent (a claim compares
/// the create revision, so its retry fails the comparison and reads back who owns the key).
/// Close with `shutdown()`.
public final class EtcdClient: Sendable {
    public let configuration: EtcdConfiguration
    private let endpoints: [String]
    private let unary: HTTPClient
    private let streaming: HTTPClient
    private let state = NIOLockedValueBox(SharedState())
    private let logger: Logger

    private struct SharedState {
        var ring: EndpointRing = EndpointRing(count: 1)
        var token: String?
    }

    public init(configuration: EtcdConfiguration, logger: Logger = Logger(label: "ferry.etcd")) throws {
        guard !configuration.endpoints.isEmpty else { throw EtcdError.configuration("no endpoints") }
        var parsed: [String] = []
        for endpoint in configuration.endpoints {
            var url = endpoint
            while url.hasSuffix("/") { url.removeLast() }
            guard url.hasPrefix("http://") || url.hasPrefix("https://"), url.count > 8 else {
                throw EtcdError.configuration("endpoint '\(endpoint)' is not an http:// or https:// URL of a member's client port")
            }
            parsed.append(url)
        }
        if (configuration.user == nil) != (configuration.password == nil) {
            throw EtcdError.configuration("user and password go together")
        }
        if (configuration.certificateFile == nil) != (configuration.keyFile == nil) {
            throw EtcdError.configuration("a client certificate needs its key, and a key its certificate")
        }
        self.configuration = configuration
        self.endpoints = parsed
        self.logger = logger
        var tls = TLSConfiguration.makeClientConfiguration()
        do {
            if let caFile = configuration.caFile { tls.trustRoots = .file(caFile) }
            if let certificateFile = configuration.certificateFile, let keyFile = configuration.keyFile {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
            }
        } catch {
            throw EtcdError.configuration("cannot read the TLS files: \(error)")
        }
        func client(readTimeout: Duration) -> HTTPClient {
            var settings = HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow,
                                                    timeout: .init(connect: timeAmount(configuration.attemptTimeout),
                                                                   read: timeAmount(readTimeout)))
            // The port also serves gRPC over HTTP/2; the gateway is reached over HTTP/1.1.
            settings.httpVersion = .http1Only
            settings.decompression = .disabled
            return HTTPClient(eventLoopGroupProvider: .singleton, configuration: settings)
        }
        unary = client(readTimeout: configuration.attemptTimeout)
        streaming = client(readTimeout: configuration.watchIdleTimeout)
        state.withLockedValue { $0.ring = EndpointRing(count: parsed.count) }
    }

    public func shutdown() async throws {
        var failure: (any Error)?
        do { try await unary.shutdown() } catch { failure = error }
        try await streaming.shutdown()
        if let failure { throw failure }
    }

    // MARK: Keys

    /// The key, or nil when it does not exist.
    public func get(_ key: String) async throws -> EtcdKeyValue? {
        try await range(key: Array(key.utf8), rangeEnd: nil).keyValues.first
    }

    /// Every key that starts with `prefix`, in key order, at one revision.
    public func get(prefix: String, limit: Int64 = 0) async throws -> EtcdRange {
        let key = Array(prefix.utf8)
        return try await range(key: key, rangeEnd: etcdPrefixEnd(key), limit: limit)
    }

    public func range(key: [UInt8], rangeEnd: [UInt8]?, limit: Int64 = 0, revision: Int64 = 0) async throws -> EtcdRange {
        let request = WireRangeRequest(key: WireBytes(key), range_end: rangeEnd.map(WireBytes.init),
                                       limit: limit == 0 ? nil : WireInt64(limit), revision: revision == 0 ? nil : WireInt64(revision))
        return try await call("range", "/v3/kv/range", request, as: WireRangeResponse.self).range
    }

    /// Writes `value` at `key` (bound to `lease` unless 0); returns the store's new revision.
    @discardableResult
    public func put(_ key: String, _ value: [UInt8], lease: Int64 = 0) async throws -> Int64 {
        let request = WirePutRequest(key: WireBytes(key), value: WireBytes(value), lease: lease == 0 ? nil : WireInt64(lease))
        return try await call("put", "/v3/kv/put", request, as: WirePutResponse.self).header?.revision?.value ?? 0
    }

    /// Deletes `key`, or every key under it when `prefix`; returns how many were deleted.
    @discardableResult
    public func delete(_ key: String, prefix: Bool = false) async throws -> Int64 {
        let bytes = Array(key.utf8)
        let request = WireDeleteRequest(key: WireBytes(bytes), range_end: prefix ? WireBytes(etcdPrefixEnd(bytes)) : nil)
        return try await call("delete", "/v3/kv/deleterange", request, as: WireDeleteResponse.self).deleted?.value ?? 0
    }

    /// Runs `success` when every comparison holds, else `failure`, atomically.
    public func txn(_ compare: [EtcdCompare], success: [EtcdOperation], failure: [EtcdOperation] = []) async throws -> EtcdTxnResult {
        let request = WireTxnRequest(compare: compare.map(WireCompare.init), success: success.map(WireRequestOp.init),
                                     failure: failure.map(WireRequestOp.init))
        let response = try await call("txn", "/v3/kv/txn", request, as: WireTxnResponse.self)
        return EtcdTxnResult(succeeded: response.succeeded ?? false, revision: response.header?.revision?.value ?? 0,
                             results: (response.responses ?? []).map(\.result))
    }

    // MARK: Leases

    public func grantLease(ttlSeconds: Int64) async throws -> EtcdLease {
        let response = try await call("lease grant", "/v3/lease/grant", WireLeaseGrantRequest(TTL: WireInt64(ttlSeconds)),
                                      as: WireLeaseGrantResponse.self)
        guard let id = response.ID?.value, id != 0, let ttl = response.TTL?.value else {
            throw EtcdError.malformedResponse(operation: "lease grant", endpoint: currentEndpoint,
                                              detail: response.error ?? "no lease ID in the answer")
        }
        return EtcdLease(id: id, ttlSeconds: ttl)
    }

    /// Renews the lease once; returns its new time to live in seconds.
    /// - Throws: `EtcdError.leaseExpired` when the lease no longer exists.
    public func keepAlive(lease id: Int64) async throws -> Int64 {
        let message = try await call("lease keep-alive", "/v3/lease/keepalive", WireLeaseID(ID: WireInt64(id)),
                                     as: WireKeepAliveMessage.self)
        if let error = message.error {
            throw EtcdError.server(operation: "lease keep-alive", endpoint: currentEndpoint,
                                   code: error.grpc_code ?? 2, message: error.message ?? "unknown error")
        }
        guard let ttl = message.result?.TTL?.value, ttl > 0 else { throw EtcdError.leaseExpired(id: id) }
        return ttl
    }

    /// Revokes the lease, deleting the keys bound to it; a lease already gone is not an error.
    public func revokeLease(_ id: Int64) async throws {
        do {
            _ = try await call("lease revoke", "/v3/lease/revoke", WireLeaseID(ID: WireInt64(id)), as: WirePutResponse.self)
        } catch EtcdError.server(_, _, let code, _) where code == 5 {
            return
        }
    }

    // MARK: Watch

    /// Calls `onEvents` with each batch of changes under `prefix` from revision `fromRevision`
    /// on (0: from now), in revision order, until the task is cancelled or `onEvents` throws.
    /// A lost connection or a silent one (`watchIdleTimeout`) reconnects to the next endpoint and
    /// resumes at the revision after the last one delivered, so no change is missed or repeated.
    /// - Throws: `EtcdError.compacted` when the revisions asked for are compacted away.
    public func watch(prefix: String, fromRevision: Int64,
                      _ onEvents: ([EtcdWatchEvent]) async throws -> Void) async throws {
        let key = Array(prefix.utf8)
        var cursor = WatchCursor(nextRevision: fromRevision)
        var failures = 0
        var reauthenticated = false
        while true {
            try Task.checkCancellation()
            let endpoint = currentEndpoint
            do {
                let token = try await token(at: endpoint)
                let create = WireWatchCreate(create_request: .init(
                    key: WireBytes(key), range_end: WireBytes(etcdPrefixEnd(key)),
                    start_revision: cursor.nextRevision == 0 ? nil : WireInt64(cursor.nextRevision), progress_notify: true))
                let response = try await streaming.execute(try request(endpoint, "/v3/watch", create, token: token),
                                                           timeout: timeAmount(configuration.attemptTimeout))
                guard response.status == .ok else {
                    let body = try await response.body.collect(upTo: 1 << 20)
                    try classify(operation: "watch", endpoint: endpoint, status: response.status, body: Data(body.readableBytesView))
                    throw EndpointFailure(text: "HTTP \(response.status.code)")
                }
                var lines = LineSplitter()
                for try await part in response.body {
                    for line in try lines.append(part) {
                        let message: WireWatchMessage
                        do {
                            message = try JSONDecoder().decode(WireWatchMessage.self, from: line)
                        } catch {
                            throw EtcdError.malformedResponse(operation: "watch", endpoint: endpoint, detail: "\(error)")
                        }
                        if let error = message.error {
                            try classifyStreamError(operation: "watch", endpoint: endpoint, error)
                        }
                        guard let result = message.result else { continue }
                        // A token the member no longer takes (expired there, or older than a change
                        // of users and roles) cancels the watch: fetch a new one and watch again,
                        // once; a refusal with a fresh token is the caller's to see.
                        if result.canceled == true, result.compact_revision == nil, let token, !reauthenticated,
                           isAuthFailure(result.cancel_reason) || result.cancel_reason?.contains("permission denied") == true {
                            reauthenticated = true
                            invalidate(token)
                            throw EndpointFailure(text: result.cancel_reason ?? "auth")
                        }
                        let events = try cursor.accept(result, endpoint: endpoint)
                        if result.created != true {
                            failures = 0
                            reauthenticated = false
                        }
                        if !events.isEmpty {
                            do {
                                try await onEvents(events)
                            } catch {
                                throw CallerFailure(error: error)
                            }
                        }
                    }
                }
                throw EndpointFailure(text: "the watch stream ended")
            } catch let failure as CallerFailure {
                throw failure.error
            } catch let error as EtcdError {
                throw error
            } catch {
                if Task.isCancelled { throw CancellationError() }
                failures += 1
                logger.info("etcd watch reconnects", metadata: ["endpoint": "\(endpoint)", "error": "\(describe(error))",
                                                                "next_revision": "\(cursor.nextRevision)"])
                rotate(awayFrom: endpoint)
                if failures >= endpoints.count {
                    try await Task.sleep(for: .milliseconds(min(1000, 50 << min(failures, 5))))
                }
            }
        }
    }

    // MARK: Requests

    private var currentEndpoint: String {
        endpoints[state.withLockedValue { $0.ring.preferred }]
    }

    private func rotate(awayFrom endpoint: String) {
        guard let index = endpoints.firstIndex(of: endpoint) else { return }
        state.withLockedValue { $0.ring.failed(index) }
    }

    /// One request, over the endpoints in turn until one answers or `requestTimeout` passes;
    /// its time, retries included, is the `ferry_etcd_request_seconds` histogram per operation.
    private func call<Response: Decodable>(_ operation: String, _ path: String, _ body: some Encodable,
                                           as type: Response.Type) async throws -> Response {
        let started = ContinuousClock.now
        defer {
            let elapsed = (ContinuousClock.now - started).components
            Timer(label: "ferry_etcd_request_seconds", dimensions: [("operation", operation)])
                .recordNanoseconds(elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000)
        }
        let deadline = ContinuousClock.now + configuration.requestTimeout
        var lastError = "no attempt"
        var failures = 0
        var reauthenticated = false
        while true {
            try Task.checkCancellation()
            let endpoint = currentEndpoint
            do {
                let token = try await token(at: endpoint)
                let bytes = try await post(endpoint, path, body, token: token, operation: operation)
                do {
                    // A keep-alive answers as a stream of one message; take the first line.
                    let first = bytes.firstIndex(of: UInt8(ascii: "\n")).map { bytes[..<$0] } ?? bytes[...]
                    return try JSONDecoder().decode(Response.self, from: Data(first))
                } catch {
                    throw EtcdError.malformedResponse(operation: operation, endpoint: endpoint, detail: "\(error)")
                }
            } catch let error as EtcdError {
                if case .server(_, _, let code, let message) = error, code == 16 || code == 3, isAuthFailure(message),
                   configuration.user != nil, !reauthenticated {
                    reauthenticated = true
                    invalidate(state.withLockedValue { $0.token })
                    continue
                }
                throw error
            } catch {
                if Task.isCancelled { throw CancellationError() }
                lastError = "\(endpoint): \(describe(error))"
                failures += 1
                rotate(awayFrom: endpoint)
                let left = deadline - ContinuousClock.now
                if left <= .zero {
                    throw EtcdError.unavailable(operation: operation, endpoints: endpoints, lastError: lastError)
                }
                if failures % endpoints.count == 0 {
                    try await Task.sleep(for: min(left, .milliseconds(min(500, 25 << min(failures, 5)))))
                }
            }
        }
    }

    /// Posts one request to one endpoint; returns the body of a successful answer.
    /// - Throws: `EtcdError` for an answer that settles the request, anything else for one that
    ///   should be tried at the next endpoint.
    private func post(_ endpoint: String, _ path: String, _ body: some Encodable, token: String?, operation: String) async throws -> Data {
        let response = try await unary.execute(try request(endpoint, path, body, token: token),
                                               timeout: timeAmount(configuration.attemptTimeout))
        let bytes = Data(try await response.body.collect(upTo: 64 << 20).readableBytesView)
        try classify(operation: operation, endpoint: endpoint, status: response.status, body: bytes)
        return bytes
    }

    private func request(_ endpoint: String, _ path: String, _ body: some Encodable, token: String?) throws -> HTTPClientRequest {
        var request = HTTPClientRequest(url: endpoint + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let token { request.headers.add(name: "Authorization", value: token) }
        request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(body)))
        return request
    }

    /// Throws when an answer is an error: `EtcdError.server` for a refusal, `EndpointFailure`
    /// for one another member may not give (no leader, overloaded, a proxy's 5xx).
    private func classify(operation: String, endpoint: String, status: HTTPResponseStatus, body: Data) throws {
        if status == .ok { return }
        if let error = try? JSONDecoder().decode(WireError.self, from: body), let code = error.code {
            let message = error.message ?? error.error ?? "HTTP \(status.code)"
            if isRetriable(code: code, message: message) { throw EndpointFailure(text: message) }
            throw EtcdError.server(operation: operation, endpoint: endpoint, code: code, message: message)
        }
        // A streamed call (keep-alive, watch) that fails before its first message.
        if let envelope = try? JSONDecoder().decode(WireStreamEnvelope.self, from: body), let error = envelope.error {
            try classifyStreamError(operation: operation, endpoint: endpoint, error)
        }
        let text = String(decoding: body.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if status.code >= 500 { throw EndpointFailure(text: "HTTP \(status.code) \(text)") }
        if text.contains("CommonName") {
            throw EtcdError.configuration("\(endpoint) refused the client certificate: it has a CommonName, which etcd's JSON gateway does not accept when auth is on; use a certificate without CN (the user comes from cluster.etcd.user)")
        }
        throw EtcdError.malformedResponse(operation: operation, endpoint: endpoint, detail: "HTTP \(status.code) \(text)")
    }

    private func classifyStreamError(operation: String, endpoint: String, _ error: WireStreamError) throws {
        let code = error.grpc_code ?? 2
        let message = error.message ?? "unknown error"
        if isAuthFailure(message) {
            invalidate(state.withLockedValue { $0.token })
            throw EndpointFailure(text: message)
        }
        if isRetriable(code: code, message: message) { throw EndpointFailure(text: message) }
        throw EtcdError.server(operation: operation, endpoint: endpoint, code: code, message: message)
    }

    /// Unavailable (no leader, leader changed, timed out), deadline exceeded, too many requests,
    /// and a gateway whose own connection to its member is closing (the member is stopping).
    private func isRetriable(code: Int, message: String) -> Bool {
        code == 14 || code == 4 || (code == 8 && message.contains("too many requests"))
            || (code == 1 && message.contains("client connection is closing"))
    }

    /// A refusal a new token cures: the token expired on that member, or users and roles changed
    /// since it was issued ("revision of auth store is old").
    private func isAuthFailure(_ message: String?) -> Bool {
        guard let message else { return false }
        return message.contains("auth token") || message.contains("Unauthenticated") || message.contains("auth store is old")
    }

    /// Forgets `token`, unless another caller already replaced it.
    private func invalidate(_ token: String?) {
        state.withLockedValue { if $0.token == token { $0.token = nil } }
    }

    /// The auth token for requests, fetched when there is none and again after a member stops
    /// taking it (a simple token expires on each member after five idle minutes there).
    private func token(at endpoint: String) async throws -> String? {
        guard let user = configuration.user, let password = configuration.password else { return nil }
        if let token = state.withLockedValue({ $0.token }) { return token }
        let bytes: Data
        do {
            bytes = try await post(endpoint, "/v3/auth/authenticate", WireAuthenticateRequest(name: user, password: password),
                                   token: nil, operation: "authenticate")
        } catch EtcdError.server(_, _, let code, let message) where code == 3 || code == 9 {
            throw EtcdError.authentication(endpoint: endpoint, user: user, message: message)
        }
        guard let token = (try? JSONDecoder().decode(WireAuthenticateResponse.self, from: bytes))?.token, !token.isEmpty else {
            throw EtcdError.malformedResponse(operation: "authenticate", endpoint: endpoint, detail: "no token in the answer")
        }
        state.withLockedValue { $0.token = token }
        return token
    }
}

/// A failure of one endpoint, not of the request: the next endpoint is tried.
private struct EndpointFailure: Error, CustomStringConvertible {
    var text: String
    var description: String { text }
}

/// An error thrown by a watch's caller, passed through untouched.
private struct CallerFailure: Error {
    var error: any Error
}

private func describe(_ error: any Error) -> String {
    if let error = error as? HTTPClientError { return "\(error)" }
    return String(describing: error)
}

func timeAmount(_ duration: Duration) -> TimeAmount {
    let (seconds, attoseconds) = duration.components
    return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
}
