import FerryCore
import Logging
import MySQLSource
import NIOConcurrencyHelpers
import PostgresSource

/// What each source keeps that a pipeline needs, read every `interval` by one loop (which alone
/// owns the cache of when each binlog file started), with a warning once when it is at risk
/// (again after it recovered). One per control plane. A MySQL-family source: how long it keeps
/// the binlog file a pipeline's safe position is in. A PostgreSQL source: how much WAL its slot
/// holds.
final class RetentionWatch: Sendable {
    static let interval = Duration.seconds(30)
    private let reports = NIOLockedValueBox<[String: BinlogRetention.Report]>([:])
    private let slots = NIOLockedValueBox<[String: SlotRetention]>([:])
    let logger: Logger

    init(logger: Logger) { self.logger = logger }

    /// The last report of `pipeline`; nil while nothing is at risk.
    func report(_ pipeline: String) -> BinlogRetention.Report? { reports.withLockedValue { $0[pipeline] } }

    /// The last figure of a PostgreSQL pipeline's slot.
    func slotReport(_ pipeline: String) -> SlotRetention? { slots.withLockedValue { $0[pipeline] } }

    /// Looks every `interval` until cancelled. `safePositions` answers, for the pipelines to
    /// watch, where each is safe up to.
    func run(configuration: @Sendable () -> FerryConfiguration, safePositions: @Sendable () async -> [String: SourcePosition]) async {
        var fileStarts: [String: [String: Double]] = [:]
        while !Task.isCancelled {
            await look(configuration: configuration(), safePositions: await safePositions(), fileStarts: &fileStarts)
            try? await Task.sleep(for: Self.interval)
        }
    }

    func look(configuration: FerryConfiguration, safePositions: [String: SourcePosition], fileStarts: inout [String: [String: Double]]) async {
        await lookAtSlots(configuration: configuration, pipelines: Set(safePositions.keys))
        var needed: [String: [String: String]] = [:]
        for spec in configuration.pipelines {
            guard let file = safePositions[spec.name]?.binlog?.coordinates.file else { continue }
            needed[spec.source, default: [:]][spec.name] = file
        }
        var found: [String: BinlogRetention.Report] = [:]
        for (name, files) in needed {
            guard let source = configuration.sources[name] else { continue }
            do {
                found.merge(try await Status.binlogRetention(source, neededFiles: files, fileStarts: &fileStarts[name, default: [:]], logger: logger)) { $1 }
            } catch {
                logger.debug("cannot read the source's binlog retention", metadata: [LoggingKeys.source: "\(name)", LoggingKeys.error: .error(error)])
                for pipeline in files.keys { found[pipeline] = report(pipeline) }
            }
        }
        publish(found, into: reports, atRisk: \.isLow) { pipeline, report in
            FerryError(code: .sourceBinlogRetentionLow, message: "the source's binlog retention is running out: \(report.summary)",
                       context: [("pipeline", pipeline)], fix: BinlogRetention.Report.fix)
        }
    }

    private func lookAtSlots(configuration: FerryConfiguration, pipelines: Set<String>) async {
        var found: [String: SlotRetention] = [:]
        for spec in configuration.pipelines where pipelines.contains(spec.name) {
            guard let source = configuration.sources[spec.source], PostgresSourceConfiguration.isPostgresURL(source.url) else { continue }
            do {
                if let retention = try await Status.slotRetention(source, pipeline: spec.name, logger: logger) { found[spec.name] = retention }
            } catch {
                logger.debug("cannot read the slot's WAL retention", metadata: [LoggingKeys.pipeline: "\(spec.name)", LoggingKeys.error: .error(error)])
                if let last = slotReport(spec.name) { found[spec.name] = last }
            }
        }
        publish(found, into: slots, atRisk: \.isHigh) { pipeline, retention in
            FerryError(code: .sourcePostgresWALRetentionHigh, message: "the source keeps a lot of WAL for the pipeline: \(retention.summary)",
                       context: [("pipeline", pipeline)], fix: SlotRetention.fix)
        }
    }

    /// Keeps `found` as the latest figures and warns once for each pipeline newly at risk (again
    /// after it recovered).
    private func publish<Figure: Sendable>(_ found: [String: Figure], into box: NIOLockedValueBox<[String: Figure]>, atRisk: (Figure) -> Bool,
                                           warning: (String, Figure) -> FerryError) {
        let previous = box.withLockedValue { current in
            defer { current = found }
            return current
        }
        for (pipeline, figure) in found.sorted(by: { $0.key < $1.key }) where atRisk(figure) && previous[pipeline].map(atRisk) != true {
            let warning = warning(pipeline, figure)
            logger.warning("\(warning.message)", metadata: [LoggingKeys.pipeline: "\(pipeline)", LoggingKeys.error: .error(warning)])
        }
    }
}
