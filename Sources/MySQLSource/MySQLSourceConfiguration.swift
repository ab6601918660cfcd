import FerryCore
import MySQLWire

/// Configuration of one MySQL/MariaDB binlog source.
public struct MySQLSourceConfiguration: Sendable {
    /// The user's name for the source; appears as `source.name` in events.
    public var name: String
    public var connection: MySQLConnectionConfiguration
    /// The replica `server_id` Ferry registers with; must be unique among the server's replicas.
    public var serverID: UInt32
    public var filter: TableFilter
    /// Seconds between server heartbeats while idle. Default 5.
    public var heartbeatSeconds: Double
    /// A connection silent this long is considered lost. Default 3 × heartbeat.
    public var readTimeoutSeconds: Double
    /// First reconnect delay; doubles up to `maximumReconnectDelaySeconds`. Default 0.5.
    public var initialReconnectDelaySeconds: Double
    /// Default 30.
    public var maximumReconnectDelaySeconds: Double
    /// Give up after this many consecutive failed reconnects; `nil` retries forever. Default nil.
    public var maximumReconnectAttempts: Int?
    /// Deliver DDL statements as `.ddl` events. Default false.
    public var includeDDL: Bool
    /// A source that cannot be reached while the run starts is retried like a lost connection
    /// (a daemon outlives a source restart); else the start fails at once (`ferry tail`).
    /// Default false.
    public var waitsForSourceAtStart: Bool

    public init(name: String, connection: MySQLConnectionConfiguration, serverID: UInt32, filter: TableFilter = .init(),
                heartbeatSeconds: Double = 5, readTimeoutSeconds: Double? = nil, initialReconnectDelaySeconds: Double = 0.5,
                maximumReconnectDelaySeconds: Double = 30, maximumReconnectAttempts: Int? = nil, includeDDL: Bool = false,
                waitsForSourceAtStart: Bool = false) {
        self.name = name
        self.connection = connection
        self.serverID = serverID
        self.filter = filter
        self.heartbeatSeconds = heartbeatSeconds
        self.readTimeoutSeconds = readTimeoutSeconds ?? heartbeatSeconds * 3
        self.initialReconnectDelaySeconds = initialReconnectDelaySeconds
        self.maximumReconnectDelaySeconds = maximumReconnectDelaySeconds
        self.maximumReconnectAttempts = maximumReconnectAttempts
        self.includeDDL = includeDDL
        self.waitsForSourceAtStart = waitsForSourceAtStart
    }
}
