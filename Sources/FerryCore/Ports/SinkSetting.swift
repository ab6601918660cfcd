/// One key a sink type takes in its `sinks:` entry, declared next to the sink's code: the
/// configuration reader accepts exactly these (anything else is an unknown key naming the type),
/// takes the default from here, `ferry init` writes them, and docs/configuration.md is generated
/// from them.
public struct SinkSetting: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case text, secret, integer, size, boolean, list, mapping, policy
    }

    public let key: String
    public let kind: Kind
    /// As written in YAML; `nil` when there is none (required, or optional without a default).
    public let defaultValue: String?
    public let required: Bool
    public let doc: String

    public init(_ key: String, _ kind: Kind, default defaultValue: String? = nil, required: Bool = false, doc: String) {
        self.key = key
        self.kind = kind
        self.defaultValue = defaultValue
        self.required = required
        self.doc = doc
    }

    /// `schema_changes:` of the sinks that keep tables.
    public static let schemaChanges = SinkSetting("schema_changes", .policy, default: "lenient",
                                                  doc: "what a schema change does to the target: evolve, lenient, ignore or fail, or { mode, allow: [...], deny: [...] } (docs/pipelines.md)")
    /// `lanes:` of the SQL sinks that can apply in parallel.
    public static let lanes = SinkSetting("lanes", .integer, default: "1",
                                          doc: "parallel connections, 1–64; the changes of one key stay in one lane and in order")

    /// `password:` of a sink that connects with a URL.
    public static func password(_ doc: String = "the password, instead of one in the url (write it as ${NAME} to read the environment)") -> SinkSetting {
        SinkSetting("password", .secret, doc: doc)
    }
}

extension Array where Element == SinkSetting {
    public subscript(key: String) -> SinkSetting? { first { $0.key == key } }
}
