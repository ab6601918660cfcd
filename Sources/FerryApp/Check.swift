import FerryCore
import Logging
import MySQLSource
import MySQLWire
import Pipeline
import PostgresSource

/// `ferry check --source URL`: connect and verify the source's prerequisites.
public enum Check {
    /// `ferry check -c FILE`: the file is valid (it was loaded), every source meets the
    /// prerequisites, every sink opens, and no pipeline's server_id is taken by another replica.
    public static func run(configuration: FerryConfiguration, logger: Logger, print: (String) -> Void) async throws -> Bool {
        var passed = true
        print("configuration \(configuration.file): valid")
        for source in configuration.sources.values.sorted(by: { $0.name < $1.name }) {
            let pipelines = configuration.pipelines.filter { $0.source == source.name }
            do {
                passed = try await run(sourceURL: source.url, password: source.password, logger: logger, print: print) && passed
                let connection = try MySQLConnectionConfiguration(url: source.url, password: source.password)
                guard let replicas = try await registeredReplicas(connection, logger: logger) else {
                    print("  note: server_id clashes with other replicas not checked: SHOW SLAVE HOSTS needs REPLICATION MASTER ADMIN on MariaDB, which ferry run does not need")
                    continue
                }
                for pipeline in pipelines where replicas.contains(pipeline.serverID) {
                    print("  warning pipeline \(pipeline.name): server_id \(pipeline.serverID) is registered by a replica of \(source.name) right now (fine if it is this pipeline running; otherwise set server_id:)")
                }
            } catch {
                passed = false
                print("source \(source.name): \(ErrorReport.line(error))")
            }
        }
        for pipeline in configuration.pipelines {
            let runner = try Run.buildRunner(pipeline, configuration: configuration, store: NoCheckpoints(), logger: logger)
            for sink in runner.sinkList {
                do {
                    let session = try sink.makeSession()
                    do {
                        _ = try await session.open()
                    } catch {
                        try? await session.close()
                        throw error
                    }
                    try await session.close()
                    print("sink \(sink.name) (pipeline \(pipeline.name)): ok")
                } catch {
                    passed = false
                    print("sink \(sink.name) (pipeline \(pipeline.name)): \(ErrorReport.line(error))")
                }
            }
        }
        return passed
    }

    /// The server ids of the replicas registered with the source; `nil` when the account may not
    /// list them (an optional check: the replication user is not given that privilege).
    static func registeredReplicas(_ connection: MySQLConnectionConfiguration, logger: Logger) async throws -> Set<UInt32>? {
        try await MySQLConnection.withConnection(connection, logger: logger) { query in
            do {
                return Set(try await query.query("SHOW SLAVE HOSTS").rows.compactMap { $0[0].flatMap { UInt32($0) } })
            } catch MySQLWireError.server(let packet, _) where [1227, 1142].contains(packet.errorCode) {
                return nil
            }
        }
    }

    /// Prints the report; returns whether every required item passed.
    public static func run(sourceURL: String, password: String?, logger: Logger, print: (String) -> Void) async throws -> Bool {
        let report: PrerequisiteReport
        if PostgresSourceConfiguration.isPostgresURL(sourceURL) {
            report = try await PostgresPrerequisites.check(try PostgresSourceConfiguration(name: "source", url: sourceURL, password: password), logger: logger)
        } else {
            let configuration = try MySQLConnectionConfiguration(url: sourceURL, password: password)
            report = try await MySQLConnection.withConnection(configuration, logger: logger) { connection in
                try await Prerequisites.check(connection, user: configuration.username)
            }
        }
        print("source \(Secrets.redactedURL(sourceURL)) — \(report.server)")
        for item in report.items {
            let mark = switch item.status {
            case .ok: "ok     "
            case .warning: "warning"
            case .failed: "FAILED "
            }
            print("  \(mark) \(item.name): \(item.detail)")
            if let fix = item.fix, item.status != .ok { print("          fix: \(fix)") }
        }
        print(report.passed ? "all prerequisites met" : "some prerequisites are missing; run the fixes above")
        return report.passed
    }
}

/// A store that remembers nothing, for building runners that are only checked, never run.
struct NoCheckpoints: CheckpointStore {
    func checkpoint(pipeline: String) async throws -> PipelineCheckpoint? { nil }
    func saveSafePosition(_ position: SourcePosition, pipeline: String) async throws {}
    func saveSinkPositions(pipeline: String, sink: String, queued: SourcePosition?, applied: SourcePosition?) async throws {}
    func audit(pipeline: String, action: String, detail: String) async throws {}
    func saveProgress(_ progress: PipelineProgress) async throws {}
    func clearRewind(pipeline: String, sink: String) async throws {}
}
