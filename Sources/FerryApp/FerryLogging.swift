import ControlPlane
import FerryCore
import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers

/// Ferry's logging: text or JSON lines on stderr, with `ferry.pipeline` / `ferry.table` /
/// `ferry.position` metadata; every warning and error is also kept (the last few per pipeline,
/// for the web page and the API) and counted by error code (`ferry_errors_total`).
public enum FerryLogging {
    public enum Format: String, Sendable, CaseIterable {
        case text, json
    }

    /// The recent warnings and errors of this process.
    public static let recent = RecentProblems()

    public static func bootstrap(level: Logger.Level, format: Format) -> Logger {
        LoggingSystem.bootstrap { label in
            var inner: any LogHandler
            switch format {
            case .text: inner = StreamLogHandler.standardError(label: label)
            case .json: inner = JSONLinesLogHandler(label: label)
            }
            inner.logLevel = level
            return RecordingLogHandler(inner: inner, recent: recent)
        }
        return Logger(label: "ferry")
    }
}

/// The last warnings and errors per pipeline (`*` for those without one), newest first.
public final class RecentProblems: Sendable {
    static let kept = 50
    private let entries = NIOLockedValueBox<[String: [PipelineView.ErrorView]]>([:])
    private let counters = NIOLockedValueBox<[String: Counter]>([:])

    func record(level: Logger.Level, message: String, metadata: Logger.Metadata) {
        let pipeline = metadata[LoggingKeys.pipeline].map { "\($0)" } ?? "*"
        let error = metadata[LoggingKeys.error].map { "\($0)" }
        let code = FerryError.code(of: metadata[LoggingKeys.error])?.rawValue
        let text = error.map { "\(message): \($0)" } ?? message
        let entry = PipelineView.ErrorView(at: WallClock.iso8601UTC(), level: level.rawValue, message: text, code: code,
                                           position: metadata[LoggingKeys.position].map { "\($0)" }, table: metadata[LoggingKeys.table].map { "\($0)" },
                                           sink: metadata[LoggingKeys.sink].map { "\($0)" })
        entries.withLockedValue { all in
            var list = all[pipeline, default: []]
            list.insert(entry, at: 0)
            if list.count > Self.kept { list.removeLast(list.count - Self.kept) }
            all[pipeline] = list
        }
        let key = "\(pipeline)\u{0}\(code ?? "other")"
        let counter = counters.withLockedValue { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(label: "ferry_errors_total", dimensions: [("pipeline", pipeline), ("code", code ?? "other")])
            counters[key] = counter
            return counter
        }
        counter.increment()
    }

    /// The pipeline's entries and the ones not tied to any pipeline, newest first.
    public func entries(pipeline: String) -> [PipelineView.ErrorView] {
        let (own, shared) = entries.withLockedValue { ($0[pipeline] ?? [], $0["*"] ?? []) }
        return Array((own + shared).sorted { $0.at > $1.at }.prefix(Self.kept))
    }

}

/// Passes every entry on and records warnings and errors.
struct RecordingLogHandler: LogHandler {
    var inner: any LogHandler
    let recent: RecentProblems

    var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        inner.log(event: event)
        if event.level >= .warning {
            recent.record(level: event.level, message: "\(event.message)", metadata: inner.metadata.merging(event.metadata ?? [:]) { $1 })
        }
    }
}

/// One JSON object per line on stderr: `ts`, `level`, `logger`, `message`, `source`, then the
/// metadata (`ferry.pipeline`, `ferry.table`, `ferry.position`, …) as strings.
struct JSONLinesLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    static let output = NIOLock()

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var out: [UInt8] = []
        JSONBuffer.appendASCII("{\"ts\":", to: &out)
        JSONBuffer.appendString(WallClock.iso8601UTC(milliseconds: true), to: &out)
        for (key, value) in [("level", event.level.rawValue), ("logger", label), ("message", "\(event.message)"), ("source", event.source)] {
            JSONBuffer.appendASCII(",", to: &out)
            JSONBuffer.appendString(key, to: &out)
            JSONBuffer.appendASCII(":", to: &out)
            JSONBuffer.appendString(value, to: &out)
        }
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }).sorted(by: { $0.key < $1.key }) {
            JSONBuffer.appendASCII(",", to: &out)
            JSONBuffer.appendString(key, to: &out)
            JSONBuffer.appendASCII(":", to: &out)
            JSONBuffer.appendString("\(value)", to: &out)
        }
        out.append(contentsOf: "}\n".utf8)
        Self.output.withLock { FileHandle.standardError.write(Data(out)) }
    }
}
