import ArgumentParser
import FerryApp
import FerryCore

struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Explain an error code: what it means and how to fix it (every code: docs/errors.md); or list every configuration key.",
        discussion: """
        Examples:
          ferry explain source.binlog.purged
          ferry explain                     # every code, one per line
          ferry explain --markdown          # the whole catalog, as docs/errors.md
          ferry explain --configuration     # every sink type's keys, as docs/configuration.md
        """
    )

    @Argument(help: "The code in the brackets of an error line, e.g. sink.postgres.unavailable.")
    var code: String?

    @Flag(name: .long, help: "Print the whole catalog as Markdown.")
    var markdown = false

    @Flag(name: .long, help: "Print the configuration reference (every sink type's keys, defaults and meaning) as Markdown.")
    var configuration = false

    func run() throws {
        if configuration {
            print(ConfigurationReference.markdown(), terminator: "")
            return
        }
        if markdown {
            print(FerryError.Code.catalogMarkdown(), terminator: "")
            return
        }
        guard let code else {
            for code in FerryError.Code.all { print("\(code.rawValue)  \(code.explanation?.meaning.prefix { $0 != "." } ?? "")") }
            return
        }
        let text = code.hasPrefix("error[") ? String(code.dropFirst(6).prefix { $0 != "]" }) : code
        guard let found = FerryError.Code(code: text), let explanation = found.explanation else {
            FileHandleStandardError.write(FerryError(code: .cliInvalidOption, message: "'\(code)' is not an error code of this ferry",
                                                     fix: "run ferry explain without an argument for the list").description + "\n")
            throw ExitCode(1)
        }
        print("\(found.rawValue)\n\n\(explanation.meaning)\n\nFix: \(explanation.fix)")
    }
}
