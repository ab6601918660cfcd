import Documents
import FerryCore
import Logging

/// A pipeline's `documents:` as its source delivers: each transaction extended by a change per
/// document it affects, read from the source's current rows through `rows`, and the reads tried
/// again while the source's connection is lost.
struct PipelineDocuments {
    let builder: DocumentBuilder
    let pipeline: String
    let isLostConnection: @Sendable (any Error) -> Bool
    let logger: Logger

    /// Nil when the pipeline defines no documents.
    init?(_ pipeline: FerryConfiguration.Pipeline, rows: @autoclosure () -> any DocumentRowSource,
          isLostConnection: @escaping @Sendable (any Error) -> Bool, logger: Logger) {
        guard !pipeline.documents.isEmpty else { return nil }
        builder = DocumentBuilder(definitions: pipeline.documents, source: rows())
        self.pipeline = pipeline.name
        self.isLostConnection = isLostConnection
        self.logger = logger
    }

    /// Checks every definition against the source's tables; waits while the source is away.
    func validate() async throws {
        try await retrying("lost the source connection while checking the documents' tables; retrying") { try await builder.validate() }
    }

    func extend(_ transaction: Transaction) async throws -> Transaction {
        try await retrying("lost the connection that renders documents; retrying", at: transaction.position) { try await builder.extend(transaction) }
    }

    /// `body`, tried again with backoff (0.2 s doubling, at most 30 s apart) while the source's
    /// connection is lost; anything else is thrown.
    private func retrying<T>(_ warning: Logger.Message, at position: SourcePosition? = nil, _ body: () async throws -> T) async throws -> T {
        var wait = 0.2
        while true {
            do {
                return try await body()
            } catch let error where isLostConnection(error) && !Task.isCancelled {
                var metadata: Logger.Metadata = [LoggingKeys.pipeline: "\(pipeline)", LoggingKeys.error: .error(error), LoggingKeys.retryIn: .seconds(wait)]
                if let position { metadata[LoggingKeys.position] = "\(position)" }
                logger.warning(warning, metadata: metadata)
                try await Task.sleep(for: .milliseconds(Int64(wait * 1000)))
                wait = min(30, wait * 2)
            }
        }
    }
}
