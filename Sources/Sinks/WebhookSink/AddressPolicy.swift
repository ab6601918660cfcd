import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Which addresses a webhook may not reach unless `allow_private` is set: every address of this
/// machine's own interfaces, loopback, private (RFC 1918, unique local), link-local (which holds
/// the cloud metadata services, 169.254.169.254 and fd00:ec2::254), carrier-grade NAT, and the
/// other special-purpose ranges of IANA's IPv4 and IPv6 registries (documentation, benchmarking,
/// protocol assignments, unspecified, multicast, reserved). IPv6 forms that carry an IPv4 address
/// (mapped, compatible, NAT64, 6to4) are judged by that IPv4 address.
enum AddressPolicy {
    /// Why `address` (numeric IPv4 or IPv6) is refused; nil when it is a public address.
    static func refusal(_ address: String) -> String? {
        if let v4 = ipv4(address) { return refusal(v4: v4) ?? ownAddress(v4) }
        if let v6 = ipv6(address) { return refusal(v6: v6) ?? ownAddress(v6) }
        return "not an IP address"
    }

    static func refusal(v6: [UInt8]) -> String? {
        if v6.allSatisfy({ $0 == 0 }) { return "the unspecified address" }
        if v6[0..<15].allSatisfy({ $0 == 0 }), v6[15] == 1 { return "a loopback address" }
        // IPv4-mapped (::ffff:a.b.c.d) and the deprecated IPv4-compatible form (::a.b.c.d).
        if v6[0..<10].allSatisfy({ $0 == 0 }), (v6[10] == 0xFF && v6[11] == 0xFF) || (v6[10] == 0 && v6[11] == 0) {
            return refusal(v4: Array(v6[12..<16])) ?? ownAddress(Array(v6[12..<16]))
        }
        // NAT64's well-known prefix 64:ff9b::/96 translates to the IPv4 address in its last bytes.
        if v6[0..<12] == [0x00, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0] {
            return refusal(v4: Array(v6[12..<16])) ?? ownAddress(Array(v6[12..<16]))
        }
        if v6[0] == 0x00, v6[1] == 0x64, v6[2] == 0xFF, v6[3] == 0x9B, v6[4] == 0, v6[5] == 1 { return "a local-use NAT64 address" }
        // 6to4 (2002::/16) carries an IPv4 address in bytes 2…5.
        if v6[0] == 0x20, v6[1] == 0x02 { return refusal(v4: Array(v6[2..<6])) ?? ownAddress(Array(v6[2..<6])) }
        if v6 == [0xFD, 0x00, 0x0E, 0xC2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54] { return "a cloud metadata address" }
        if v6[0] & 0xFE == 0xFC { return "a private (unique local) address" }
        if v6[0] == 0xFE, v6[1] & 0xC0 == 0x80 { return "a link-local address" }
        if v6[0] == 0xFE, v6[1] & 0xC0 == 0xC0 { return "a site-local address" }
        if v6[0] == 0xFF { return "a multicast address" }
        if v6[0] == 0x20, v6[1] == 0x01, v6[2] == 0x0D, v6[3] == 0xB8 { return "a documentation address" }
        if v6[0] == 0x3F, v6[1] == 0xFF, v6[2] & 0xF0 == 0 { return "a documentation address" }
        if v6[0] == 0x20, v6[1] == 0x01, v6[2] & 0xFE == 0 { return "a special-purpose address (IETF protocol assignments)" }
        if v6[0] == 0x01, v6[1] == 0, v6[2..<8].allSatisfy({ $0 == 0 }) { return "a discard-only address" }
        if v6[0] == 0x5F, v6[1] == 0x00 { return "a special-purpose address (segment routing)" }
        // Everything outside 2000::/3 is unassigned or special.
        if v6[0] & 0xE0 != 0x20 { return "a reserved address" }
        return nil
    }

    static func refusal(v4 a: [UInt8]) -> String? {
        switch (a[0], a[1], a[2]) {
        case (169, 254, 169) where a[3] == 254: return "a cloud metadata address"
        case (169, 254, _): return "a link-local address"
        case (127, _, _): return "a loopback address"
        case (10, _, _), (192, 168, _), (172, 16...31, _): return "a private address"
        case (100, 64...127, _): return "a carrier-grade NAT address"
        case (0, _, _): return "the unspecified address"
        case (192, 0, 0): return "a special-purpose address (IETF protocol assignments)"
        case (192, 0, 2), (198, 51, 100), (203, 0, 113): return "a documentation address"
        case (198, 18...19, _): return "a benchmarking address"
        case (192, 88, 99): return "a 6to4 relay address"
        case (224...239, _, _): return "a multicast address"
        case (240...255, _, _): return "a reserved address"
        default: return nil
        }
    }

    /// Set when `address` (4 or 16 bytes) is one of this machine's own interface addresses: a
    /// public address of this host still reaches its local services.
    static func ownAddress(_ address: [UInt8]) -> String? {
        interfaceAddresses().contains(address) ? "an address of this machine" : nil
    }

    /// The addresses of this machine's interfaces, as bytes, read on each call (interfaces come
    /// and go; a webhook resolves rarely).
    static func interfaceAddresses() -> Set<[UInt8]> {
        var first: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&first) == 0, let list = first else { return [] }
        defer { freeifaddrs(list) }
        var addresses = Set<[UInt8]>()
        var entry: UnsafeMutablePointer<ifaddrs>? = list
        while let current = entry {
            if let socket = current.pointee.ifa_addr {
                switch Int32(socket.pointee.sa_family) {
                case AF_INET:
                    socket.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { addresses.insert(withUnsafeBytes(of: $0.pointee.sin_addr.s_addr) { Array($0) }) }
                case AF_INET6:
                    socket.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { addresses.insert(withUnsafeBytes(of: $0.pointee.sin6_addr) { Array($0) }) }
                default: break
                }
            }
            entry = current.pointee.ifa_next
        }
        return addresses
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
        // RFC 6761: localhost and every name under it is the loopback, whatever a resolver says
        // (`localhost.` is no /etc/hosts name and would go to DNS).
        let name = host.lowercased()
        if ["localhost", "localhost."].contains(name) || name.hasSuffix(".localhost") || name.hasSuffix(".localhost.") { return ["127.0.0.1"] }
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
