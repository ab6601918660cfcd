import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Which addresses a webhook may not reach unless `allow_private` is set: loopback, private
/// (RFC 1918, unique local), link-local (which holds the cloud metadata services,
/// 169.254.169.254 and fd00:ec2::254), carrier-grade NAT, unspecified and multicast.
enum AddressPolicy {
    /// Why `address` (numeric IPv4 or IPv6) is refused; nil when it is a public address.
    static func refusal(_ address: String) -> String? {
        if let v4 = ipv4(address) { return refusal(v4: v4) }
        if let v6 = ipv6(address) {
            // IPv4-mapped (::ffff:a.b.c.d) is the IPv4 address.
            if v6[0..<10].allSatisfy({ $0 == 0 }), v6[10] == 0xFF, v6[11] == 0xFF { return refusal(v4: Array(v6[12..<16])) }
            if v6.allSatisfy({ $0 == 0 }) { return "the unspecified address" }
            if v6[0..<15].allSatisfy({ $0 == 0 }), v6[15] == 1 { return "a loopback address" }
            if v6 == [0xFD, 0x00, 0x0E, 0xC2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54] { return "a cloud metadata address" }
            if v6[0] & 0xFE == 0xFC { return "a private (unique local) address" }
            if v6[0] == 0xFE, v6[1] & 0xC0 == 0x80 { return "a link-local address" }
            if v6[0] == 0xFF { return "a multicast address" }
            return nil
        }
        return "not an IP address"
    }

    static func refusal(v4 a: [UInt8]) -> String? {
        switch (a[0], a[1]) {
        case (169, 254) where a[2] == 169 && a[3] == 254: return "a cloud metadata address"
        case (169, 254): return "a link-local address"
        case (127, _): return "a loopback address"
        case (10, _), (192, 168): return "a private address"
        case (172, 16...31): return "a private address"
        case (100, 64...127): return "a carrier-grade NAT address"
        case (0, _): return "the unspecified address"
        case (224...255, _): return "a multicast or reserved address"
        default: return nil
        }
    }

    static func ipv4(_ text: String) -> [UInt8]? {
        var address = in_addr()
        guard inet_pton(AF_INET, text, &address) == 1 else { return nil }
        return withUnsafeBytes(of: address.s_addr) { Array($0) }
    }

    static func ipv6(_ text: String) -> [UInt8]? {
        var address = in6_addr()
        guard inet_pton(AF_INET6, text, &address) == 1 else { return nil }
        return withUnsafeBytes(of: address) { Array($0) }
    }

    /// Every address `host` resolves to, numeric. `getaddrinfo` blocks (a slow or absent DNS
    /// server for seconds), so it runs on a thread of its own, never on the tasks' shared threads.
    static func resolve(_ host: String) async -> [String] {
        if ipv4(host) != nil || ipv6(host) != nil { return [host] }
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: resolveBlocking(host)) }
        }
    }

    private static func resolveBlocking(_ host: String) -> [String] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        // Only address families this machine has (no AAAA queries without IPv6).
        hints.ai_flags = AI_ADDRCONFIG
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result else { return [] }
        defer { freeaddrinfo(first) }
        var addresses: [String] = []
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let current = entry {
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(current.pointee.ai_addr, current.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 {
                addresses.append(String(cString: buffer))
            }
            entry = current.pointee.ai_next
        }
        return Array(Set(addresses)).sorted()
    }
}
