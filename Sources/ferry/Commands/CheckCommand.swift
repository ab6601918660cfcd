import ArgumentParser
import FerryApp
import FerryCore
import Logging

struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Verify a source's prerequisites (binlog or logical WAL settings, privileges, publication, replica identities) and print the SQL that fixes each missing one; with -c, check a whole configuration.",
        discussion: """
        Examples:
          ferry check --source mysql://ferry@127.0.0.1:3306
          ferry check --source 'postgres://ferry@127.0.0.1:5432/shop?publication=ferry&slot=ferry'
          FERRY_SOURCE_PASSWORD=secret ferry check --source mysql://ferry@db.internal:3306
          ferry check -c ferry.yml      # the file, every source and every sink
        """
    )

    @Option(name: .long, help: "Source URL: mysql://USER[:PASSWORD]@HOST:PORT, or postgres://USER[:PASSWORD]@HOST:PORT/DATABASE?publication=NAME[&slot=NAME].")
    var source: String?

    @Option(name: [.short, .long], help: "Configuration file (YAML) to check, with every source and sink.")
    var config: String?

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap()
        try await reportingErrors {
            let passed: Bool
            if let config {
                passed = try await Check.run(configuration: try loadConfiguration(config), logger: logger) { print($0) }
            } else if let source {
                passed = try await Check.run(sourceURL: source, password: sourcePassword(), logger: logger) { print($0) }
            } else {
                throw FerryError(code: .cliInvalidOption, message: "ferry check needs --source URL or -c FILE")
            }
            if !passed { throw ExitCode(1) }
        }
    }
}
