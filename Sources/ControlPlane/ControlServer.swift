import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import Prometheus

/// Where and how the control plane listens (`server:` in the configuration).
public struct ControlServerSettings: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// PEM files; both set: HTTPS only.
    public var certificatePath: String?
    public var keyPath: String?
    /// Failed logins per address before it must wait, and the window they are counted in.
    public var loginFailureLimit = 10
    public var loginFailureWindowSeconds = 60.0
    /// Open connections at most; more wait in the listen queue. Kept below the descriptor limit
    /// (see `WebConnectionBudget`), so the web port can never take the descriptors replication needs.
    public var maximumConnections = 256
    /// A request must arrive in full within this time of its connection opening (or the previous
    /// response ending); else the connection is closed.
    public var requestTimeoutSeconds = 10.0
    /// A connection with nothing going on either way is closed after this time.
    public var idleTimeoutSeconds = 60.0

    public init(host: String = "127.0.0.1", port: Int = 8080, certificatePath: String? = nil, keyPath: String? = nil) {
        self.host = host
        self.port = port
        self.certificatePath = certificatePath
        self.keyPath = keyPath
    }

    public var usesTLS: Bool { certificatePath != nil && keyPath != nil }
}

/// The HTTP API, web page, metrics and health checks of `ferry run` (Hummingbird).
public enum ControlServer {
    /// Every route; tests drive it directly.
    public static func router(backend: any ControlBackend, registry: PrometheusCollectorRegistry, settings: ControlServerSettings) throws -> Router<ControlContext> {
        let router = Router(context: ControlContext.self)
        let throttle = LoginThrottle(limit: settings.loginFailureLimit, window: settings.loginFailureWindowSeconds)
        router.add(middleware: SecurityHeaders(usesTLS: settings.usesTLS))
        router.add(middleware: MethodCheck())
        router.add(middleware: Authentication(backend: backend, throttle: throttle))
        router.get("healthz") { _, _ in Response(status: .ok, headers: [.contentType: "text/plain"], body: ResponseBody(byteBuffer: ByteBuffer(string: "ok\n"))) }
        router.get("readyz") { _, _ in
            let ready = await backend.isReady()
            return Response(status: ready ? .ok : .serviceUnavailable, headers: [.contentType: "text/plain"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: ready ? "ready\n" : "not ready: a pipeline is starting or has failed\n")))
        }
        router.get("metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        APIRoutes(backend: backend).add(to: router)
        try WebPages(backend: backend, throttle: throttle, secureCookies: settings.usesTLS).add(to: router)
        return router
    }

    /// The server as a swift-service-lifecycle service; `onRunning` gets the bound address.
    public static func application(backend: any ControlBackend, registry: PrometheusCollectorRegistry, settings: ControlServerSettings, logger: Logger,
                                   onRunning: @escaping @Sendable (SocketAddress?) async -> Void = { _ in }) throws -> some ApplicationProtocol {
        let router = try router(backend: backend, registry: registry, settings: settings)
        let requestTimeout = TimeAmount.milliseconds(Int64(settings.requestTimeoutSeconds * 1000))
        let http1 = HTTP1Channel.Configuration(additionalChannelHandlers: [RequestDeadline(timeout: requestTimeout)],
                                               idleTimeout: .milliseconds(Int64(settings.idleTimeoutSeconds * 1000)))
        var server: HTTPServerBuilder = .http1(configuration: http1)
        if let certificatePath = settings.certificatePath, let keyPath = settings.keyPath {
            let tls: TLSConfiguration
            do {
                tls = TLSConfiguration.makeServerConfiguration(
                    certificateChain: try NIOSSLCertificate.fromPEMFile(certificatePath).map { .certificate($0) },
                    privateKey: .privateKey(try NIOSSLPrivateKey(file: keyPath, format: .pem)))
            } catch {
                throw ControlServerError.tls("cannot read the TLS certificate \(certificatePath) or key \(keyPath): \(error)")
            }
            server = try .tls(.http1(configuration: http1), tlsConfiguration: tls)
        }
        var serverLogger = logger
        serverLogger.logLevel = max(logger.logLevel, .notice)
        return Application(router: router, server: server,
                           configuration: ApplicationConfiguration(address: .hostname(settings.host, port: settings.port), serverName: "ferry",
                                                                   availableConnectionsDelegate: MaximumAvailableConnections(settings.maximumConnections, logger: serverLogger)),
                           onServerRunning: { channel in await onRunning(channel.localAddress) }, logger: serverLogger)
    }
}

public enum ControlServerError: Error, CustomStringConvertible {
    case tls(String)

    public var description: String {
        switch self {
        case .tls(let message): return message
        }
    }
}
