import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceLifecycle

/// `/api/v1`: read pipelines, steer them, read the audit log, the cluster and the redacted configuration.
/// The shapes are in `OpenAPIDocument`, which a test checks against these routes.
struct APIRoutes {
    let backend: any ControlBackend

    func add(to router: Router<ControlContext>) {
        let api = router.group("api/v1")
        api.get("openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: OpenAPIDocument.json)))
        }
        api.get("pipelines") { _, context in
            _ = try context.require(.viewer)
            return try JSONBody.response(PipelineList(pipelines: await backend.pipelines()))
        }
        api.get("pipelines/:name") { _, context in
            _ = try context.require(.viewer)
            return try JSONBody.response(try await pipeline(context))
        }
        for action in ["pause", "resume", "restart"] {
            api.post("pipelines/:name/\(action)") { _, context in
                let token = try context.require(.operator)
                let name = try await pipeline(context).name
                try await translating {
                    switch action {
                    case "pause": try await backend.pause(pipeline: name, actor: token.name)
                    case "resume": try await backend.resume(pipeline: name, actor: token.name)
                    default: try await backend.restart(pipeline: name, actor: token.name)
                    }
                }
                return try JSONBody.response(try await pipeline(context), status: .accepted)
            }
        }
        api.post("pipelines/:name/snapshot") { request, context in
            let token = try context.require(.operator)
            let name = try await pipeline(context).name
            let body = try await decode(SnapshotRequest.self, request, context, emptyAs: SnapshotRequest(tables: []))
            let tables = try await translating { try await backend.snapshot(pipeline: name, tables: body.tables ?? [], actor: token.name) }
            return try JSONBody.response(SnapshotAccepted(pipeline: name, tables: tables), status: .accepted)
        }
        api.post("pipelines/:name/sinks/:sink/rewind") { request, context in
            let token = try context.require(.admin)
            let view = try await pipeline(context)
            let sink = try context.pathParameter("sink")
            guard view.sinks.contains(where: { $0.name == sink }) else {
                throw ControlError(.notFound, "pipeline \(view.name) has no sink \(sink); its sinks: \(view.sinks.map(\.name).joined(separator: ", "))")
            }
            let body = try await decode(RewindRequest.self, request, context, emptyAs: nil)
            try await translating { try await backend.rewind(pipeline: view.name, sink: sink, position: body.position, actor: token.name) }
            return try JSONBody.response(RewindAccepted(pipeline: view.name, sink: sink, position: body.position), status: .accepted)
        }
        api.post("reload") { _, context in
            let token = try context.require(.operator)
            let summary = try await translating { try await backend.reload(actor: token.name) }
            return try JSONBody.response(ReloadDone(summary: summary), status: .ok)
        }
        api.get("audit") { request, context in
            _ = try context.require(.viewer)
            let pipeline = request.uri.queryParameters.get("pipeline")
            if let pipeline, !(await backend.pipelines()).contains(where: { $0.name == pipeline }) {
                throw ControlError(.notFound, "no pipeline named \(pipeline)")
            }
            var limit = 100
            if let text = request.uri.queryParameters.get("limit") {
                guard let number = Int(text), (1...1000).contains(number) else {
                    throw ControlError(.badRequest, "limit must be a whole number from 1 to 1000, not \(text)")
                }
                limit = number
            }
            return try JSONBody.response(AuditList(entries: try await backend.auditLog(pipeline: pipeline, limit: limit)))
        }
        api.get("cluster") { _, context in
            _ = try context.require(.viewer)
            guard let cluster = try await backend.cluster() else {
                throw ControlError(.notFound, "this ferry runs alone: its configuration has no cluster: section")
            }
            return try JSONBody.response(cluster)
        }
        api.get("config") { _, context in
            _ = try context.require(.admin)
            return Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: backend.redactedConfiguration())))
        }
        api.get("events") { _, context in
            _ = try context.require(.viewer)
            return eventStream()
        }
    }

    /// The pipeline named in the path, or 404.
    func pipeline(_ context: ControlContext) async throws -> PipelineView {
        let name = try context.pathParameter("name")
        let pipelines = await backend.pipelines()
        guard let view = pipelines.first(where: { $0.name == name }) else {
            throw ControlError(.notFound, "no pipeline named \(name); pipelines: \(pipelines.map(\.name).joined(separator: ", "))")
        }
        return view
    }

    /// Server-sent events: every pipeline's figures once a second. A stream ends after a minute
    /// (browsers reconnect by themselves) and at shutdown, so it never holds the server up.
    func eventStream() -> Response {
        let backend = self.backend
        let body = ResponseBody { writer in
            let encoder = JSONBody.encoder()
            try await writer.write(ByteBuffer(string: "retry: 1000\n\n"))
            for _ in 0..<60 {
                if Task.isShuttingDownGracefully || Task.isCancelled { break }
                let data = try encoder.encode(PipelineList(pipelines: await backend.pipelines()))
                var buffer = ByteBuffer(string: "event: pipelines\ndata: ")
                buffer.writeBytes(data)
                buffer.writeString("\n\n")
                try await writer.write(buffer)
                try? await Task.sleep(for: .seconds(1))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"], body: body)
    }

    /// A JSON body of `type`; `emptyAs` for an empty body (nil: the body is required).
    func decode<T: Decodable & ExampleBody>(_ type: T.Type, _ request: Request, _ context: ControlContext, emptyAs empty: T?) async throws -> T {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: 1 << 20)
        } catch {
            throw ControlError(.contentTooLarge, "the request body is larger than 1 MiB")
        }
        if buffer.readableBytes == 0, let empty { return empty }
        let data = Data(buffer.readableBytesView)
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ControlError(.badRequest, "the body is not a JSON object (expected \(T.example))")
        }
        if let unknown = object.keys.sorted().first(where: { !T.fields.contains($0) }) {
            throw ControlError(.badRequest, "the body has an unknown field \"\(unknown)\" (expected \(T.example))")
        }
        if let null = object.keys.sorted().first(where: { object[$0] is NSNull }) {
            throw ControlError(.badRequest, "\"\(null)\" is null; leave it out instead (expected \(T.example))")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do {
            return try decoder.decode(T.self, from: data)
        } catch {
            throw ControlError(.badRequest, "the body is not valid: \(Self.describe(error)) (expected \(T.example))")
        }
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): return "\"\(key.stringValue)\" is missing"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            return "\(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)"
        case DecodingError.dataCorrupted: return "not JSON"
        default: return "\(error)"
        }
    }

    /// The backend's refusals as 4xx answers.
    func translating<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let refused as ControlRequestError {
            switch refused.kind {
            case .badRequest: throw ControlError(.badRequest, refused.message)
            case .notFound: throw ControlError(.notFound, refused.message)
            case .conflict: throw ControlError(.conflict, refused.message)
            }
        }
    }
}

/// 405, with the methods it takes, for a request to an API path by a method the path does not
/// take (the router alone would answer 404).
struct MethodCheck: RouterMiddleware {
    typealias Context = ControlContext

    static let routes: [(pattern: [String], methods: [HTTPRequest.Method])] = [
        (["api", "v1", "openapi.json"], [.get]), (["api", "v1", "pipelines"], [.get]), (["api", "v1", "pipelines", "*"], [.get]),
        (["api", "v1", "pipelines", "*", "pause"], [.post]), (["api", "v1", "pipelines", "*", "resume"], [.post]),
        (["api", "v1", "pipelines", "*", "restart"], [.post]), (["api", "v1", "pipelines", "*", "snapshot"], [.post]),
        (["api", "v1", "pipelines", "*", "sinks", "*", "rewind"], [.post]), (["api", "v1", "audit"], [.get]),
        (["api", "v1", "config"], [.get]), (["api", "v1", "events"], [.get]), (["api", "v1", "reload"], [.post]), (["api", "v1", "cluster"], [.get]),
    ]

    static func allowed(_ path: String) -> [HTTPRequest.Method]? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        return routes.first { route in
            route.pattern.count == parts.count && zip(route.pattern, parts).allSatisfy { $0 == "*" || $0 == $1 }
        }?.methods
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let methods = Self.allowed(request.uri.path), !methods.contains(request.method) {
            let allow = methods.map(\.rawValue).joined(separator: ", ")
            throw ControlError(.methodNotAllowed, "\(request.uri.path) takes \(allow), not \(request.method.rawValue)", allow: allow)
        }
        return try await next(request, context)
    }
}

/// A request body: its fields (others are refused) and what it should look like, for errors.
protocol ExampleBody {
    static var fields: Set<String> { get }
    static var example: String { get }
}

struct PipelineList: Codable { var pipelines: [PipelineView] }
struct AuditList: Codable { var entries: [AuditEntryView] }
struct SnapshotRequest: Decodable, ExampleBody {
    var tables: [String]?
    static var fields: Set<String> { ["tables"] }
    static var example: String { #"{"tables": ["shop.orders"]}"# }
}
struct SnapshotAccepted: Encodable { var pipeline: String; var tables: [String] }
struct RewindRequest: Decodable, ExampleBody {
    var position: String
    static var fields: Set<String> { ["position"] }
    static var example: String { #"{"position": "mariadb-bin.000042:4"}"# }
}
struct RewindAccepted: Encodable { var pipeline: String; var sink: String; var position: String }
struct ReloadDone: Encodable { var summary: String }
