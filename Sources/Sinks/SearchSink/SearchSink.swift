import AsyncHTTPClient
import FerryCore
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// Elasticsearch or OpenSearch as a target, through the bulk API (AsyncHTTPClient): a document
/// per row in an index per table (a template), `_id` from the key, and **external versioning from
/// the source position** (`version_type: external_gte`), so a replay never moves a document back
/// and the target needs no position of its own. An item refused with 429/503 sends the batch
/// again (the position does not pass it); an item refused for good (a mapping error, a document
/// too large) stops the pipeline naming table and position, or goes to the dead-letter sink.
public actor SearchSink: SinkSession {
    public struct Configuration: Sendable {
        public var name: String
        public var url: String
        /// `{db}` and `{table}`, lowercased. Default `{db}.{table}`.
        public var index: String
        public var username: String?
        public var password: String?
        public var timeoutSeconds: Int

        public init(name: String, url: String, index: String, password: String?, timeoutSeconds: Int = 30) throws {
            guard let components = URLComponents(string: url), let scheme = components.scheme, ["http", "https"].contains(scheme),
                  components.host?.isEmpty == false else {
                throw FerryError(code: .configInvalid, message: "'\(Secrets.redactedURL(url))' is not an http(s) URL", fix: "use https://[user@]host:9200")
            }
            var base = components
            base.user = nil
            base.password = nil
            base.path = components.path.hasSuffix("/") ? String(components.path.dropLast()) : components.path
            self.name = name
            self.url = base.string ?? url
            self.index = index
            self.username = components.user
            self.password = password ?? components.password
            self.timeoutSeconds = timeoutSeconds
        }
    }

    public nonisolated let name: String
    let configuration: Configuration
    let logger: Logger
    private var client: HTTPClient?

    public init(configuration: Configuration, logger: Logger) {
        self.name = configuration.name
        self.configuration = configuration
        self.logger = logger
    }

    private func http() -> HTTPClient {
        if let client { return client }
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: HTTPClient.Configuration(redirectConfiguration: .disallow))
        self.client = client
        return client
    }

    /// Versions make replays harmless, so the state store's position is enough.
    public func open() async throws -> SourcePosition? {
        _ = try await send(.GET, "/", body: nil)
        return nil
    }

    public func close() async throws {
        try await client?.shutdown()
        client = nil
    }


    public func apply(_ transactions: [Transaction]) async throws {
        let actions: [SearchBulk.Action]
        do {
            actions = try SearchBulk.actions(transactions, index: configuration.index)
        } catch let error as SearchBulkError {
            throw SearchSinkError.refused(sink: name, message: error.message)
        }
        guard !actions.isEmpty else { return }
        let (status, response) = try await send(.POST, "/_bulk", body: SearchBulk.body(actions))
        guard (200...299).contains(status) else {
            if status == 429 || status >= 500 { throw SearchSinkError.unavailable(sink: name, message: "the bulk request was answered \(status)") }
            throw SearchSinkError.refused(sink: name, message: "the bulk request was answered \(status): \(String(describing: response["error"] ?? ""))")
        }
        let outcomes: [SearchBulk.Outcome]
        do {
            outcomes = try SearchBulk.outcomes(response, count: actions.count)
        } catch let error as SearchBulkError {
            throw SearchSinkError.unavailable(sink: name, message: error.message)
        }
        // Retries first: the whole batch goes again, and every item is harmless to repeat.
        if let retry = zip(outcomes, actions).first(where: { if case .retry = $0.0 { return true }; return false }), case .retry(let code, let reason) = retry.0 {
            throw SearchSinkError.unavailable(sink: name, message: "\(retry.1.index)/\(retry.1.id): \(code) \(reason)")
        }
        if let rejected = zip(outcomes, actions).first(where: { if case .rejected = $0.0 { return true }; return false }),
           case .rejected(let code, let reason) = rejected.0 {
            throw SearchSinkError.rejected(sink: name, table: rejected.1.event.table, position: rejected.1.event.source.position,
                                           document: "\(rejected.1.index)/\(rejected.1.id)", status: code, reason: reason)
        }
    }

    private func send(_ method: HTTPMethod, _ path: String, body: [UInt8]?) async throws -> (Int, [String: Any]) {
        var request = HTTPClientRequest(url: configuration.url + path)
        request.method = method
        if let body {
            request.headers.add(name: "Content-Type", value: "application/x-ndjson")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        if let username = configuration.username {
            let credentials = Data("\(username):\(configuration.password ?? "")".utf8).base64EncodedString()
            request.headers.add(name: "Authorization", value: "Basic \(credentials)")
        }
        do {
            let response = try await http().execute(request, timeout: .seconds(Int64(configuration.timeoutSeconds)))
            let bytes = try await response.body.collect(upTo: 256 << 20)
            if response.status == .unauthorized || response.status == .forbidden {
                throw SearchSinkError.auth(sink: name, status: Int(response.status.code))
            }
            let json = (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView))) as? [String: Any] ?? [:]
            return (Int(response.status.code), json)
        } catch let error as SearchSinkError {
            throw error
        } catch {
            throw SearchSinkError.unavailable(sink: name, message: "\(error)")
        }
    }
}

enum SearchSinkError: ClassifiedError, FerryErrorConvertible, CustomStringConvertible {
    case unavailable(sink: String, message: String)
    case auth(sink: String, status: Int)
    case refused(sink: String, message: String)
    case rejected(sink: String, table: TableName, position: SourcePosition, document: String, status: Int, reason: String)

    var isTransient: Bool {
        if case .unavailable = self { return true }
        return false
    }


    var ferryError: FerryError {
        switch self {
        case .unavailable(let sink, let message):
            return FerryError(code: .sinkSearchUnavailable, message: "search sink \(sink): \(message)",
                              fix: "check the url and that the cluster is up; overloaded clusters (429) are retried", disposition: .retry)
        case .auth(let sink, let status):
            return FerryError(code: .sinkSearchAuth, message: "search sink \(sink): the cluster answered \(status)",
                              fix: "check the user in the sink's url and its password, and that the user may write the indexes")
        case .refused(let sink, let message):
            return FerryError(code: .sinkSearchRefused, message: "search sink \(sink): \(message)")
        case .rejected(let sink, let table, let position, let document, let status, let reason):
            return FerryError(code: .sinkSearchRejected, message: "search sink \(sink): document \(document) refused (\(status)): \(reason)",
                              context: [("table", table.description), ("position", position.place)],
                              fix: "a mapping conflict or a document too large: fix the index mapping, or use error_policy: dead-letter")
        }
    }
}

extension SearchSink {
    /// The keys of a `type: elasticsearch` sink (besides `type`).
    public static let settings: [SinkSetting] = [
        SinkSetting("url", .text, required: true, doc: "https://[USER@]HOST:9200"),
        .password(),
        SinkSetting("index", .text, default: "{db}.{table}", doc: "the index template; {db} and {table}"),
    ]
}
