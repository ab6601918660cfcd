import FerryCore
import Foundation
import Logging
import MySQLSource
import MySQLWire
import Testing
import WireTLS

/// All integration tests share one MariaDB; they run one at a time because some restart it or
/// change global settings.
@Suite(.serialized) struct Integration {}

/// The servers `scripts/services` started. A missing variable is a failure, never a skip.
enum TestEnvironment {
    static func value(_ name: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
            throw TestSetupError("\(name) is not set: start the servers with `eval \"$(scripts/services start)\"` or run ./scripts/test")
        }
        return value
    }

    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static func adminConfiguration(prefix: String = "FERRY_MARIADB") throws -> MySQLConnectionConfiguration {
        var configuration = try MySQLConnectionConfiguration(url: try value("\(prefix)_ADMIN_URL"))
        configuration.tls = .disable
        return configuration
    }

    static func sourceURL(prefix: String = "FERRY_MARIADB") throws -> String { try value("\(prefix)_URL") }
    static func sourcePassword(prefix: String = "FERRY_MARIADB") throws -> String { try value("\(prefix)_PASSWORD") }

    static func sourceConfiguration(name: String = "it", include: [String], ddl: Bool = false) throws -> MySQLSourceConfiguration {
        var connection = try MySQLConnectionConfiguration(url: try sourceURL(), password: try sourcePassword())
        connection.tls = .disable
        return MySQLSourceConfiguration(name: name, connection: connection, serverID: UInt32.random(in: 100_000...900_000),
                                        filter: TableFilter(include: include), heartbeatSeconds: 1,
                                        initialReconnectDelaySeconds: 0.2, maximumReconnectDelaySeconds: 2, includeDDL: ddl)
    }

    static var logger: Logger {
        var logger = Logger(label: "ferry.integration")
        logger.logLevel = .warning
        return logger
    }

    /// The `ferry` executable built alongside the tests.
    static var ferryBinary: String {
        if let path = ProcessInfo.processInfo.environment["FERRY_BINARY"] { return path }
        return repositoryRoot.appendingPathComponent(".build/debug/ferry").path
    }
}

struct TestSetupError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs statements as root on the test server.
func admin(_ statements: [String], prefix: String = "FERRY_MARIADB") async throws {
    try await MySQLConnection.withConnection(try TestEnvironment.adminConfiguration(prefix: prefix), logger: TestEnvironment.logger) { connection in
        for statement in statements { try await connection.execute(statement) }
    }
}

func adminQuery(_ sql: String, prefix: String = "FERRY_MARIADB") async throws -> QueryResult {
    try await MySQLConnection.withConnection(try TestEnvironment.adminConfiguration(prefix: prefix), logger: TestEnvironment.logger) { connection in
        try await connection.query(sql)
    }
}

/// A new empty directory for one test's files (the caller removes it).
func scratchDirectory(_ name: String) throws -> URL {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-\(name)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return directory
}

/// The server's current end of log, as a `--from` position.
func currentPosition() async throws -> StartPosition {
    let status = try await adminQuery("SHOW MASTER STATUS")
    return .coordinates(BinlogCoordinates(file: status.value("File")!, offset: UInt64(status.value("Position")!)!))
}

/// Every change of the included tables from `start` to the current end of log.
func collectChanges(from start: StartPosition, include: [String], ddl: Bool = false) async throws -> [ChangeEvent] {
    let source = MySQLSource(configuration: try TestEnvironment.sourceConfiguration(include: include, ddl: ddl), logger: TestEnvironment.logger)
    var events: [ChangeEvent] = []
    _ = try await source.run(from: start, stopAtCurrent: true) { transaction in events += transaction.events }
    return events
}

/// Runs one of the repository's Python test scripts (`scripts/NAME`) against the built ferry.
func runScript(_ name: String, _ arguments: [String], timeoutSeconds: Double) async throws -> (status: Int32, stdout: String, stderr: String) {
    let script = TestEnvironment.repositoryRoot.appendingPathComponent("scripts/\(name)").path
    return try await runProcess("/usr/bin/python3", [script] + arguments, environment: ["FERRY_BINARY": TestEnvironment.ferryBinary], timeoutSeconds: timeoutSeconds)
}

/// Runs a process to completion; returns exit status, stdout and stderr. Waits by suspending:
/// every test shares the process's two cooperative threads, and a test blocking one for a
/// script's minutes starved the timers of others (a cluster lease ran out unrenewed).
func runProcess(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                timeoutSeconds: Double = 60) async throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env.removeValue(forKey: "FERRY_SOURCE_PASSWORD")
    for (key, value) in environment { env[key] = value }
    process.environment = env
    let directory = try scratchDirectory("it")
    defer { try? FileManager.default.removeItem(at: directory) }
    let outURL = directory.appendingPathComponent("stdout"), errURL = directory.appendingPathComponent("stderr")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    process.standardOutput = try FileHandle(forWritingTo: outURL)
    process.standardError = try FileHandle(forWritingTo: errURL)
    try process.run()
    let deadline = Date().addingTimeInterval(timeoutSeconds)
    while process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
    if process.isRunning {
        process.terminate()
        throw TestSetupError("\(executable) \(arguments.joined(separator: " ")) did not finish within \(timeoutSeconds) s")
    }
    process.waitUntilExit()
    return (process.terminationStatus, try String(contentsOf: outURL, encoding: .utf8), try String(contentsOf: errURL, encoding: .utf8))
}

/// What `sqlite3 FILE SQL` prints; empty while the file does not exist yet.
func sqliteQuery(_ path: String, _ sql: String) async throws -> String {
    guard FileManager.default.fileExists(atPath: path) else { return "" }
    return try await runProcess("/usr/bin/sqlite3", [path, sql]).stdout
}

/// `ferry run -c config` in the background, its output discarded; the caller terminates it.
func startFerry(config: String, environment: [String: String] = [:]) throws -> Process {
    let ferry = Process()
    ferry.executableURL = URL(fileURLWithPath: TestEnvironment.ferryBinary)
    ferry.arguments = ["run", "-c", config]
    if !environment.isEmpty { ferry.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    ferry.standardOutput = FileHandle.nullDevice
    ferry.standardError = FileHandle.nullDevice
    try ferry.run()
    return ferry
}

/// Polls `condition` until it holds or the deadline passes.
func waitUntil(_ what: String, seconds: Double, _ condition: () async throws -> Bool) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: .milliseconds(Int64(seconds * 1000)))
    while clock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw TestSetupError("timed out after \(seconds) s waiting for \(what)")
}
