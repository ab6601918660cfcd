import ArgumentParser
import FerryApp
import FerryCore
import Logging

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show each pipeline's state, positions and lag.",
        discussion: """
        Examples:
          ferry status -c ferry.yml
          ferry status -c ferry.yml --json | jq '.pipelines[].sinks[].lag_bytes'
        """
    )

    @OptionGroup var configFile: ConfigurationFileOption

    @Flag(name: .long, help: "Print JSON: {\"pipelines\":[{\"name\",\"state\",\"source_position\",\"sinks\":[…]}]}.")
    var json = false

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap()
        try await reportingErrors {
            // Status contacts only the source (for its log end): the sinks' secrets need not be set.
            let reports = try await Status.collect(configuration: try configFile.load(allowUnsetVariables: true), logger: logger)
            print(json ? Status.json(reports) : Status.text(reports))
        }
    }
}
