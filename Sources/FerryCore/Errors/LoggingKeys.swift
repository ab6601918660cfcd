import Logging

/// Metadata keys of ferry's log entries, one spelling everywhere (the web page, the API and
/// `ferry_errors_total` read them).
public enum LoggingKeys {
    public static let pipeline = "ferry.pipeline"
    public static let source = "ferry.source"
    public static let sink = "ferry.sink"
    public static let table = "ferry.table"
    public static let position = "ferry.position"
    /// The error; its value is made by `Logger.MetadataValue.error(_:)` so its code travels typed.
    public static let error = "ferry.error"
    /// Seconds until the next attempt of something that failed; its value is made by
    /// `Logger.MetadataValue.seconds(_:)`.
    public static let retryIn = "ferry.retry_in_s"
}

extension Logger.MetadataValue {
    /// A duration in seconds, to a tenth, as every `_s` key gives it.
    public static func seconds(_ seconds: Double) -> Logger.MetadataValue {
        .string("\((seconds * 10).rounded() / 10)")
    }

    /// An error as log metadata: printed as it describes itself, and, when it has a ferry error
    /// code, carrying that code for whoever records the entry (`FerryError.code(of:)`).
    public static func error(_ error: any Error) -> Logger.MetadataValue {
        if error is FerryError || error is any FerryErrorConvertible {
            return .stringConvertible(FerryError(describing: error, code: .internalError))
        }
        return .string("\(error)")
    }
}

extension FerryError {
    /// The code an error carries, when it has one (a `FerryError` or an error that converts to one).
    public static func code(of error: any Error) -> Code? {
        if let error = error as? FerryError { return error.code }
        if let convertible = error as? any FerryErrorConvertible { return convertible.ferryError.code }
        return nil
    }

    /// The code of a log entry's error metadata made by `Logger.MetadataValue.error(_:)`.
    public static func code(of value: Logger.MetadataValue?) -> Code? {
        guard case .stringConvertible(let described)? = value, let error = described as? FerryError else { return nil }
        return error.code
    }
}
