extension FerryError {
    /// A stable dotted error code (`source.binlog.purged`): users search for it, alerts match on
    /// it, and the control plane maps some to HTTP statuses, so a released code never changes.
    ///
    /// Every code is a constant below, grouped by area (the first dotted part); code elsewhere can
    /// only name one of them, never spell a new one inline.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String

        init(_ rawValue: String) { self.rawValue = rawValue }

        public var description: String { rawValue }

        /// The area: `source`, `sink`, `config`, … (the first dotted part).
        public var area: Substring { rawValue.split(separator: ".").first ?? Substring(rawValue) }
    }
}

extension FerryError.Code {
    // MARK: config — the configuration file
    /// The file cannot be read.
    public static let configUnreadable = Self("config.unreadable")
    /// The file is not valid YAML.
    public static let configYAML = Self("config.yaml")
    /// The file defines nothing to run.
    public static let configEmpty = Self("config.empty")
    /// A key or value is not valid (the error names the key and its line).
    public static let configInvalid = Self("config.invalid")
    /// A source's connection settings are not usable.
    public static let configSource = Self("config.source")
    /// A column named by a setting is not in its table.
    public static let configUnknownColumn = Self("config.unknown_column")
    /// Two columns would get the same name in a target.
    public static let configDuplicateColumn = Self("config.duplicate_column")
    /// A `key:` override names a column the pipeline excludes.
    public static let configKeyColumnExcluded = Self("config.key_column_excluded")
    /// Two source tables would write one target table.
    public static let configTargetTableCollision = Self("config.target_table_collision")
    /// A rule names a column its tables do not have.
    public static let configRuleUnknownColumn = Self("config.rule_unknown_column")
    /// A document's root has no usable key.
    public static let configDocumentRootKey = Self("config.document_root_key")
    /// A document names a table the pipeline does not replicate.
    public static let configDocumentUnknownTable = Self("config.document_unknown_table")
    /// A document names a column its table does not have.
    public static let configDocumentUnknownColumn = Self("config.document_unknown_column")

    // MARK: cli — command-line input
    public static let cliInvalidOption = Self("cli.invalid_option")
    public static let cliFile = Self("cli.file")
    public static let cliBadPosition = Self("cli.bad_position")
    public static let cliInvalidPosition = Self("cli.invalid_position")
    public static let cliBadTable = Self("cli.bad_table")
    public static let cliTableNotReplicated = Self("cli.table_not_replicated")
    public static let cliTableNotVerifiable = Self("cli.table_not_verifiable")
    public static let cliUnknownPipeline = Self("cli.unknown_pipeline")
    public static let cliUnknownSink = Self("cli.unknown_sink")
    public static let cliBadRole = Self("cli.bad_role")
    public static let cliBadTokenName = Self("cli.bad_token_name")
    public static let cliTokenExists = Self("cli.token_exists")
    public static let cliUnknownToken = Self("cli.unknown_token")

    // MARK: source — reading the source database
    /// The source server cannot be reached.
    public static let sourceMySQLUnreachable = Self("source.mysql.unreachable")
    /// The server closed the connection.
    public static let sourceMySQLConnectionClosed = Self("source.mysql.connection_closed")
    /// The server sent nothing within the read timeout.
    public static let sourceMySQLReadTimeout = Self("source.mysql.read_timeout")
    /// The server answered with an error.
    public static let sourceMySQLServerError = Self("source.mysql.server_error")
    /// The server broke the protocol.
    public static let sourceMySQLProtocol = Self("source.mysql.protocol")
    /// The account uses an authentication plugin ferry does not speak.
    public static let sourceMySQLAuthPlugin = Self("source.mysql.auth_plugin")
    /// TLS was required and the server does not offer it.
    public static let sourceMySQLTLSUnavailable = Self("source.mysql.tls_unavailable")
    /// The TLS handshake failed.
    public static let sourceMySQLTLSFailed = Self("source.mysql.tls_failed")
    /// The binary log is off.
    public static let sourceBinlogOff = Self("source.binlog.off")
    /// The binary log is not in ROW format with full row images.
    public static let sourceBinlogFormat = Self("source.binlog.format")
    /// The binlog ferry needs was purged from the server.
    public static let sourceBinlogPurged = Self("source.binlog.purged")
    /// The server will soon purge the oldest binlog file a pipeline still needs.
    public static let sourceBinlogRetentionLow = Self("source.binlog.retention_low")
    /// An event's checksum does not match its bytes.
    public static let sourceBinlogChecksumMismatch = Self("source.binlog.checksum_mismatch")
    /// An event cannot be decoded.
    public static let sourceBinlogUndecodableEvent = Self("source.binlog.undecodable_event")
    /// A row of a rows event cannot be decoded.
    public static let sourceBinlogUndecodableRow = Self("source.binlog.undecodable_row")
    /// A column type ferry does not decode.
    public static let sourceBinlogUnsupportedColumn = Self("source.binlog.unsupported_column")
    /// An event ferry cannot follow safely.
    public static let sourceBinlogUnsupportedEvent = Self("source.binlog.unsupported_event")
    /// The stream has no position to start from.
    public static let sourcePosition = Self("source.position")
    /// The PostgreSQL source cannot be reached, or its connection was lost.
    public static let sourcePostgresUnreachable = Self("source.postgres.unreachable")
    /// The PostgreSQL source is not set up for logical replication (publication, slot, wal_level, privileges).
    public static let sourcePostgresSetup = Self("source.postgres.setup")
    /// The PostgreSQL replication stream holds something ferry cannot read.
    public static let sourcePostgresStream = Self("source.postgres.stream")
    public static let sourcePostgresWALRetentionHigh = Self("source.postgres.wal_retention_high")
    /// The pipeline's replication slot was dropped or invalidated: the changes since its saved position are gone.
    public static let sourcePostgresSlotLost = Self("source.postgres.slot_lost")

    // MARK: snapshot — reading existing rows
    public static let snapshotTableMissing = Self("snapshot.table_missing")
    public static let snapshotKeyColumn = Self("snapshot.key_column")
    public static let snapshotKeyNullable = Self("snapshot.key_nullable")
    public static let snapshotSignalTable = Self("snapshot.signal_table")
    public static let snapshotUndecodableRow = Self("snapshot.undecodable_row")
    public static let snapshotUnsupportedColumn = Self("snapshot.unsupported_column")

    // MARK: buffer — the pipeline's buffer
    /// The disk buffer's directory cannot be used.
    public static let bufferDiskUnusable = Self("buffer.disk_unusable")
    /// The disk buffer's file system is full; the pipeline holds until space returns.
    public static let bufferDiskFull = Self("buffer.disk_full")

    // MARK: pipeline
    /// `ferry sink rewind` asked for a position after what the sink applied.
    public static let pipelineRewindAhead = Self("pipeline.rewind_ahead")

    // MARK: state — the state file
    /// The state file cannot be read.
    public static let stateCorrupt = Self("state.corrupt")
    /// The state file's file system is full; the pipeline holds until space returns.
    public static let stateDiskFull = Self("state.disk_full")

    // MARK: cluster — cluster mode on etcd
    /// Another node took the pipeline over: this node's write was refused (fencing).
    public static let clusterFenced = Self("cluster.fenced")
    /// etcd did not answer, or refused a request, where cluster state lives.
    public static let clusterUnavailable = Self("cluster.unavailable")

    // MARK: server — the control plane's listener
    public static let serverListen = Self("server.listen")
    public static let serverTLS = Self("server.tls")

    // MARK: sink — writing targets (`unavailable`/`busy`: retried; `rejected`/`refused`/`auth`: not)
    /// A sink failed to write a batch (the cause is in the message).
    public static let sinkWriteFailed = Self("sink.write_failed")
    /// A sink refused a change for good.
    public static let sinkRejected = Self("sink.rejected")
    /// A schema change the sink's `schema_changes` policy refuses.
    public static let sinkSchemaChangeRefused = Self("sink.schema_change_refused")
    public static let sinkPostgresUnavailable = Self("sink.postgres.unavailable")
    public static let sinkPostgresRejected = Self("sink.postgres.rejected")
    public static let sinkMariaDBUnavailable = Self("sink.mariadb.unavailable")
    public static let sinkMariaDBRejected = Self("sink.mariadb.rejected")
    public static let sinkSQLiteBusy = Self("sink.sqlite.busy")
    public static let sinkSQLiteRejected = Self("sink.sqlite.rejected")
    public static let sinkRedisUnavailable = Self("sink.redis.unavailable")
    public static let sinkRedisRejected = Self("sink.redis.rejected")
    public static let sinkRedisRefused = Self("sink.redis.refused")
    public static let sinkRedisAuth = Self("sink.redis.auth")
    public static let sinkRedisKey = Self("sink.redis.key")
    public static let sinkClickHouseUnavailable = Self("sink.clickhouse.unavailable")
    public static let sinkClickHouseRejected = Self("sink.clickhouse.rejected")
    public static let sinkClickHouseRefused = Self("sink.clickhouse.refused")
    public static let sinkClickHouseAuth = Self("sink.clickhouse.auth")
    public static let sinkSearchUnavailable = Self("sink.search.unavailable")
    public static let sinkSearchRejected = Self("sink.search.rejected")
    public static let sinkSearchRefused = Self("sink.search.refused")
    public static let sinkSearchAuth = Self("sink.search.auth")
    public static let sinkNATSUnavailable = Self("sink.nats.unavailable")
    public static let sinkNATSRejected = Self("sink.nats.rejected")
    public static let sinkNATSRefused = Self("sink.nats.refused")
    public static let sinkNATSAuth = Self("sink.nats.auth")
    public static let sinkNATSNoStream = Self("sink.nats.no_stream")
    public static let sinkWebhookUnavailable = Self("sink.webhook.unavailable")
    public static let sinkWebhookRejected = Self("sink.webhook.rejected")
    public static let sinkWebhookAddressRefused = Self("sink.webhook.address_refused")
    /// A JSON-lines file cannot be opened.
    public static let sinkFileOpen = Self("sink.file.open")
    /// A JSON-lines file cannot be written.
    public static let sinkFileWrite = Self("sink.file.write")
    /// fsync of a JSON-lines file failed: durability is in doubt, the pipeline stops.
    public static let sinkFileFsync = Self("sink.file.fsync")

    // MARK: internal
    /// A bug in ferry.
    public static let internalError = Self("internal")

    /// Every code, for documentation and tests.
    public static let all: [Self] = [
        configUnreadable, configYAML, configEmpty, configInvalid, configSource, configUnknownColumn, configDuplicateColumn,
        configKeyColumnExcluded, configTargetTableCollision, configRuleUnknownColumn, configDocumentRootKey,
        configDocumentUnknownTable, configDocumentUnknownColumn,
        cliInvalidOption, cliFile, cliBadPosition, cliInvalidPosition, cliBadTable, cliTableNotReplicated, cliTableNotVerifiable, cliUnknownPipeline,
        cliUnknownSink, cliBadRole, cliBadTokenName, cliTokenExists, cliUnknownToken,
        sourceMySQLUnreachable, sourceMySQLConnectionClosed, sourceMySQLReadTimeout, sourceMySQLServerError, sourceMySQLProtocol,
        sourceMySQLAuthPlugin, sourceMySQLTLSUnavailable, sourceMySQLTLSFailed, sourceBinlogOff, sourceBinlogFormat,
        sourceBinlogPurged, sourceBinlogRetentionLow, sourceBinlogChecksumMismatch, sourceBinlogUndecodableEvent, sourceBinlogUndecodableRow,
        sourceBinlogUnsupportedColumn, sourceBinlogUnsupportedEvent, sourcePosition,
        sourcePostgresUnreachable, sourcePostgresSetup, sourcePostgresStream, sourcePostgresWALRetentionHigh, sourcePostgresSlotLost,
        snapshotTableMissing, snapshotKeyColumn, snapshotKeyNullable, snapshotSignalTable, snapshotUndecodableRow,
        snapshotUnsupportedColumn,
        bufferDiskUnusable, bufferDiskFull, pipelineRewindAhead, stateCorrupt, stateDiskFull, clusterFenced, clusterUnavailable, serverListen, serverTLS,
        sinkWriteFailed, sinkRejected, sinkSchemaChangeRefused, sinkPostgresUnavailable, sinkPostgresRejected,
        sinkMariaDBUnavailable, sinkMariaDBRejected, sinkSQLiteBusy, sinkSQLiteRejected, sinkRedisUnavailable, sinkRedisRejected,
        sinkRedisRefused, sinkRedisAuth, sinkRedisKey, sinkClickHouseUnavailable, sinkClickHouseRejected, sinkClickHouseRefused,
        sinkClickHouseAuth, sinkSearchUnavailable, sinkSearchRejected, sinkSearchRefused, sinkSearchAuth, sinkNATSUnavailable,
        sinkNATSRejected, sinkNATSRefused, sinkNATSAuth, sinkNATSNoStream, sinkWebhookUnavailable, sinkWebhookRejected,
        sinkWebhookAddressRefused, sinkFileOpen, sinkFileWrite, sinkFileFsync,
        internalError,
    ]
}
