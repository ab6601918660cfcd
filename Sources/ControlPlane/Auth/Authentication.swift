import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The request context: who is calling, from where.
public struct ControlContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// Set by `Authentication` for requests that presented a valid token.
    public var token: APIToken?
    /// The token came in the `ferry_token` cookie (the web page), not an Authorization header.
    public var viaCookie = false

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    var clientAddress: String { remoteAddress?.ipAddress ?? "unknown" }

    /// A path parameter, percent-decoded: a pipeline named `a b` or `naïve` arrives as `a%20b`
    /// or `na%C3%AFve`.
    func pathParameter(_ name: String) throws -> String {
        let raw = try parameters.require(name)
        guard let decoded = raw.removingPercentEncoding else {
            throw ControlError(.badRequest, "the path segment '\(raw)' is not valid percent-encoding")
        }
        return decoded
    }

    /// `name` as one path segment of a link (`/` and everything outside the URL path set escaped).
    static func pathSegment(_ name: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "/?#%")
        return name.addingPercentEncoding(withAllowedCharacters: allowed) ?? name
    }

    /// The caller's token, or 403 when its role is below `role`.
    func require(_ role: Role) throws -> APIToken {
        guard let token else { throw ControlError(.unauthorized, "this needs an API token") }
        guard token.role >= role else {
            throw ControlError(.forbidden, "token \(token.name) has role \(token.role.rawValue); this needs \(role.rawValue)")
        }
        return token
    }
}

/// Finds the caller's token (`Authorization: Bearer …` or the page's cookie) on every request
/// except the public ones, refuses unknown tokens (counting them as failed logins per address),
/// and refuses cookie-borne changes without ferry's own request header (another site's form
/// cannot set it).
struct Authentication: RouterMiddleware {
    typealias Context = ControlContext
    static let cookieName = "ferry_token"
    static let requestHeader = HTTPField.Name("X-Ferry-Request")!

    let backend: any ControlBackend
    let throttle: LoginThrottle

    static func isPublic(_ path: String) -> Bool {
        ["/healthz", "/readyz", "/metrics", "/login", "/logout", "/api/v1/openapi.json"].contains(path) || path.hasPrefix("/assets/")
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if Self.isPublic(path) { return try await next(request, context) }
        var context = context
        var presented: String? = nil
        if let header = request.headers[.authorization] {
            guard header.lowercased().hasPrefix("bearer ") else {
                throw ControlError(.unauthorized, "the Authorization header must be `Bearer <token>`")
            }
            presented = String(header.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces)
        } else if let cookie = request.cookies[Self.cookieName]?.value, !cookie.isEmpty {
            presented = cookie
            context.viaCookie = true
        }
        guard let presented else {
            if !path.hasPrefix("/api/") { return .redirect(to: "/login") }
            throw ControlError(.unauthorized, "this needs an API token: send `Authorization: Bearer <token>` (make one with `ferry token create --name NAME --role viewer`)")
        }
        context.token = try await check(presented, from: context.clientAddress)
        if context.viaCookie, request.method != .get, request.method != .head, request.headers[Self.requestHeader] == nil {
            throw ControlError(.forbidden, "a change made with the page's cookie needs the X-Ferry-Request header")
        }
        return try await next(request, context)
    }

    /// The token `presented` stands for; a wrong one counts against the address.
    func check(_ presented: String, from address: String) async throws -> APIToken {
        if let wait = throttle.begin(address, now: Date().timeIntervalSince1970) {
            let seconds = max(1, Int(wait.rounded(.up)))
            throw ControlError(.tooManyRequests, "too many failed logins from \(address); try again in \(seconds) s", retryAfter: seconds)
        }
        let token: APIToken?
        do {
            token = try await backend.token(hash: APIToken.hash(presented))
        } catch {
            throttle.finished(address, succeeded: true, now: Date().timeIntervalSince1970)
            throw error
        }
        throttle.finished(address, succeeded: token != nil, now: Date().timeIntervalSince1970)
        guard let token else { throw ControlError(.unauthorized, "unknown or revoked API token") }
        return token
    }
}

/// An error with its HTTP status, answered as `{"error":{"status":…,"message":…}}`. Messages never
/// carry a token or a password.
public struct ControlError: HTTPResponseError {
    public var status: HTTPResponse.Status
    public var message: String
    /// The methods a path takes, for 405.
    public var allow: String?
    /// Seconds to wait, for 429.
    public var retryAfter: Int?

    public init(_ status: HTTPResponse.Status, _ message: String, allow: String? = nil, retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.allow = allow
        self.retryAfter = retryAfter
    }

    struct Body: Encodable {
        struct Detail: Encodable {
            var status: Int
            var message: String
        }
        var error: Detail
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = try JSONBody.response(Body(error: Body.Detail(status: status.code, message: message)), status: status)
        if status == .unauthorized { response.headers[.wwwAuthenticate] = "Bearer realm=\"ferry\"" }
        if let allow { response.headers[.allow] = allow }
        if let retryAfter { response.headers[.retryAfter] = String(retryAfter) }
        return response
    }
}

/// JSON bodies: snake_case keys, sorted, so responses are stable.
enum JSONBody {
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try encoder().encode(value)
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}
