import ArgumentParser
import FerryApp
import FerryCore
import Logging

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

    @OptionGroup var configFile: ConfigurationFileOption

    @Option(name: .long, help: "Name shown in the audit log.")
    var name: String

    @Option(name: .long, help: "viewer, operator or admin.")
    var role: String

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap()
        try await reportingErrors {
            let token = try await Tokens.create(configuration: try configFile.load(), name: name, role: role, logger: logger)
            print(token)
            FileHandleStandardError.write("token \(name) (\(role)) made; it is shown only now: use it as `Authorization: Bearer <token>` or paste it into the web page\n")
        }
    }
}

struct TokenListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List tokens (names and roles; tokens themselves are not kept).")

    @OptionGroup var configFile: ConfigurationFileOption

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap()
        try await reportingErrors {
            for token in try await Tokens.list(configuration: try configFile.load(), logger: logger) {
                print("\(token.name)\t\(token.role)\tcreated \(token.createdAt)")
            }
        }
    }
}

struct TokenRevokeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke a token at once (running servers included).")

    @OptionGroup var configFile: ConfigurationFileOption

    @Option(name: .long, help: "The token's name.")
    var name: String

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap()
        try await reportingErrors {
            try await Tokens.revoke(configuration: try configFile.load(), name: name, logger: logger)
            print("token \(name) revoked")
        }
    }
}
