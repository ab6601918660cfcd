import ArgumentParser
import FerryApp
import FerryCore
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Reads the source password from the environment; the URL may carry one instead.
func sourcePassword() -> String? {
    getenv("FERRY_SOURCE_PASSWORD").map { String(cString: $0) }
}

struct LoggingOptions: ParsableArguments {
    @Option(name: .long, help: "Log level on stderr: trace, debug, info, notice, warning, error (default: warning; for run, notice: one line per milestone).")
    var logLevel: String?

    @Option(name: .long, help: "Log format on stderr: text, or json (one object per line, with ferry.pipeline / ferry.table / ferry.position).")
    var logFormat: String = "text"

    func validate() throws {
        guard FerryLogging.Format(rawValue: logFormat) != nil else { throw ValidationError("--log-format must be text or json, not \(logFormat)") }
        if let logLevel, level == nil {
            throw ValidationError("--log-level must be trace, debug, info, notice, warning or error, not \(logLevel)")
        }
    }

    /// The level asked for; `nil` when none (or, before validation, an unknown one).
    private var level: Logger.Level? { logLevel.flatMap { Logger.Level(rawValue: $0.lowercased()) } }

    func bootstrap(defaultLevel: Logger.Level = .warning) -> Logger {
        FerryLogging.bootstrap(level: level ?? defaultLevel,
                               format: FerryLogging.Format(rawValue: logFormat) ?? .text)
    }
}

/// Runs `body`; prints errors in Ferry's one-line form and exits non-zero.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch is CancellationError {
        throw ExitCode(130)
    } catch let error as ExitCode {
        throw error
    } catch {
        FileHandleStandardError.write(ErrorReport.line(error) + "\n")
        throw ExitCode(1)
    }
}

enum FileHandleStandardError {
    static func write(_ text: String) {
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}

/// Reads the configuration file with the process environment for `${NAME}`.
func loadConfiguration(_ path: String, allowUnsetVariables: Bool = false) throws -> FerryConfiguration {
    var environment: [String: String] = [:]
    var pointer = environ
    while let entry = pointer.pointee {
        let text = String(cString: entry)
        if let equals = text.firstIndex(of: "=") { environment[String(text[..<equals])] = String(text[text.index(after: equals)...]) }
        pointer += 1
    }
    return try FerryConfiguration.load(path: path, environment: environment, allowUnsetVariables: allowUnsetVariables)
}

/// `-c FILE`, shared by every command that reads a configuration.
struct ConfigurationFileOption: ParsableArguments {
    @Option(name: [.short, .long], help: "Configuration file (YAML).")
    var config: String

    func load(allowUnsetVariables: Bool = false) throws -> FerryConfiguration {
        try loadConfiguration(config, allowUnsetVariables: allowUnsetVariables)
    }
}
