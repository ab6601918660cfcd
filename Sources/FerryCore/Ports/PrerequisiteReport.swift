/// What `ferry check` verifies on a source, with the exact statement that fixes each missing
/// piece.
public struct PrerequisiteReport: Sendable {
    public enum Status: String, Sendable {
        case ok
        case warning
        case failed
    }

    public struct Item: Sendable {
        public var name: String
        public var status: Status
        public var detail: String
        /// SQL or configuration that fixes it.
        public var fix: String?

        public init(name: String, status: Status, detail: String, fix: String?) {
            self.name = name
            self.status = status
            self.detail = detail
            self.fix = fix
        }
    }

    public var server: String
    public var items: [Item]

    public var passed: Bool { !items.contains { $0.status == .failed } }

    public init(server: String, items: [Item]) {
        self.server = server
        self.items = items
    }
}
