import Foundation
import NIOCore
import Testing
@testable import Etcd

/// Against the 3-member cluster `scripts/services start etcd` runs on 127.0.0.1 (auth on, user
/// ferry may use keys under /ferry/).
enum EtcdTestCluster {
    struct Missing: Error, CustomStringConvertible {
        var name: String
        var description: String { "\(name) is not set: start the servers with `eval \"$(scripts/services start etcd)\"` or run ./scripts/test" }
    }

    static func value(_ name: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { throw Missing(name: name) }
        return value
    }

    static func endpoints() throws -> [String] { try value("FERRY_ETCD_ENDPOINTS").split(separator: ",").map(String.init) }

    static func configuration(endpoints: [String]? = nil, password: String? = nil) throws -> EtcdConfiguration {
        EtcdConfiguration(endpoints: try endpoints ?? self.endpoints(), user: try value("FERRY_ETCD_USER"),
                          password: try password ?? value("FERRY_ETCD_PASSWORD"),
                          attemptTimeout: .milliseconds(800), requestTimeout: .seconds(5), watchIdleTimeout: .seconds(5))
    }

    /// A key prefix no other test uses.
    static func prefix(_ test: String) -> String { "/ferry/test/\(test)-\(UInt32.random(in: 0 ... .max))/" }
}

/// Runs `body`, failing if it takes longer than `seconds`.
func withTimeLimit<T: Sendable>(_ seconds: Int, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw TimeLimitExceeded(seconds: seconds)
        }
        return value
    }
}

struct TimeLimitExceeded: Error { var seconds: Int }

@Suite(.serialized) struct EtcdClusterTests {
    @Test func keysTransactionsAndLeases() async throws {
        let client = try EtcdClient(configuration: try EtcdTestCluster.configuration())
        defer { Task { try? await client.shutdown() } }
        let prefix = EtcdTestCluster.prefix("kv")

        let revision = try await client.put(prefix + "a", Array("1".utf8))
        try await client.put(prefix + "b", Array("2".utf8))
        try await client.put(prefix + "c", [0, 0xFF, 10])
        let a = try #require(try await client.get(prefix + "a"))
        #expect(a.valueText == "1" && a.createRevision == revision && a.modRevision == revision && a.version == 1)
        #expect(try await client.get(prefix + "missing") == nil)
        let all = try await client.get(prefix: prefix)
        #expect(all.keyValues.map(\.keyText) == [prefix + "a", prefix + "b", prefix + "c"])
        #expect(all.keyValues[2].value == [0, 0xFF, 10] && all.count == 3 && all.revision >= revision + 2)
        let firstTwo = try await client.get(prefix: prefix, limit: 2)
        #expect(firstTwo.keyValues.count == 2 && firstTwo.more && firstTwo.count == 3)

        // Create-if-absent: the second claim fails and reads back the first.
        let lease = try await client.grantLease(ttlSeconds: 30)
        #expect(lease.ttlSeconds == 30)
        let owner = prefix + "owners/p1"
        let claim = try await client.txn([.absent(owner)], success: [.put(owner, Array("node-a".utf8), lease: lease.id)],
                                         failure: [.get(owner)])
        #expect(claim.succeeded && claim.results == [.put])
        let again = try await client.txn([.absent(owner)], success: [.put(owner, Array("node-b".utf8))], failure: [.get(owner)])
        #expect(!again.succeeded)
        guard case .get(let held)? = again.results.first, let holder = held.keyValues.first else {
            Issue.record("the failed claim did not read the owner back"); return
        }
        #expect(holder.valueText == "node-a" && holder.lease == lease.id && holder.createRevision == claim.revision)

        #expect(try await client.keepAlive(lease: lease.id) == 30)
        try await client.revokeLease(lease.id)
        #expect(try await client.get(owner) == nil, "revoking the lease deletes its keys")
        await #expect {
            try await client.keepAlive(lease: lease.id)
        } throws: { error in
            if case EtcdError.leaseExpired(lease.id)? = error as? EtcdError { return true }
            return false
        }
        try await client.revokeLease(lease.id)

        #expect(try await client.delete(prefix + "a") == 1)
        #expect(try await client.delete(prefix, prefix: true) == 2)
        #expect(try await client.get(prefix: prefix).keyValues.isEmpty)
    }

    @Test func refusalsSayWhatToDo() async throws {
        let wrong = try EtcdClient(configuration: try EtcdTestCluster.configuration(password: "not-the-password"))
        defer { Task { try? await wrong.shutdown() } }
        await #expect {
            try await wrong.get("/ferry/x")
        } throws: { error in
            guard case EtcdError.authentication(_, "ferry", _)? = error as? EtcdError else { return false }
            return "\(error)".contains("cluster.etcd.password")
        }

        let client = try EtcdClient(configuration: try EtcdTestCluster.configuration())
        defer { Task { try? await client.shutdown() } }
        await #expect {
            try await client.put("/elsewhere/x", [1])
        } throws: { error in
            guard case EtcdError.server(_, _, 7, _)? = error as? EtcdError else { return false }
            return "\(error)".contains("grant-permission")
        }

        #expect(throws: EtcdError.self) { try EtcdClient(configuration: EtcdConfiguration(endpoints: ["127.0.0.1:2379"])) }
        #expect(throws: EtcdError.self) { try EtcdClient(configuration: EtcdConfiguration(endpoints: [])) }
    }

    /// A refused port and a port that accepts but never answers come first in the list: each
    /// request moves past them within the attempt timeout.
    @Test func deadAndSilentEndpointsAreSkipped() async throws {
        let silent = try SilentListener()
        defer { silent.close() }
        let refused = try SilentListener()
        refused.close()
        let endpoints = ["http://127.0.0.1:\(refused.port)", "http://127.0.0.1:\(silent.port)"] + (try EtcdTestCluster.endpoints())
        let client = try EtcdClient(configuration: try EtcdTestCluster.configuration(endpoints: endpoints))
        defer { Task { try? await client.shutdown() } }
        let key = EtcdTestCluster.prefix("failover") + "k"
        let started = ContinuousClock.now
        try await client.put(key, Array("v".utf8))
        #expect(try await client.get(key)?.valueText == "v")
        // Attempt timeouts (2 s each) go to the silent endpoint — about two here, 4.2–4.4 s in
        // CI — never the whole request deadline (6 s), which would have failed the request.
        #expect(ContinuousClock.now - started < .seconds(6))
        try await client.delete(key)

        let none = try EtcdClient(configuration: EtcdConfiguration(
            endpoints: ["http://127.0.0.1:\(refused.port)", "http://127.0.0.1:\(silent.port)"],
            attemptTimeout: .milliseconds(300), requestTimeout: .seconds(1)))
        defer { Task { try? await none.shutdown() } }
        await #expect {
            try await none.get("/ferry/x")
        } throws: { error in
            guard case EtcdError.unavailable? = error as? EtcdError else { return false }
            return "\(error)".contains("majority")
        }
    }

    @Test func tlsWithClientCertificate() async throws {
        let endpoints = try EtcdTestCluster.value("FERRY_ETCD_TLS_ENDPOINTS").split(separator: ",").map(String.init)
        var configuration = try EtcdTestCluster.configuration(endpoints: endpoints)
        configuration.caFile = try EtcdTestCluster.value("FERRY_ETCD_CA")
        configuration.certificateFile = try EtcdTestCluster.value("FERRY_ETCD_CLIENT_CERT")
        configuration.keyFile = try EtcdTestCluster.value("FERRY_ETCD_CLIENT_KEY")
        let client = try EtcdClient(configuration: configuration)
        defer { Task { try? await client.shutdown() } }
        let key = EtcdTestCluster.prefix("tls") + "k"
        try await client.put(key, Array("over TLS".utf8))
        #expect(try await client.get(key)?.valueText == "over TLS")
        try await client.delete(key)

        // Without the client certificate the members refuse the handshake.
        configuration.certificateFile = nil
        configuration.keyFile = nil
        configuration.requestTimeout = .seconds(1)
        let anonymous = try EtcdClient(configuration: configuration)
        defer { Task { try? await anonymous.shutdown() } }
        await #expect(throws: EtcdError.self) { try await anonymous.get(key) }
    }

    /// A watch whose connection breaks mid-stream (its path to member 0 goes through a proxy
    /// this test cuts) resumes on another member at the next revision, and every change arrives
    /// once, in order.
    @Test func watchResumesOnAnotherMemberWhenItsConnectionBreaks() async throws {
        let endpoints = try EtcdTestCluster.endpoints()
        let member0 = try #require(endpoints.first.flatMap { Int($0.split(separator: ":").last ?? "") })
        let proxy = try ForwardingProxy(to: member0)
        defer { proxy.cut() }
        let watcher = try EtcdClient(configuration: try EtcdTestCluster.configuration(endpoints: ["http://127.0.0.1:\(proxy.port)"] + endpoints.dropFirst()))
        let writer = try EtcdClient(configuration: try EtcdTestCluster.configuration(endpoints: Array(endpoints.dropFirst())))
        defer { Task { try? await watcher.shutdown(); try? await writer.shutdown() } }
        let prefix = EtcdTestCluster.prefix("watch")
        let start = try await writer.get(prefix: prefix).revision + 1
        let (stream, continuation) = AsyncStream.makeStream(of: EtcdWatchEvent.self)

        let written = try await withTimeLimit(60) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await watcher.watch(prefix: prefix, fromRevision: start) { events in
                        for event in events { continuation.yield(event) }
                    }
                }
                var iterator = stream.makeAsyncIterator()
                var revisions: [Int64] = []
                for index in 0..<5 { revisions.append(try await writer.put(prefix + "k\(index)", Array("\(index)".utf8))) }
                for _ in 0..<5 { _ = await iterator.next() }
                proxy.cut()
                for index in 5..<10 { revisions.append(try await writer.put(prefix + "k\(index)", Array("\(index)".utf8))) }
                try await writer.delete(prefix + "k0")
                var seen: [EtcdWatchEvent] = []
                while seen.count < 6, let event = await iterator.next() { seen.append(event) }
                group.cancelAll()
                return (revisions, seen)
            }
        }
        let (revisions, after) = written
        #expect(proxy.connections > 0, "the watch went through the proxy")
        #expect(after.prefix(5).map(\.keyValue.keyText) == (5..<10).map { prefix + "k\($0)" })
        #expect(after.prefix(5).map(\.keyValue.modRevision) == Array(revisions.suffix(5)))
        #expect(after.last?.kind == .delete && after.last?.keyValue.keyText == prefix + "k0")
        try await writer.delete(prefix, prefix: true)
    }
}

/// A TCP proxy to a local port, on plain threads, that can be cut: its listener and every
/// connection through it close at once, as when a member's host goes away.
final class ForwardingProxy: @unchecked Sendable {
    let port: Int
    private let lock = NSLock()
    private var listener: Int32
    private var sockets: [Int32] = []
    private var accepted = 0

    var connections: Int { lock.withLock { accepted } }

    init(to target: Int) throws {
        let silent = try SilentListener()
        listener = silent.takeDescriptor()
        port = silent.port
        let thread = Thread { [self] in self.acceptLoop(target: target) }
        thread.start()
    }

    private func acceptLoop(target: Int) {
        while true {
            let client = accept(lock.withLock { listener }, nil, nil)
            guard client >= 0 else { return }
            let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(target).bigEndian
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else {
                _ = Glibc.close(client)
                _ = Glibc.close(upstream)
                continue
            }
            lock.withLock {
                sockets += [client, upstream]
                accepted += 1
            }
            for (from, to) in [(client, upstream), (upstream, client)] {
                Thread { Self.pump(from: from, to: to) }.start()
            }
        }
    }

    private static func pump(from: Int32, to: Int32) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(from, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { break }
            let sent = buffer.withUnsafeBytes { send(to, $0.baseAddress, count, Int32(MSG_NOSIGNAL)) }
            guard sent == count else { break }
        }
        _ = shutdown(to, Int32(SHUT_RDWR))
        _ = shutdown(from, Int32(SHUT_RDWR))
    }

    /// Closes the listener and breaks every connection.
    func cut() {
        let (listening, open) = lock.withLock { () -> (Int32, [Int32]) in
            defer { listener = -1; sockets = [] }
            return (listener, sockets)
        }
        if listening >= 0 {
            _ = shutdown(listening, Int32(SHUT_RDWR))
            _ = Glibc.close(listening)
        }
        for socket in open { _ = shutdown(socket, Int32(SHUT_RDWR)) }
    }
}

/// A TCP port that accepts connections (the kernel completes the handshake) and never answers.
final class SilentListener: @unchecked Sendable {
    let port: Int
    private var descriptor: Int32

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        guard bound == 0, listen(descriptor, 16) == 0 else { throw POSIXError(.EADDRINUSE) }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        self.descriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() {
        if descriptor >= 0 { _ = Glibc.close(descriptor); descriptor = -1 }
    }

    /// Hands the listening socket over to a new owner, who closes it.
    func takeDescriptor() -> Int32 {
        defer { descriptor = -1 }
        return descriptor
    }
}
