import FerryCore

/// Turns any error into the one-line form users see: `error[code]: what (where). Fix: how`.
public enum ErrorReport {
    public static func ferryError(_ error: any Error) -> FerryError {
        FerryError(describing: error, code: .internalError, fix: "this is a bug in Ferry; please report it with the command you ran")
    }

    public static func line(_ error: any Error) -> String {
        ferryError(error).description
    }
}
