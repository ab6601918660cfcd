/// An error that reaches a user: a stable dotted code, what happened, where, and what to do.
///
/// Internal errors are typed per module; at the edge they are mapped to this shape so the
/// CLI, logs and API all print the same thing.
public struct FerryError: Error, Sendable, CustomStringConvertible {
    /// A stable dotted identifier such as `source.binlog.checksum_mismatch`.
    public var code: Code
    /// What happened, in one sentence.
    public var message: String
    /// Where: pipeline, table, position, file:line — whatever is known.
    public var context: [(key: String, value: String)]
    /// What the user can do about it.
    public var fix: String?
    /// Whether retrying can help, or the error stops the pipeline at once. Default `.reject`.
    public var disposition: ErrorDisposition

    public init(code: Code, message: String, context: [(key: String, value: String)] = [], fix: String? = nil,
                disposition: ErrorDisposition = .reject) {
        self.code = code
        self.message = message
        self.context = context
        self.fix = fix
        self.disposition = disposition
    }

    /// One line: `error[code]: message (key=value, …). Fix: …`
    public var description: String {
        var text = "error[\(code)]: \(message)"
        if !context.isEmpty {
            text += " (" + context.map { "\($0.key)=\($0.value)" }.joined(separator: ", ") + ")"
        }
        if let fix { text += ". Fix: \(fix)" }
        return text
    }

    /// Returns a copy with one more piece of context.
    public func adding(_ key: String, _ value: String) -> FerryError {
        var copy = self
        copy.context.append((key, value))
        return copy
    }
}

extension FerryError {
    /// `error` in the user-facing shape: itself when it already is one, its own description when it
    /// knows it, otherwise its text under `code`.
    public init(describing error: any Error, code: Code, fix: String? = nil) {
        if let error = error as? FerryError {
            self = error
        } else if let convertible = error as? any FerryErrorConvertible {
            self = convertible.ferryError
        } else {
            self.init(code: code, message: "\(error)", fix: fix)
        }
    }
}

/// Errors that know how to describe themselves to a user.
public protocol FerryErrorConvertible: Error {
    var ferryError: FerryError { get }
}

extension FerryErrorConvertible {
    /// The one-line form (`error[code]: … Fix: …`), for types that are also CustomStringConvertible.
    public var description: String { ferryError.description }
}

/// What a failure means for the work that hit it (docs/architecture.md, one owner).
public enum ErrorDisposition: Sendable, Equatable {
    /// Transient (a lost connection, a busy target): try again, on a new session.
    case retry
    /// The target refuses this input for good: find the change, then stop or dead-letter it.
    case reject
    /// Durability is in doubt (an fsync failed, a state file is corrupt): stop the pipeline at
    /// once and never apply the same data again.
    case fatal
}

/// Errors that know whether retrying can help (a lost connection, a busy target).
public protocol ClassifiedError: Error {
    var isTransient: Bool { get }
    /// Default: `.retry` when transient, else `.reject`.
    var disposition: ErrorDisposition { get }
}

extension ClassifiedError {
    public var disposition: ErrorDisposition { isTransient ? .retry : .reject }
}

extension FerryError: ClassifiedError {
    public var isTransient: Bool { disposition == .retry }
}
