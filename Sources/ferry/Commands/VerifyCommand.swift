import ArgumentParser
import FerryApp
import FerryCore
import Logging

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Prove that every table sink holds what the source holds; optionally repair what differs.",
        discussion: """
        Reads each source table in key order, chunk by chunk, shaped by the pipeline's mapping, and
        has each table sink's database compare the chunk with its table by key over every column.
        Rows may be in flight while the pipeline runs: differences are checked again once the sink
        has applied everything up to where they were seen. Prints matching and differing chunks and
        rows per table and sink; exits 1 when something still differs. With --repair, the running
        pipeline reads the differing keys again (keys the source no longer has are deleted).

        Examples:
          ferry verify -c ferry.yml
          ferry verify -c ferry.yml shop-to-replica shop.orders --repair
        """
    )

    @OptionGroup var configFile: ConfigurationFileOption

    @Argument(help: "Pipeline name (default: every pipeline), then tables as DATABASE.TABLE (default: all it replicates).")
    var names: [String] = []

    @Flag(name: .long, help: "Have the running pipeline read the differing keys again.")
    var repair = false

    @Option(name: .long, help: "Rows per chunk.")
    var chunkRows = 10_000

    @Option(name: .long, help: "Seconds to wait for in-flight changes before the re-check.")
    var settleSeconds = 60

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap()
        try await reportingErrors {
            let configuration = try configFile.load()
            var options = Verify.Options()
            options.repair = repair
            options.chunkRows = max(1, chunkRows)
            options.settleSeconds = Double(max(0, settleSeconds))
            let pipeline = names.first
            let reports = try await Verify.run(configuration: configuration, pipeline: pipeline, tables: Array(names.dropFirst()),
                                               options: options, logger: logger) { print($0) }
            let skipped = reports.filter(\.skipped)
            let differing = reports.filter { !$0.matches && !$0.skipped }
            let equal = reports.count - skipped.count - differing.count
            print("verify: \(reports.count - skipped.count) table(s) compared in \(Set(reports.map(\.sink)).count) sink(s): \(equal) equal, "
                  + "\(differing.count) not equal" + (repair ? " after the repair" : "") + ", \(skipped.count) skipped")
            let named = Set(names.dropFirst())
            if let unchecked = skipped.first(where: { named.contains($0.table.description) }) {
                throw FerryError(code: .cliTableNotVerifiable, message: "table \(unchecked.table) cannot be verified: it has no key to match rows by",
                                 fix: "give it a primary key or unique NOT NULL index in the source, or give the pipeline a mapping for it with `key: [COLUMNS]`")
            }
            // 0 only when every compared table is equal — with --repair, once the repair was applied and re-checked.
            if !differing.isEmpty { throw ExitCode(1) }
        }
    }
}
