import FerryCore
import Logging
import MySQLSource
import MySQLWire

/// `ferry check --source URL`: connect and verify the source's prerequisites.
public enum Check {
    /// Prints the report; returns whether every required item passed.
    public static func run(sourceURL: String, password: String?, logger: Logger, print: (String) -> Void) async throws -> Bool {
        let configuration = try MySQLConnectionConfiguration(url: sourceURL, password: password)
        let report = try await MySQLConnection.withConnection(configuration, logger: logger) { connection in
            try await Prerequisites.check(connection, user: configuration.username)
        }
        print("source \(MySQLConnectionConfiguration.redacted(sourceURL)) — \(report.server)")
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
