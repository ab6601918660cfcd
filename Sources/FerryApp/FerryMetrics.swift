import Foundation
import Metrics
import NIOCore
import NIOPosix
import Prometheus

/// The process's Prometheus registry, made the swift-metrics backend on first use (a process can
/// bootstrap metrics only once).
enum FerryMetrics {
    static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [.milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
                                                   .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5),
                                                   .seconds(5), .seconds(10), .seconds(30)]
        MetricsSystem.bootstrap(factory)
        return registry
    }()
}

/// Whether an address can be listened on right now.
enum ListenCheck {
    static func isFree(host: String, port: Int) -> Bool {
        guard port != 0 else { return true }
        do {
            let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: host, port: port).wait()
            try channel.close().wait()
            return true
        } catch {
            return false
        }
    }
}
