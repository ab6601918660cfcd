import HTTPTypes
import Hummingbird

/// Headers every response carries, errors included: no MIME sniffing, no framing (for browsers
/// that predate CSP's `frame-ancestors`), and with TLS, HSTS so a browser never falls back to
/// plain HTTP.
struct SecurityHeaders: RouterMiddleware {
    typealias Context = ControlContext
    let usesTLS: Bool

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        }
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        if usesTLS { response.headers[.strictTransportSecurity] = "max-age=31536000" }
        return response
    }
}
