import FerryCore
import Foundation
import HTTPTypes
import Hummingbird
import Mustache
import NIOCore

/// The web page: an overview of pipelines, a page per pipeline, and sign-in. Pages are rendered
/// here; the script only refreshes figures from the event stream and sends the action buttons.
struct WebPages {
    let backend: any ControlBackend
    let throttle: LoginThrottle
    let secureCookies: Bool
    let library: MustacheLibrary

    init(backend: any ControlBackend, throttle: LoginThrottle, secureCookies: Bool) throws {
        self.backend = backend
        self.throttle = throttle
        self.secureCookies = secureCookies
        library = MustacheLibrary(templates: [
            "layout": try MustacheTemplate(string: Templates.layout),
            "login": try MustacheTemplate(string: Templates.login),
            "overview": try MustacheTemplate(string: Templates.overview),
            "pipeline": try MustacheTemplate(string: Templates.pipeline),
        ])
    }

    func add(to router: Router<ControlContext>) {
        router.get("assets/ferry.js") { _, _ in Self.asset(Assets.script, type: "text/javascript; charset=utf-8") }
        router.get("assets/ferry.css") { _, _ in Self.asset(Assets.style, type: "text/css; charset=utf-8") }
        router.get("login") { _, _ in page("Sign in", "login", [:], token: nil) }
        router.post("login") { request, context in
            try Self.refuseCrossSite(request)
            return try await login(request, context)
        }
        router.post("logout") { request, _ in
            try Self.refuseCrossSite(request)
            var response = Response.redirect(to: "/login", type: .found)
            response.setCookie(Cookie(name: Authentication.cookieName, value: "", maxAge: 0, path: "/", secure: secureCookies, httpOnly: true, sameSite: .strict))
            return response
        }
        router.get("/") { _, context in
            let token = try context.require(.viewer)
            let pipelines = await backend.pipelines().map { view -> [String: Any] in
                ["name": view.name, "path": ControlContext.pathSegment(view.name), "state": view.state, "readPosition": view.readPosition ?? "—", "eventsRead": Self.count(Double(view.eventsRead)),
                 "lag": Self.seconds(view.lagSeconds), "rate": Self.count(view.eventsPerSecond), "owner": view.owner ?? "—"]
            }
            var model: [String: Any] = ["pipelines": pipelines]
            if let cluster = try? await backend.cluster() {
                model["clustered"] = true
                model["cluster"] = Self.model(cluster)
            }
            return page("Pipelines", "overview", model, token: token)
        }
        router.get("pipelines/:name") { _, context in
            let token = try context.require(.viewer)
            let name = try context.pathParameter("name")
            guard let view = await backend.pipelines().first(where: { $0.name == name }) else {
                throw ControlError(.notFound, "no pipeline named \(name)")
            }
            let audit = (try? await backend.auditLog(pipeline: name, limit: 20)) ?? []
            return page(name, "pipeline", ["page": Self.model(view, audit: audit, canOperate: token.role >= .operator)], token: token)
        }
    }

    static func model(_ cluster: ClusterView) -> [String: Any] {
        [
            "node": cluster.node, "leaseSeconds": cluster.leaseSeconds, "writable": seconds(cluster.writableSeconds),
            "members": cluster.members.map { ["name": $0.name, "started": $0.started ?? "—", "pipelines": $0.pipelines.isEmpty ? "—" : $0.pipelines.joined(separator: ", ")] },
            "history": cluster.history.prefix(20).map { ["at": $0.at, "pipeline": $0.pipeline, "detail": $0.detail] },
        ]
    }

    func page(_ title: String, _ template: String, _ model: [String: Any], token: APIToken?) -> Response {
        let content = library.render(model, withTemplate: template) ?? ""
        var layout: [String: Any] = ["title": title, "content": content]
        if let token { layout["user"] = ["name": token.name, "role": token.role.rawValue] }
        let html = library.render(layout, withTemplate: "layout") ?? ""
        return Response(status: .ok, headers: Self.pageHeaders, body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
    }

    /// Scripts and styles only from ferry itself; no framing by other sites.
    static let pageHeaders: HTTPFields = [
        .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
        .contentSecurityPolicy: "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
        HTTPField.Name("X-Content-Type-Options")!: "nosniff", HTTPField.Name("Referrer-Policy")!: "no-referrer",
    ]

    /// Signing in and out changes which session a browser has, so a form on another site must
    /// not do it (login CSRF would put the attacker's token in the operator's browser). Browsers
    /// say where a form came from: `Sec-Fetch-Site`, else `Origin`; a request that says neither
    /// (curl) is not a browser's cross-site form.
    static func refuseCrossSite(_ request: Request) throws {
        if let site = request.headers[HTTPField.Name("Sec-Fetch-Site")!] {
            guard site == "same-origin" || site == "none" else {
                throw ControlError(.forbidden, "signing in or out from another site is refused (Sec-Fetch-Site: \(site)); use ferry's own sign-in page")
            }
            return
        }
        guard let origin = request.headers[.origin] else { return }
        let authority = request.head.authority ?? request.headers[HTTPField.Name("Host")!] ?? ""
        guard let url = URL(string: origin), let host = url.host, Self.sameAuthority(host: host, port: url.port, scheme: url.scheme, authority) else {
            throw ControlError(.forbidden, "signing in or out from another site is refused (Origin: \(origin)); use ferry's own sign-in page")
        }
    }

    /// Whether an origin's host and port name the server at `authority` (`host[:port]`, the port
    /// left out when it is the scheme's default).
    static func sameAuthority(host: String, port: Int?, scheme: String?, _ authority: String) -> Bool {
        let defaultPort = scheme == "https" ? 443 : 80
        var authorityHost = authority, authorityPort = defaultPort
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]"), let number = Int(authority[authority.index(after: colon)...]) {
            authorityHost = String(authority[..<colon])
            authorityPort = number
        }
        let bare = authorityHost.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased()
        return bare == host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased() && authorityPort == (port ?? defaultPort)
    }

    static func asset(_ text: String, type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type, .cacheControl: "max-age=300"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// Signs in with a token pasted into the form: it goes into an HttpOnly, SameSite=Strict
    /// cookie. Failures count against the address like a bad API token.
    func login(_ request: Request, _ context: ControlContext) async throws -> Response {
        var request = request
        let body = String(buffer: try await request.collectBody(upTo: 16 << 10))
        let fields = Self.formFields(body)
        guard let token = fields["token"]?.trimmingCharacters(in: .whitespaces), !token.isEmpty else {
            return page("Sign in", "login", ["message": "Paste a token."], token: nil)
        }
        do {
            _ = try await Authentication(backend: backend, throttle: throttle).check(token, from: context.clientAddress)
        } catch let error as ControlError {
            var response = page("Sign in", "login", ["message": error.message], token: nil)
            response.status = error.status
            return response
        }
        var response = Response.redirect(to: "/", type: .found)
        response.setCookie(Cookie(name: Authentication.cookieName, value: token, path: "/", secure: secureCookies, httpOnly: true, sameSite: .strict))
        return response
    }

    static func formFields(_ body: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            if parts.count == 2 { fields[parts[0]] = parts[1] }
        }
        return fields
    }

    static func model(_ view: PipelineView, audit: [AuditEntryView], canOperate: Bool) -> [String: Any] {
        [
            "name": view.name, "state": view.state, "source": view.source, "canOperate": canOperate,
            "sourcePosition": view.sourcePosition ?? "—", "readPosition": view.readPosition ?? "—", "safePosition": view.safePosition ?? "—",
            "rate": count(view.eventsPerSecond), "lag": seconds(view.lagSeconds), "eventsRead": count(Double(view.eventsRead)),
            "buffer": view.buffer, "bufferBytes": view.bufferBytes.map { String($0) } ?? "—",
            "hasRetention": view.binlogRetention != nil,
            "retention": view.binlogRetention.map { retention -> [String: Any] in
                ["file": retention.neededFile, "left": retention.secondsLeft > 0 ? "in " + DurationText.span(retention.secondsLeft) : "now",
                 "expiry": DurationText.span(retention.expireSeconds), "low": retention.low]
            } ?? [:],
            "hasWALRetention": view.walRetention != nil,
            "walRetention": view.walRetention.map { retention -> [String: Any] in
                ["slot": retention.slot, "retained": ByteText.binary(retention.retainedBytes), "status": retention.walStatus,
                 "limit": retention.limitBytes.map(ByteText.binary) ?? "none", "high": retention.high]
            } ?? [:],
            "sinks": view.sinks.map { sink -> [String: Any] in
                ["pipeline": view.name, "name": sink.name, "appliedPosition": sink.appliedPosition ?? "—",
                 "lagEvents": sink.lagEvents.map { count(Double($0)) } ?? "—", "lagSeconds": seconds(sink.lagSeconds),
                 "lagBytes": sink.lagBytes.map { count(Double($0)) } ?? "—", "rate": sink.eventsPerSecond.map(count) ?? "—"]
            },
            "hasTables": !view.tables.isEmpty,
            "tables": view.tables.map { ["pipeline": view.name, "name": $0.name, "changes": count(Double($0.changes))] as [String: Any] },
            "hasSnapshots": !view.snapshots.isEmpty,
            "snapshots": view.snapshots.map { snapshot -> [String: Any] in
                ["pipeline": view.name, "table": snapshot.table, "state": snapshot.state, "reason": snapshot.reason, "fraction": String(snapshot.fraction),
                 "rowsDone": count(Double(snapshot.rowsDone)), "estimatedRows": count(Double(snapshot.estimatedRows)),
                 "chunksDone": String(snapshot.chunksDone), "chunksPlanned": String(snapshot.chunksPlanned),
                 "rowsPerSecond": snapshot.rowsPerSecond.map(count) ?? "—", "secondsLeft": seconds(snapshot.secondsLeft)]
            },
            "hasErrors": !view.errors.isEmpty,
            "errors": view.errors.map { error -> [String: Any] in
                let place = [error.sink.map { "sink \($0)" }, error.table, error.position].compactMap { $0 }.joined(separator: " · ")
                return ["at": error.at, "level": error.level, "where": place, "message": error.message]
            },
            "audit": audit.map { ["at": $0.at, "actor": $0.actor, "action": $0.action, "detail": $0.detail] as [String: Any] },
        ]
    }

    static func count(_ value: Double) -> String {
        let formatter = NumberFormatter()
        formatter.numberStyle = .decimal
        formatter.maximumFractionDigits = 0
        formatter.locale = Locale(identifier: "en_US")
        return formatter.string(from: NSNumber(value: value.rounded())) ?? String(Int(value))
    }

    static func seconds(_ value: Double?) -> String {
        guard let value else { return "—" }
        return value < 10 ? String(format: "%.1f s", value) : count(value) + " s"
    }
}
