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
        var wait = 0.2
        while true {
            do {
                return try await builder.validate()
            } catch let error where isLostConnection(error) && !Task.isCancelled {
                logger.warning("lost the source connection while checking the documents' tables; retrying", metadata: [
                    LoggingKeys.pipeline: "\(pipeline)", LoggingKeys.error: .error(error), LoggingKeys.retryIn: .seconds(wait),
                ])
                try await Task.sleep(for: .milliseconds(Int64(wait * 1000)))
                wait = min(30, wait * 2)
            }
        }
    }

    func extend(_ transaction: Transaction) async throws -> Transaction {
        try await builder.extend(transaction, retryingWhile: isLostConnection) { error, wait in
            logger.warning("lost the connection that renders documents; retrying", metadata: [
                LoggingKeys.pipeline: "\(pipeline)", LoggingKeys.position: "\(transaction.position)", LoggingKeys.error: .error(error),
                LoggingKeys.retryIn: .seconds(wait),
            ])
        }
    }
}
