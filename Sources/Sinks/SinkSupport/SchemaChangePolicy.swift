import FerryCore

/// What a table sink does when the source's schema changes (the model Flink CDC has):
///
/// - `evolve`: apply every change — add, drop, rename and retype columns; create, drop, truncate
///   and rename tables;
/// - `lenient` (default): never lose data — add columns, retype columns; a dropped column or table
///   is kept, a renamed column or table gets a new one beside the old;
/// - `ignore`: never change the target — values of columns the target lacks are left out;
/// - `fail`: stop at any change not in `allow`, naming the statement and its position.
///
/// `allow` (when set) and `deny` narrow which kinds of change the policy applies.
public struct SchemaChangePolicy: Sendable, Equatable {
    public enum Mode: String, Sendable, CaseIterable {
        case evolve, lenient, ignore, fail
    }

    public enum Decision: Equatable {
        case apply
        /// Left out; the text says why, for the log.
        case skip(String)
        case fail
    }

    public var mode: Mode
    public var allow: Set<SchemaChange.Kind>?
    public var deny: Set<SchemaChange.Kind>

    /// The mode of a sink that does not say: `schema_changes`'s declared default.
    public static let defaultMode = Mode(rawValue: SinkSetting.schemaChanges.defaultValue ?? "")!

    public init(mode: Mode = defaultMode, allow: Set<SchemaChange.Kind>? = nil, deny: Set<SchemaChange.Kind> = []) {
        self.mode = mode
        self.allow = allow
        self.deny = deny
    }

    /// Whether a row with columns the target lacks adds them to the target.
    public var addsColumnsFromRows: Bool { mode != .ignore }

    public func decide(_ change: SchemaChange) -> Decision {
        let kind = change.kind
        // Rows, not schema: a table without a key read again must replace the target's rows.
        if kind == .replaceRows { return .apply }
        let permitted = (allow?.contains(kind) ?? true) && !deny.contains(kind)
        if mode == .fail {
            return allow?.contains(kind) == true && !deny.contains(kind) && kind != .unrecognized ? .apply : .fail
        }
        if kind == .unrecognized { return .skip("ferry cannot interpret it") }
        guard permitted else { return .skip("\(kind.rawValue) is not allowed for this sink") }
        switch mode {
        case .evolve:
            return .apply
        case .lenient:
            switch kind {
            case .addColumn, .modifyColumn: return .apply
            case .createTable, .renameTable, .renameColumn: return .skip("lenient: the new name is created when its first row arrives; the old one is kept")
            default: return .skip("lenient: data is kept")
            }
        case .ignore, .fail:
            return .skip("the sink ignores schema changes")
        }
    }
}
