import ArgumentParser
import BuildInfo
import FerryApp
import FerryCore
import Logging
import MySQLSource

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

@main
struct Ferry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ferry",
        abstract: "Change-data capture: follow a database's change log and deliver every committed change.",
        version: BuildInfo.versionLine,
        subcommands: [InitCommand.self, RunCommand.self, ExplainCommand.self, StatusCommand.self, TailCommand.self, CheckCommand.self, ReadBinlogCommand.self, SinkCommand.self, SnapshotCommand.self, VerifyCommand.self, TokenCommand.self]
    )
}

struct TailCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tail",
        abstract: "Print every committed row change of a MySQL/MariaDB source as one JSON line.",
        discussion: """
        Registers as a replica and follows the binlog. Positions printed in each line
        (source.file/source.pos, or source.gtid_pos) can be given to --from to resume
        exactly after that transaction. The password may come from FERRY_SOURCE_PASSWORD.

        Examples:
          ferry tail --source mysql://ferry@127.0.0.1:3306
          ferry tail --source mysql://ferry@db:3306 --from earliest --to current --include 'shop.*'
          ferry tail --source mysql://ferry@db:3306 --from mariadb-bin.000003:1234 --format compact
          ferry tail --source mysql://ferry@db:3306 --from 0-1-1500 --ddl
          ferry tail --source 'mysql://ferry@db:3306?tls=verify-full&ssl-ca=/etc/ssl/ca.pem'
        """
    )

    @Option(name: .long, help: "Source URL: mysql://USER[:PASSWORD]@HOST:PORT[?tls=disable|prefer|require|verify-ca|verify-full&ssl-ca=FILE].")
    var source: String

    @Option(name: .long, help: "Where to start: earliest, current, FILE:OFFSET, or a GTID position. Resumes after it.")
    var from: String = "current"

    @Option(name: .long, help: "Stop after this position; only 'current' (the server's end of log at start) is supported.")
    var to: String?

    @Option(name: .long, help: "Only tables matching this glob (db.table, * and ?); repeatable.")
    var include: [String] = []

    @Option(name: .long, help: "Skip tables matching this glob; repeatable.")
    var exclude: [String] = []

    @Option(name: .long, help: "Output format: debezium, debezium-schema (with Kafka Connect's schema block), compact, or none (decode and count only, for benchmarks).")
    var format: String = "debezium"

    @Flag(name: .long, help: "Also print DDL statements as {\"op\":\"ddl\",…} lines.")
    var ddl = false

    @Option(name: .long, help: "Replica server_id to register with (default: derived from the process id).")
    var serverID: UInt32?

    @Option(name: .long, help: "Name put in source.name.")
    var name: String = "ferry"

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap()
        try await reportingErrors {
            let countOnly = format == "none"
            guard let writerFormat = countOnly ? EventJSONWriter.Format.compact : EventJSONWriter.Format(rawValue: format) else {
                throw FerryError(code: .cliInvalidOption, message: "--format \(format) is not debezium, debezium-schema, compact or none")
            }
            if let to, to.lowercased() != "current" {
                throw FerryError(code: .cliInvalidOption, message: "--to \(to) is not supported", fix: "use --to current")
            }
            let start = try StartPosition(parsing: from)
            FileDescriptorOutput.ignoreBrokenPipeSignal()
            let options = TailOptions(sourceURL: source, password: sourcePassword(), from: start, toCurrent: to != nil,
                                      include: include, exclude: exclude, format: writerFormat, countOnly: countOnly, includeDDL: ddl,
                                      serverID: serverID ?? UInt32(1_000_000 + getpid() % 1_000_000), sourceName: name)
            try await Tail.run(options, output: FileDescriptorOutput(descriptor: 1), logger: logger)
        }
    }
}

struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Verify a source's prerequisites (binlog settings, privileges) and print the SQL that fixes each missing one; with -c, check a whole configuration.",
        discussion: """
        Examples:
          ferry check --source mysql://ferry@127.0.0.1:3306
          FERRY_SOURCE_PASSWORD=secret ferry check --source mysql://ferry@db.internal:3306
          ferry check -c ferry.yml      # the file, every source and every sink
        """
    )

    @Option(name: .long, help: "Source URL: mysql://USER[:PASSWORD]@HOST:PORT.")
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

struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Check a source, list its tables (rows, size, key) and write a commented starter configuration.",
        discussion: """
        The file runs as written: one pipeline from the source's databases into the sinks named.
        Tables without a key are flagged in it. Passwords are not written: the file reads them from
        the environment (FERRY_SOURCE_PASSWORD, FERRY_<SINK>_PASSWORD).

        Examples:
          ferry init --source mysql://ferry@127.0.0.1:3306 --database shop
          ferry init --source mysql://ferry@db:3306 --sink postgres://ferry@pg:5432/replica --sink jsonl:./changes -o shop.yml
        """
    )

    @Option(name: .long, help: "Source URL: mysql://USER[:PASSWORD]@HOST:PORT (the password may come from FERRY_SOURCE_PASSWORD).")
    var source: String

    @Option(name: .long, help: "A database to replicate; repeat for several. Default: every database but the server's own.")
    var database: [String] = []

    @Option(name: .long, help: "A sink: sqlite:PATH, jsonl:DIRECTORY, or a postgres://, mysql://, mariadb://, redis:// or nats:// URL; repeat for several. Default: sqlite:./replica.sqlite.")
    var sink: [String] = []

    @Option(name: .long, help: "The data_dir the file sets (state file, disk buffers).")
    var dataDir: String = "./ferry-data"

    @Option(name: [.short, .long], help: "The file to write.")
    var output: String = "ferry.yml"

    @Flag(name: .long, help: "Replace the file if it exists.")
    var force = false

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap()
        try await reportingErrors {
            let ready = try await Init.run(sourceURL: source, password: sourcePassword(), databases: database, sinkSpecs: sink,
                                           dataDirectory: dataDir, output: output, overwrite: force, logger: logger) { print($0) }
            if !ready { throw ExitCode(1) }
        }
    }
}

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

struct ReadBinlogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "read-binlog",
        abstract: "Decode MySQL/MariaDB binlog files from disk and print their row changes as JSON lines.",
        discussion: """
        Uses the same decoder as `ferry tail`. Column names come from the files' TABLE_MAP
        metadata (binlog_row_metadata=FULL); without it columns are named col_1, col_2, …

        Examples:
          ferry read-binlog /var/lib/mysql/mariadb-bin.000042
          ferry read-binlog --format compact --include 'shop.*' mariadb-bin.000001 mariadb-bin.000002
          ferry read-binlog --format none --stats mariadb-bin.000007     # decode and count only
        """
    )

    @Argument(help: "Binlog files, in order.")
    var files: [String]

    @Option(name: .long, help: "Output: debezium, compact, or none (decode to typed rows, print nothing).")
    var format: String = "debezium"

    @Option(name: .long, help: "Only tables matching this glob; repeatable.")
    var include: [String] = []

    @Option(name: .long, help: "Skip tables matching this glob; repeatable.")
    var exclude: [String] = []

    @Flag(name: .long, help: "Print files, bytes, events and rows on stderr when done.")
    var stats = false

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        _ = logging.bootstrap()
        try await reportingErrors {
            guard let output = BinlogFileDecoder.Output(rawValue: format) else {
                throw FerryError(code: .cliInvalidOption, message: "--format \(format) is not debezium, compact or none")
            }
            FileDescriptorOutput.ignoreBrokenPipeSignal()
            do {
                let statistics = try BinlogFileDecoder.run(paths: files, output: output, filter: TableFilter(include: include, exclude: exclude),
                                                           writer: FileDescriptorOutput(descriptor: 1))
                if stats {
                    FileHandleStandardError.write("files=\(statistics.files) bytes=\(statistics.bytes) events=\(statistics.events) rows=\(statistics.rows)\n")
                }
            } catch is FileDescriptorOutput.OutputClosed {
                return
            }
        }
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

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run every pipeline of a configuration file until SIGTERM or SIGINT (then drain, commit and exit 0).",
        discussion: """
        Each pipeline resumes after the lowest position its sinks have applied (SQL sinks keep it
        in their own ferry_offsets table), so a crash or kill at any moment loses and doubles nothing.

        Examples:
          ferry run -c ferry.yml
          SHOP_PASSWORD=secret ferry run -c /etc/ferry/ferry.yml --log-level info
          ferry run -c ferry.yml --from mariadb-bin.000042:4    # start position for pipelines without one
        """
    )

    @Option(name: [.short, .long], help: "Configuration file (YAML).")
    var config: String

    @Option(name: .long, help: "Start position for pipelines that have no saved position (overrides `start:`).")
    var from: String?

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap(defaultLevel: .notice)
        try await reportingErrors {
            var configuration = try loadConfiguration(config)
            if let from {
                let start = try StartPosition(parsing: from)
                for index in configuration.pipelines.indices { configuration.pipelines[index].start = start }
            }
            try await Run.run(configuration: configuration, logger: logger)
        }
    }
}

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

    @Option(name: [.short, .long], help: "Configuration file (YAML).")
    var config: String

    @Flag(name: .long, help: "Print JSON: {\"pipelines\":[{\"name\",\"state\",\"source_position\",\"sinks\":[…]}]}.")
    var json = false

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap()
        try await reportingErrors {
            // Status contacts only the source (for its log end): the sinks' secrets need not be set.
            let reports = try await Status.collect(configuration: try loadConfiguration(config, allowUnsetVariables: true), logger: logger)
            print(json ? Status.json(reports) : Status.text(reports))
        }
    }
}

struct SnapshotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Snapshot tables of a running pipeline while it streams, and show the progress.",
        discussion: """
        The request is kept in the state store; the running pipeline (`ferry run`) starts it within a
        second, reading the tables in key-range chunks without locks while changes keep flowing.
        With no TABLE, every table the pipeline replicates is read again. Progress is shown until
        the tables are done: live bars on a terminal, a line per table every 5 s otherwise.

        Examples:
          ferry snapshot -c ferry.yml shop-to-replica shop.orders shop.customers
          ferry snapshot -c ferry.yml shop-to-replica --no-wait
          ferry snapshot -c ferry.yml shop-to-replica --watch     # the initial snapshot of `ferry run`
        """
    )

    @Option(name: [.short, .long], help: "Configuration file (YAML).")
    var config: String

    @Argument(help: "Pipeline name.")
    var pipeline: String

    @Argument(help: "Tables as DATABASE.TABLE; none means all the pipeline replicates.")
    var tables: [String] = []

    @Flag(name: .long, help: "Return after recording the request instead of following the progress.")
    var noWait = false

    @Flag(name: .long, help: "Request nothing; follow the snapshots already running (e.g. the initial one of `ferry run`).")
    var watch = false

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap()
        try await reportingErrors {
            let configuration = try loadConfiguration(config)
            if watch {
                try await Snapshots.follow(configuration: configuration, pipeline: pipeline, tables: [], terminal: isatty(STDOUT_FILENO) == 1, logger: logger)
                return
            }
            let requested = try await Snapshots.request(configuration: configuration, pipeline: pipeline, tables: tables, logger: logger)
            print("snapshot of \(requested.count) table(s) requested for pipeline \(pipeline); `ferry run` starts it within a second")
            guard !noWait else { return }
            try await Snapshots.follow(configuration: configuration, pipeline: pipeline, tables: Set(requested),
                                       terminal: isatty(STDOUT_FILENO) == 1, logger: logger)
        }
    }
}

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

    @Option(name: [.short, .long], help: "Configuration file (YAML).")
    var config: String

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
            let configuration = try loadConfiguration(config)
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

struct SinkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sink",
        abstract: "Operate on one sink of a pipeline.",
        subcommands: [SinkRewindCommand.self]
    )
}

struct SinkRewindCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rewind",
        abstract: "Replay a sink from an earlier position (from the disk buffer while it reaches back).",
        discussion: """
        The request is kept in the state store and honoured when the pipeline next starts; other
        sinks of the pipeline are not affected. Replay is harmless: table sinks upsert, file sinks
        carry stable event ids.

        Examples:
          ferry sink rewind -c ferry.yml shop-to-replica replica mariadb-bin.000042:4
        """
    )

    @Option(name: [.short, .long], help: "Configuration file (YAML).")
    var config: String

    @Argument(help: "Pipeline name.")
    var pipeline: String

    @Argument(help: "Sink name.")
    var sink: String

    @Argument(help: "Position FILE:OFFSET; every change after it is applied again.")
    var position: String

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap()
        try await reportingErrors {
            print(try await SinkRewind.request(configuration: try loadConfiguration(config), pipeline: pipeline, sink: sink,
                                               position: position, logger: logger))
        }
    }
}

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Make, list and revoke API tokens for the web page and the API.",
        discussion: """
        Roles: viewer (read everything but the configuration), operator (also pause, resume,
        restart, snapshot), admin (also rewind sinks, read the redacted configuration). Only a
        token's SHA-256 is stored; the token is printed once.

        Examples:
          ferry token create -c ferry.yml --name grafana --role viewer
          ferry token list -c ferry.yml
          ferry token revoke -c ferry.yml --name grafana
        """,
        subcommands: [TokenCreateCommand.self, TokenListCommand.self, TokenRevokeCommand.self]
    )
}

struct TokenCreateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Make a token and print it (once).")

    @Option(name: [.short, .long], help: "Configuration file (YAML).")
    var config: String

    @Option(name: .long, help: "Name shown in the audit log.")
    var name: String

    @Option(name: .long, help: "viewer, operator or admin.")
    var role: String

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap()
        try await reportingErrors {
            let token = try await Tokens.create(configuration: try loadConfiguration(config), name: name, role: role, logger: logger)
            print(token)
            FileHandleStandardError.write("token \(name) (\(role)) made; it is shown only now: use it as `Authorization: Bearer <token>` or paste it into the web page\n")
        }
    }
}

struct TokenListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List tokens (names and roles; tokens themselves are not kept).")

    @Option(name: [.short, .long], help: "Configuration file (YAML).")
    var config: String

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap()
        try await reportingErrors {
            for token in try await Tokens.list(configuration: try loadConfiguration(config), logger: logger) {
                print("\(token.name)\t\(token.role)\tcreated \(token.createdAt)")
            }
        }
    }
}

struct TokenRevokeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke a token at once (running servers included).")

    @Option(name: [.short, .long], help: "Configuration file (YAML).")
    var config: String

    @Option(name: .long, help: "The token's name.")
    var name: String

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap()
        try await reportingErrors {
            try await Tokens.revoke(configuration: try loadConfiguration(config), name: name, logger: logger)
            print("token \(name) revoked")
        }
    }
}
