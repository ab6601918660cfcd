/// Log metadata keys of the MySQL source.
enum LoggingKeys {
    static let source = "ferry.source"
    static let table = "ferry.table"
    static let position = "ferry.position"
    static let error = "ferry.error"
}
