import ArgumentParser
import BuildInfo
import FerryApp
import FerryCore

@main
struct Ferry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ferry",
        abstract: "Change-data capture: follow a database's change log and deliver every committed change.",
        version: BuildInfo.versionLine,
        subcommands: [InitCommand.self, RunCommand.self, ExplainCommand.self, StatusCommand.self, TailCommand.self, CheckCommand.self, ReadBinlogCommand.self, SinkCommand.self, SnapshotCommand.self, VerifyCommand.self, TokenCommand.self]
    )
}
