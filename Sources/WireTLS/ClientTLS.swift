import NIOCore
import NIOSSL

/// How a client connection uses TLS: libpq's `sslmode` values, which MySQL's `ssl-mode` mirrors.
public enum TLSMode: String, Sendable, CaseIterable {
    /// Never use TLS.
    case disable
    /// Use TLS when the server offers it, without verifying the certificate.
    case prefer
    /// Fail unless the server offers TLS; the certificate is not verified.
    case require
    /// Require TLS and a certificate signed by a trusted CA (the configured CA file), any host name.
    case verifyCA = "verify-ca"
    /// Require TLS, a trusted certificate and a matching host name (or IP address).
    case verifyFull = "verify-full"
}

/// The client side of TLS for the database protocols (MySQL, PostgreSQL), which both switch an
/// established TCP connection to TLS after a request of their own.
public enum ClientTLS {
    /// Puts a TLS client handler in front of `channel`'s pipeline, checking the server's
    /// certificate as `mode` says, against `caFile` (PEM) or the system's roots. The handshake
    /// runs from there; a failure reaches the pipeline as an `NIOSSLError` or `BoringSSLError`.
    public static func start(on channel: any Channel, host: String, mode: TLSMode, caFile: String?) async throws {
        var tls = TLSConfiguration.makeClientConfiguration()
        switch mode {
        case .disable, .prefer, .require: tls.certificateVerification = .none
        case .verifyCA: tls.certificateVerification = .noHostnameVerification
        case .verifyFull: tls.certificateVerification = .fullVerification
        }
        if let caFile { tls.trustRoots = .file(caFile) }
        let context = try NIOSSLContext(configuration: tls)
        // An IP address is checked against the certificate's IP entries; a name is sent by SNI
        // and checked against its DNS entries.
        let isAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
        let hostname = isAddress ? nil : host
        try await channel.eventLoop.submit {
            let handler = try NIOSSLClientHandler(context: context, serverHostname: hostname)
            try channel.pipeline.syncOperations.addHandler(handler, position: .first)
        }.get()
    }

    /// Whether `error` is a TLS failure (a handshake refused, a certificate not trusted).
    public static func isTLSError(_ error: any Error) -> Bool {
        error is NIOSSLError || error is BoringSSLError
    }
}
