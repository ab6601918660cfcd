import NIOCore

/// QUERY_EVENT (type 2) and MariaDB QUERY_COMPRESSED_EVENT (type 165).
///
/// Post-header: thread_id u32 · exec_time u32 · db_len u8 · error_code u16 · status_vars_len u16.
/// Body: status_vars · db name · NUL · statement (zlib-compressed for type 165).
public struct QueryEvent: Sendable, Equatable {
    public var threadID: UInt32
    public var executionTime: UInt32
    public var errorCode: UInt16
    /// The default database the statement ran in (may be empty).
    public var database: String
    public var statement: String

    public init(threadID: UInt32, executionTime: UInt32, errorCode: UInt16, database: String, statement: String) {
        self.threadID = threadID
        self.executionTime = executionTime
        self.errorCode = errorCode
        self.database = database
        self.statement = statement
    }

    static func decode(from body: inout ByteBuffer, postHeaderLength: Int, compressed: Bool) throws -> QueryEvent {
        let threadID: UInt32 = try body.readLE()
        let executionTime: UInt32 = try body.readLE()
        let databaseLength: UInt8 = try body.readLE()
        let errorCode: UInt16 = try body.readLE()
        var statusLength: UInt16 = 0
        if postHeaderLength >= 13 {
            statusLength = try body.readLE()
            try body.skipChecked(postHeaderLength - 13)
        }
        try body.skipChecked(Int(statusLength))
        let database = try body.readTextChecked(length: Int(databaseLength))
        try body.skipChecked(1)
        let statement: String
        if compressed {
            let inflated = try MariaDBCompression.inflate(&body)
            statement = String(decoding: inflated, as: UTF8.self)
        } else {
            statement = body.readRemainingText()
        }
        return QueryEvent(threadID: threadID, executionTime: executionTime, errorCode: errorCode,
                          database: database, statement: statement)
    }
}
