// swift-tools-version:6.0
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "ferry",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "ferry", targets: ["ferry"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.30.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.0"..<"4.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.12.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.20.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.24.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.25.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.1.0"),
    ],
    targets: [
        .target(
            name: "FerryCore",
            dependencies: [.product(name: "NIOCore", package: "swift-nio"), .product(name: "Logging", package: "swift-log")]
        ),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "CWriteback", path: "Sources/CWriteback"),
        .target(
            name: "MySQLBinlog",
            dependencies: [
                "FerryCore", "CZlib",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "MySQLWire",
            dependencies: [
                "FerryCore", "WireTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "WireTLS",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .target(
            name: "Etcd",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "Cluster",
            dependencies: [
                "Etcd", "FerryCore",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "PostgresLogical", dependencies: ["FerryCore"]),
        .target(
            name: "PostgresSource",
            dependencies: [
                "FerryCore", "PostgresLogical", "PostgresWire", .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .target(
            name: "PostgresWire",
            dependencies: [
                "WireTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "MySQLSource",
            dependencies: [
                "FerryCore", "MySQLWire", "MySQLBinlog",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "StateStore",
            dependencies: [
                "FerryCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "DiskLog",
            dependencies: ["CZlib"]
        ),
        .target(
            name: "Rules",
            dependencies: ["FerryCore"]
        ),
        .target(
            name: "Documents",
            dependencies: ["FerryCore"]
        ),
        .target(
            name: "Pipeline",
            dependencies: [
                "FerryCore", "DiskLog", "Rules",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "ControlPlane",
            dependencies: [
                "FerryCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "SinkSupport",
            dependencies: ["FerryCore"],
            path: "Sources/Sinks/SinkSupport"
        ),
        .target(
            name: "SQLiteSink",
            dependencies: [
                "FerryCore", "SinkSupport",
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Sinks/SQLiteSink"
        ),
        .target(
            name: "MariaDBSink",
            dependencies: [
                "FerryCore", "SinkSupport", "MySQLWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Sinks/MariaDBSink"
        ),
        .target(
            name: "PostgresSink",
            dependencies: [
                "FerryCore", "SinkSupport", "PostgresWire", "WireTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Sinks/PostgresSink"
        ),
        .target(
            name: "RedisSink",
            dependencies: [
                "FerryCore",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Sinks/RedisSink"
        ),
        .target(
            name: "NATSSink",
            dependencies: [
                "FerryCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Sinks/NATSSink"
        ),
        .target(
            name: "WebhookSink",
            dependencies: [
                "FerryCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Sinks/WebhookSink"
        ),
        .target(
            name: "SearchSink",
            dependencies: [
                "FerryCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Sinks/SearchSink"
        ),
        .target(
            name: "ClickHouseSink",
            dependencies: [
                "FerryCore", "SinkSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Sinks/ClickHouseSink"
        ),
        .target(
            name: "FileSink",
            dependencies: [
                "FerryCore", "CWriteback",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Sources/Sinks/FileSink"
        ),
        .target(
            name: "FerryApp",
            dependencies: [
                "FerryCore", "DiskLog", "MySQLWire", "MySQLBinlog", "MySQLSource", "Pipeline", "Rules", "Documents", "StateStore", "SinkSupport", "SQLiteSink", "FileSink", "MariaDBSink", "PostgresSink",
                "PostgresSource", "RedisSink", "NATSSink", "WebhookSink", "SearchSink", "ClickHouseSink", "ControlPlane", "Cluster", "Etcd",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "ferry",
            dependencies: [
                "FerryApp", "BuildInfo",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "FerryMicrobench",
            dependencies: ["FerryCore", "MySQLBinlog", "MySQLTestKit", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .plugin(name: "BuildInfoPlugin", capability: .buildTool()),
        .target(name: "BuildInfo", dependencies: ["FerryCore"], plugins: ["BuildInfoPlugin"]),
        .target(
            name: "FerryTestKit",
            dependencies: ["FerryCore"]
        ),
        .target(
            name: "MySQLTestKit",
            dependencies: [
                "FerryCore", "MySQLBinlog",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SearchSinkTests",
            dependencies: ["SearchSink", "FerryCore"]
        ),
        .testTarget(
            name: "DocumentsTests",
            dependencies: ["Documents", "FerryCore"]
        ),
        .testTarget(
            name: "RulesTests",
            dependencies: ["Rules", "FerryCore"]
        ),
        .testTarget(
            name: "ClickHouseSinkTests",
            dependencies: ["ClickHouseSink", "FerryCore"]
        ),
        .testTarget(
            name: "WebhookSinkTests",
            dependencies: ["WebhookSink", "FerryCore"]
        ),
        .testTarget(
            name: "NATSSinkTests",
            dependencies: ["NATSSink", "FerryCore", .product(name: "NIOCore", package: "swift-nio"), .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "RedisSinkTests",
            dependencies: ["RedisSink", "FerryCore", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "ControlPlaneTests",
            dependencies: ["ControlPlane", .product(name: "HTTPTypes", package: "swift-http-types")]
        ),
        .testTarget(
            name: "FerryCoreTests",
            dependencies: ["FerryCore", "FerryTestKit", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "MySQLBinlogTests",
            dependencies: ["MySQLBinlog", "MySQLTestKit", "FerryTestKit", "FerryCore", "CZlib", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "MySQLWireTests",
            dependencies: [
                "MySQLWire", "FerryCore", "WireTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .testTarget(name: "PostgresLogicalTests", dependencies: ["PostgresLogical", "FerryCore"]),
        .testTarget(
            name: "EtcdTests",
            dependencies: ["Etcd", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "ClusterTests",
            dependencies: ["Cluster", "Etcd", "FerryCore", "StateStore", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "PostgresWireTests",
            dependencies: [
                "PostgresWire", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "MySQLSourceTests",
            dependencies: ["MySQLSource", "MySQLBinlog", "MySQLTestKit", "FerryTestKit", "FerryCore", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "DiskLogTests",
            dependencies: ["DiskLog", "FerryTestKit"]
        ),
        .testTarget(
            name: "PipelineTests",
            dependencies: ["Pipeline", "Rules", "Documents", "DiskLog", "FerryCore", "FerryTestKit", "StateStore", "SinkSupport", "SQLiteSink", "FileSink", "RedisSink", "FerryApp", "MySQLSource", "ControlPlane", .product(name: "NIOConcurrencyHelpers", package: "swift-nio")]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "FerryApp", "PostgresSink", "PostgresWire", "WireTLS", "ClickHouseSink", "MariaDBSink", "SQLiteSink", "RedisSink", "Pipeline", "StateStore", "FileSink", "FerryTestKit", "MySQLSource",
                "MySQLWire", "MySQLBinlog", "PostgresLogical", "PostgresSource",
                "FerryCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)

/// The decoders and writers check exclusive access statically; the dynamic checks cost about a
/// tenth of decode time in release builds, so release builds of the hot-path targets skip them.
let hotPathTargets: Set<String> = ["FerryCore", "MySQLBinlog", "MySQLSource", "FerryApp", "DiskLog", "Pipeline", "SinkSupport",
                                   "PostgresSink", "SQLiteSink", "MariaDBSink", "FileSink", "RedisSink", "NATSSink", "ClickHouseSink"]

for target in package.targets where target.type != .system && target.type != .plugin {
    var settings = (target.swiftSettings ?? []) + swiftSettings
    if hotPathTargets.contains(target.name) {
        settings.append(.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)))
    }
    target.swiftSettings = settings
}
