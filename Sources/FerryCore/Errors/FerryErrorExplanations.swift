extension FerryError.Code {
    /// What a code means and how to fix it: `ferry explain CODE` prints it and `docs/errors.md`
    /// is generated from it (a test fails when a code has no entry or the page is stale).
    public struct Explanation: Sendable, Equatable {
        public let meaning: String
        public let fix: String
    }

    /// The explanation of this code (every code has one; a test checks).
    public var explanation: Explanation? { Self.explanations[self] }

    /// The code spelled `text`, if it is one.
    public init?(code text: String) {
        guard let code = Self.all.first(where: { $0.rawValue == text }) else { return nil }
        self = code
    }

    /// docs/errors.md: every code, by area, with its meaning and fix.
    public static func catalogMarkdown() -> String {
        let areaTitles: [Substring: String] = [
            "config": "The configuration file", "cli": "Command-line input", "source": "Reading the source",
            "snapshot": "Snapshots", "buffer": "The pipeline's buffer", "pipeline": "Pipelines", "state": "The state file", "cluster": "Cluster mode",
            "server": "The control plane's listener", "sink": "Writing to targets", "internal": "Bugs",
        ]
        var lines = [
            "# Error codes",
            "",
            "Every error ferry reports is one line, `error[CODE]: what happened (where). Fix: what to do`, and",
            "warnings in the log carry the same codes (`ferry.error`, and `ferry_errors_total{code=…}` in the",
            "metrics). A released code never changes. `ferry explain CODE` prints one entry below.",
            "",
            "Generated from the codes in the source (`ferry explain --markdown > docs/errors.md`); a test fails",
            "when a code has no entry or this page is out of date.",
        ]
        var area: Substring = ""
        for code in all {
            if code.area != area {
                area = code.area
                lines += ["", "## \(areaTitles[area] ?? String(area))"]
            }
            guard let explanation = code.explanation else { continue }
            lines += ["", "### `\(code.rawValue)`", "", explanation.meaning, "", "**Fix:** \(explanation.fix)"]
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static let explanations: [Self: Explanation] = [
        .configUnreadable: Explanation(
            meaning: "The configuration file given with -c cannot be read (missing, a directory, not readable by this user, or not UTF-8). The command stops before doing anything.",
            fix: "Check the path passed to -c and that the user running ferry may read it (the packaged service reads /etc/ferry/ferry.yml)."),
        .configYAML: Explanation(
            meaning: "The configuration file is not valid YAML, so nothing runs.",
            fix: "Fix the syntax at the line shown in the message (indentation, tabs, unclosed quotes or brackets), then check the file with `ferry check -c FILE`."),
        .configEmpty: Explanation(
            meaning: "The configuration file has no content (it is empty or holds only comments), so there is nothing to run.",
            fix: "Add `sources:`, `sinks:` and `pipelines:` sections; README.md and docs/pipelines.md show a complete file."),
        .configInvalid: Explanation(
            meaning: "A key or value in the configuration file is not valid: an unknown key, a wrong type or value, a missing setting (no pipeline, no url), a malformed sink URL or rule condition. The message names the file, line and key path; nothing runs.",
            fix: "Correct the key named in the message as its fix says (docs/pipelines.md and docs/sinks/*.md list every key), then run `ferry check -c FILE`."),
        .configSource: Explanation(
            meaning: "A MySQL/MariaDB URL given on the command line (`--source` of `ferry tail`, `ferry check` or `ferry init`) is malformed: not mysql://, no user or host, a bad port, or an unknown option or tls value. The same mistake inside a configuration file is reported as config.invalid.",
            fix: "Write it as mysql://USER[:PASSWORD]@HOST:PORT, optionally with ?tls=disable|prefer|require|verify-ca|verify-full&ssl-ca=FILE; the password can come from FERRY_SOURCE_PASSWORD instead."),
        .configUnknownColumn: Explanation(
            meaning: "A column named by a pipeline's `mapping` entry (in `rename_columns` or `key`) or by a rule's column selection is not a column of the table. It is noticed when the table's first change or snapshot row arrives, and the pipeline stops.",
            fix: "Correct the column name (the message lists the table's columns), or narrow the entry's table glob so it does not match this table, then restart `ferry run`."),
        .configDuplicateColumn: Explanation(
            meaning: "After a mapping's (or a rule's) renames, two columns of one table would have the same name. The pipeline stops when the table is first seen.",
            fix: "Change `rename_columns` so every resulting name is unique, or leave one of the two columns out with `exclude_columns`, then restart."),
        .configKeyColumnExcluded: Explanation(
            meaning: "A mapping's `columns`/`exclude_columns` (or a rule's column selection) leaves out a column that identifies the table's rows (its primary key or configured key). The pipeline stops when the table is first seen.",
            fix: "Keep the key columns, or give the table another key with `mapping.<table>.key: [COLUMNS]`, then restart."),
        .configTargetTableCollision: Explanation(
            meaning: "Two source tables would be written to the same target table of one sink (for example shop.orders and archive.orders both becoming `orders` under the default `target_table: \"{table}\"`). The sink refuses the write; it is handled as a rejected change, so with the default error_policy the pipeline stops.",
            fix: "Set `target_table: \"{db}_{table}\"` on the pipeline, give one table its own `mapping.<table>.target`, or exclude one of the tables."),
        .configRuleUnknownColumn: Explanation(
            meaning: "A rule that lists `tables:` names a column one of those tables does not have. It is checked when a sink first handles the table, and the pipeline stops.",
            fix: "Fix the column name in the rule at the file:line shown (the message lists the table's columns), or narrow the rule's `tables:`. A rule without `tables:` is not checked: it simply does not match tables lacking the column."),
        .configDocumentRootKey: Explanation(
            meaning: "A document's root table has no primary key, so its documents cannot be identified. Checked when the pipeline starts; it stops before writing anything.",
            fix: "Use a root table with a primary key for that entry under `documents:` (or add a primary key to the table in the source)."),
        .configDocumentUnknownTable: Explanation(
            meaning: "A table named by a document (its root, a join or a `through` table) cannot be described by the source: it does not exist or the source user cannot see it (a table outside the pipeline's `tables:` is refused earlier, as config.invalid). It is checked at start, and the pipeline stops before writing anything.",
            fix: "Correct the table name under `documents.<name>`, or create the table; make sure the source user has SELECT on it."),
        .configDocumentUnknownColumn: Explanation(
            meaning: "A document names a column (in `columns`, a join's `on:` or a `through` table) that its table does not have. Checked at start; the pipeline stops before writing anything.",
            fix: "Correct the column name in the document at the file:line shown; the message lists the table's columns."),
        .cliInvalidOption: Explanation(
            meaning: "A command-line option has a value the command does not accept (`ferry tail --format` or `--to`, `ferry read-binlog --format`, `ferry init --sink`), a required option is missing (`ferry check` without --source or -c), or `ferry init` found no tables to put in the file. Nothing is done.",
            fix: "Use a value listed by `ferry <command> --help`: tail --format debezium, debezium-schema, compact or none; read-binlog --format debezium, compact or none; --to current; init --sink sqlite:PATH, jsonl:DIRECTORY or a postgres://, mysql://, mariadb://, redis:// or nats:// URL. For `ferry init` on a source without tables, create them first or name databases with --database."),
        .cliFile: Explanation(
            meaning: "A file named on the command line cannot be used: a binlog file given to `ferry read-binlog` cannot be opened or read, or the file `ferry init` should write exists already or cannot be written.",
            fix: "Check the path and the permissions (server binlog files usually belong to the mysql user; copy them if needed); for `ferry init`, choose another file with -o, pass --force to replace it, or make the directory writable."),
        .cliBadPosition: Explanation(
            meaning: "`ferry sink rewind` (or the API's rewind call, answered 400) was given a position that is not FILE:OFFSET. Nothing is recorded.",
            fix: "Give a binlog position as FILE:OFFSET, e.g. mariadb-bin.000003:1234, as `ferry status` prints it or as in an event's id; GTID positions are not accepted here."),
        .cliInvalidPosition: Explanation(
            meaning: "A start position given with --from (`ferry tail`, `ferry run`) is not a form ferry understands. Nothing runs.",
            fix: "Use earliest, current, FILE:OFFSET (mariadb-bin.000003:1234), a MariaDB GTID position (0-1-100[,1-2-7]) or a MySQL GTID set (uuid:1-100)."),
        .cliBadTable: Explanation(
            meaning: "A table given to `ferry snapshot` or `ferry verify` (or the API's snapshot call, answered 400) is not written as DATABASE.TABLE.",
            fix: "Name tables as they are in the source, database first, e.g. `ferry snapshot -c ferry.yml PIPELINE shop.orders`."),
        .cliTableNotReplicated: Explanation(
            meaning: "`ferry snapshot` (or the API's snapshot call, answered 404) named a table that the pipeline's `tables:`/`exclude:` globs do not include. Nothing is requested.",
            fix: "Add the table to the pipeline's `tables:` (or take it out of `exclude:`), restart `ferry run`, then request the snapshot again."),
        .cliTableNotVerifiable: Explanation(
            meaning: "`ferry verify` was asked for a table that has no key to match rows by (no primary key, no unique index on NOT NULL columns, no configured key). Such tables are skipped; naming one makes verify exit 1.",
            fix: "Give the table a primary key or a unique index on NOT NULL columns in the source, or set `mapping.<table>.key: [COLUMNS]` on the pipeline."),
        .cliUnknownPipeline: Explanation(
            meaning: "A command (`ferry snapshot`, `ferry verify`, `ferry sink rewind`) or an API call (answered 404) named a pipeline the configuration file does not define.",
            fix: "Use a name from the file's `pipelines:` (the message lists them) and the same -c file that `ferry run` uses."),
        .cliUnknownSink: Explanation(
            meaning: "`ferry sink rewind` (or the API's rewind call, answered 404) named a sink the pipeline does not use.",
            fix: "Use one of the pipeline's `sinks:`; the message lists them."),
        .cliBadRole: Explanation(
            meaning: "`ferry token create --role` was given something other than viewer, operator or admin. No token is made.",
            fix: "Use --role viewer, operator or admin."),
        .cliBadTokenName: Explanation(
            meaning: "`ferry token create --name` was given an empty name, one longer than 64 characters, or one with characters other than letters, digits and - _ . @. No token is made.",
            fix: "Choose a name of up to 64 letters, digits and - _ . @; it appears in the audit log."),
        .cliTokenExists: Explanation(
            meaning: "`ferry token create` was given the name of an existing token. Names are unique, so nothing was created.",
            fix: "Choose another name (a date or number in it helps with rotation), or revoke the old one first with `ferry token revoke -c FILE --name NAME`."),
        .cliUnknownToken: Explanation(
            meaning: "`ferry token revoke` was given a name that no token has.",
            fix: "`ferry token list -c FILE` shows the existing token names."),
        .sourceMySQLUnreachable: Explanation(
            meaning: "Ferry cannot open a TCP connection to the source server (refused, timed out, host not found). `ferry run` retries with backoff (0.5 s doubling to 30 s, without limit) wherever it meets it: the binlog stream resumes at the last complete transaction, a snapshot at its first chunk not delivered, a pipeline starting waits for the source, and documents are rendered again; `ferry tail` reconnects while it follows but stops if the source cannot be reached at its start, and `check` and `verify` report it and exit.",
            fix: "Check the host and port in the source URL, that the server is running, and that firewalls allow connections from ferry's host; `ferry check -c FILE` tests the connection."),
        .sourceMySQLConnectionClosed: Explanation(
            meaning: "The source server closed a connection in the middle of an exchange (server restart, KILL, wait_timeout, a proxy or network drop). `ferry run` retries with backoff (0.5 s doubling to 30 s, without limit) wherever it meets it: the binlog stream resumes at the last complete transaction, a snapshot at its first chunk not delivered, a pipeline starting waits for the source, and documents are rendered again; `ferry tail` reconnects while it follows but stops if the source cannot be reached at its start, and `check` and `verify` report it and exit.",
            fix: "Usually nothing: the stream resumes by itself. If it repeats, check the server's error log, and proxies or load balancers that cut long-lived connections."),
        .sourceMySQLReadTimeout: Explanation(
            meaning: "The binlog connection received neither events nor heartbeats for three heartbeat periods (15 s by default). Ferry treats the connection as lost and reconnects with backoff, resuming at the last complete transaction.",
            fix: "Check the network path to the source (firewalls or NAT dropping idle connections) and the server's load; nothing is needed if reconnects succeed."),
        .sourceMySQLServerError: Explanation(
            meaning: "The source server answered with an error (MySQL error number and SQLSTATE in the message): bad credentials (1045), missing privileges (1044, 1142, 1227), unknown database (1049), binlog position not available (1236), and so on. Errors that mean a lost connection (1053 shutdown, 1040 too many connections, killed connections) are retried like one while following the binlog; any other stops the pipeline or command.",
            fix: "Act on the error number: for 1045 check the user and the source's `password:` (FERRY_SOURCE_PASSWORD for `--source` commands); for privilege errors grant REPLICATION SLAVE, REPLICATION CLIENT and SELECT (`ferry check` prints the GRANT); for 1236 see source.binlog.purged."),
        .sourceMySQLProtocol: Explanation(
            meaning: "The server sent something the MySQL protocol does not allow at that point, usually because the URL reaches something that is not MySQL or MariaDB (a proxy, another service, a wrong port), or a binlog file did not start with a format description event. The pipeline or command stops.",
            fix: "Check that the source URL's host and port reach a MySQL or MariaDB server directly; if they do, report the message with `ferry --version` and the server version."),
        .sourceMySQLAuthPlugin: Explanation(
            meaning: "The source account uses an authentication plugin ferry does not implement (it speaks mysql_native_password and caching_sha2_password), so it cannot log in. The pipeline or command stops.",
            fix: "Switch the account to a supported plugin: on MariaDB `ALTER USER 'ferry'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('…')`, on MySQL `ALTER USER 'ferry'@'%' IDENTIFIED WITH caching_sha2_password BY '…'`."),
        .sourceMySQLTLSUnavailable: Explanation(
            meaning: "The source URL's tls setting and the server disagree: TLS is required (tls=require, verify-ca or verify-full) but the server does not offer it, or the reverse. No connection is made.",
            fix: "Enable TLS on the server (ssl_cert and ssl_key), or connect with ?tls=prefer or ?tls=disable in the source URL."),
        .sourceMySQLTLSFailed: Explanation(
            meaning: "The TLS handshake with the source failed: the server certificate is not trusted, has expired, or does not match the host name (tls=verify-full), or the server's TLS setup is broken. No connection is made.",
            fix: "Give the CA that signed the server certificate with ?ssl-ca=FILE, make the URL's host match the certificate for tls=verify-full (or use tls=verify-ca), and check the certificate's dates."),
        .sourcePostgresUnreachable: Explanation(
            meaning: "The PostgreSQL source cannot be reached, refused the login, or its connection closed. A temporary slot (`ferry tail`) ends with its connection.",
            fix: "Check the URL, the password (FERRY_SOURCE_PASSWORD), pg_hba.conf (a `replication` line for the user is needed as well as a database one) and that the server runs; then start again."),
        .sourcePostgresSetup: Explanation(
            meaning: "The PostgreSQL source is not ready for logical replication: wal_level is not logical, the publication or slot is missing, there are no free replication slots or WAL senders, or the user lacks the REPLICATION attribute or the tables' privileges. Nothing was read.",
            fix: "Run the SQL the message gives (for example `CREATE PUBLICATION ferry FOR TABLE …;` as the tables' owner, or `ALTER ROLE … REPLICATION;`); wal_level, max_replication_slots and max_wal_senders need a server restart."),
        .sourcePostgresStream: Explanation(
            meaning: "A message of the PostgreSQL replication stream cannot be read (malformed, out of order, a type ferry does not know). The stream stops there so nothing is skipped.",
            fix: "Report it with the message, `ferry --version` and the server version."),
        .sourceBinlogOff: Explanation(
            meaning: "Binary logging is off on the source, or the server has no binlog files, so there is nothing to follow. The pipeline or command stops.",
            fix: "Set `log_bin` and `server_id` under [mysqld] and restart the server; `ferry check --source URL` prints the settings that are missing."),
        .sourceBinlogFormat: Explanation(
            meaning: "The source's binlog_format is not ROW (STATEMENT or MIXED), so row changes are not in the binlog. The pipeline stops.",
            fix: "Run `SET GLOBAL binlog_format = 'ROW';` and put `binlog_format = ROW` (with `binlog_row_image = FULL`) under [mysqld]; clients already connected keep their old format until they reconnect. `ferry check` lists anything else missing."),
        .sourceBinlogPurged: Explanation(
            meaning: "The binlog file a pipeline must resume from (its saved position, or a FILE:OFFSET from `start:` or --from) is no longer on the server: it expired or was purged, so the changes since are lost. With `snapshot: when_needed` ferry instead starts from the current position and snapshots every table again; otherwise the pipeline stops, `ferry run` exits, and restarting does not help.",
            fix: "Set `snapshot: when_needed` on the pipeline and restart, then check the result with `ferry verify`; or delete the pipeline's state and targets and start over. To prevent it, keep binlog_expire_logs_seconds above the longest outage and act on source.binlog.retention_low."),
        .sourcePostgresWALRetentionHigh: Explanation(
            meaning: "Warning: the WAL PostgreSQL keeps for a pipeline's replication slot is past half of `max_slot_wal_keep_size`, or the server no longer counts it as reserved. Logged once per episode; the pipeline goes on, but if the server drops the slot's WAL the slot is invalidated and the changes since are lost (source.postgres.slot_lost).",
            fix: "Let the pipeline catch up (resume it if paused, fix whatever holds its sinks), or let the server keep more: `ALTER SYSTEM SET max_slot_wal_keep_size = '…'; SELECT pg_reload_conf();`."),
        .sourcePostgresSlotLost: Explanation(
            meaning: "The replication slot a pipeline resumes from is gone: it was dropped while ferry was away, or the server invalidated it after removing WAL it still needed (max_slot_wal_keep_size). The changes between the targets' position and now cannot be read. With `snapshot: when_needed` ferry drops an invalidated slot, creates it again, snapshots every table through its exported snapshot and deletes from the targets the rows the source no longer has; otherwise the pipeline stops and restarting does not help.",
            fix: "Set `snapshot: when_needed` on the pipeline and start it again, then check the result with `ferry verify`; or delete the pipeline's state and targets and start over. To prevent it, raise max_slot_wal_keep_size above the longest outage's WAL, act on source.postgres.wal_retention_high, and never drop a slot a pipeline uses."),
        .sourceBinlogRetentionLow: Explanation(
            meaning: "Warning: the server will soon purge the oldest binlog file a pipeline still needs to resume from (less than half the binlog expiry, or six hours, whichever is shorter). Logged once per episode; the pipeline goes on, but if the file is purged it fails with source.binlog.purged.",
            fix: "Let the pipeline catch up (resume it if paused, fix whatever holds its sinks), or keep binlogs longer: `SET GLOBAL binlog_expire_logs_seconds = …;` and the same under [mysqld]."),
        .sourceBinlogChecksumMismatch: Explanation(
            meaning: "A binlog event failed its CRC32 check: its bytes were damaged in transit or in the server's file. The stream stops at that event so nothing is skipped, and the pipeline stops.",
            fix: "Check the file with `mariadb-binlog --verify-binlog-checksum FILE` (mysqlbinlog on MySQL) or `ferry read-binlog --format none FILE`; if the file is intact the damage was in transit and restarting ferry reads the event again. If the file itself is damaged, ferry cannot read past that event: start the pipeline over from a later position and snapshot its tables again."),
        .sourceBinlogUndecodableEvent: Explanation(
            meaning: "A binlog event cannot be decoded (truncated, an invalid field, bytes left over, a compressed event that does not inflate), or a rows event arrived without its TABLE_MAP. The stream stops there so nothing is skipped, and the pipeline stops.",
            fix: "Report it with the message (event type, position and bytes), `ferry --version` and the server version; `ferry read-binlog FILE` on the binlog file reproduces it offline."),
        .sourceBinlogUndecodableRow: Explanation(
            meaning: "A row of a rows event cannot be decoded with its table's column metadata. The stream stops at that row so nothing is skipped, and the pipeline stops.",
            fix: "Report it with the table, position and binlog file (`ferry read-binlog FILE` reproduces it). Until it is fixed, only excluding the table (`exclude:`) lets the stream go on, at the cost of that table's changes."),
        .sourceBinlogUnsupportedColumn: Explanation(
            meaning: "A row of a replicated table has a column ferry cannot decode exactly: an unknown column type, a character set it cannot convert, or a partial JSON update without a before image. The stream stops at that row and the pipeline stops.",
            fix: "For partial JSON updates set `binlog_row_image = FULL` and `binlog_row_value_options = ''` on the source. For a type or character set ferry cannot read, change the column in the source or exclude the table (`exclude:`); `mapping.exclude_columns` does not help because whole rows are decoded first."),
        .sourceBinlogUnsupportedEvent: Explanation(
            meaning: "The binlog holds an event ferry must not skip but cannot interpret: a MySQL TRANSACTION_PAYLOAD (binlog_transaction_compression=ON), an INCIDENT event (the server lost changes), or an encrypted binlog read from a file. The stream stops there and the pipeline stops.",
            fix: "Compression: `SET GLOBAL binlog_transaction_compression = OFF` on the source, then start after the compressed transactions and snapshot the tables again. Incident: snapshot the affected tables again (`ferry snapshot`). Encrypted files: follow the server with `ferry tail` instead of `ferry read-binlog`."),
        .sourcePosition: Explanation(
            meaning: "Internal check: a binlog stream was about to start with neither a file position nor a GTID position. The normal start paths always resolve one, so this points to a bug.",
            fix: "Report it with the command and configuration; as a workaround give an explicit start position (`start:` on the pipeline or --from)."),
        .snapshotTableMissing: Explanation(
            meaning: "A table to snapshot is not in the source's information_schema: it was dropped or renamed, its name is wrong, or the source user has no privilege on it. The snapshot stops, and with it the pipeline.",
            fix: "Check the table name and the pipeline's `tables:` globs, and that the source user has SELECT on the table; remove tables that no longer exist from the globs."),
        .snapshotKeyColumn: Explanation(
            meaning: "The pipeline's `mapping.<table>.key` names a column the table does not have, so the snapshot cannot split the table into key ranges. The pipeline stops.",
            fix: "Correct `key:` in the table's mapping entry (the message lists the table's columns), then restart."),
        .snapshotKeyNullable: Explanation(
            meaning: "The key configured with `mapping.<table>.key` includes a nullable column; rows with NULL there cannot be placed in key-range chunks. The snapshot and the pipeline stop.",
            fix: "Make those columns NOT NULL in the source, or configure key columns that are NOT NULL."),
        .snapshotSignalTable: Explanation(
            meaning: "Ferry could not create the snapshot signal table (default ferry.ferry_signal) it writes watermarks to, usually for lack of privileges, or the server leaves its database out of the binlog (`binlog_do_db` / `binlog_ignore_db`), so its watermarks would never reach the stream. With `watermarks: auto` it falls back to binlog-position watermarks and logs a notice; with `watermarks: signal_table` the pipeline stops. Also raised while a snapshot runs when the stream passes a chunk's high watermark three times without seeing it (once is a source crash that lost the binlog's tail; the chunk is read again).",
            fix: "Grant the source user CREATE, INSERT and DELETE on the signal table's database (e.g. `GRANT CREATE, INSERT, DELETE ON ferry.* TO 'ferry'@'%'`): ferry always runs CREATE DATABASE/TABLE IF NOT EXISTS, so INSERT and DELETE alone are not enough. For a binlog filter: log the signal table's database, or point `snapshot.signal_table` at a logged database; make sure the stream reads the server the watermarks are written to. Or set `snapshot: { watermarks: binlog }` (less exact on MySQL)."),
        .snapshotUndecodableRow: Explanation(
            meaning: "A row read by a snapshot chunk cannot be decoded (a value in a form or character set ferry cannot convert). The snapshot and the pipeline stop; the message names the table and chunk.",
            fix: "Report it with the table's definition and the message; until then, changing the column in the source or excluding the table (`exclude:`) lets the pipeline go on."),
        .snapshotUnsupportedColumn: Explanation(
            meaning: "A column of a table to snapshot has a type the snapshot reader does not know. The snapshot and the pipeline stop.",
            fix: "Exclude the table from the pipeline (`exclude:`) or change the column's type in the source; `mapping.exclude_columns` does not help, because the snapshot reads every column of the table."),
        .bufferDiskUnusable: Explanation(
            meaning: "The pipeline's disk buffer (`<data_dir>/buffer/<pipeline>`) cannot be used: the directory cannot be created or written, a record is damaged somewhere other than the end of the newest segment, or a segment is missing. The pipeline stops.",
            fix: "Fix the directory's permissions if that is the cause; for damage, move the directory aside and restart: ferry reads the source again from the sinks' positions (the binlog must still hold them)."),
        .bufferDiskFull: Explanation(
            meaning: "The disk buffer's file system is full (or over quota). This is not a failure: the pipeline holds — the source stops reading and the database keeps its binlog, sinks drain what is buffered — and ferry logs it once, sets ferry_buffer_disk_full to 1, and goes on by itself when space returns.",
            fix: "Free at least one segment's worth of space (`disk.segment_bytes`, 64 MiB by default) on the file system of `data_dir`, or move `data_dir` to a larger one."),
        .pipelineRewindAhead: Explanation(
            meaning: "A sink rewind asks for a position after what the sink has applied; a rewind can only replay changes, not skip them. `ferry sink rewind` refuses it (the API answers 409); a stored request found to be ahead when the pipeline starts stops the pipeline.",
            fix: "Run `ferry sink rewind -c FILE PIPELINE SINK FILE:OFFSET` again with a position at or before the sink's applied position (in the message and in `ferry status`)."),
        .stateCorrupt: Explanation(
            meaning: "The state file (default `<data_dir>/ferry-state.sqlite`) cannot be opened, fails SQLite's integrity check, or holds a record that cannot be read. Durability is in doubt, so the pipeline stops at once; commands that need the file fail.",
            fix: "Restore a backup of the state file (docs/operations.md), or move it aside and start again: sinks that keep their own position (SQL sinks' ferry_offsets, JSON lines, Redis, NATS) resume from it and tables are snapshotted again; with other sinks give a start with `ferry run --from POSITION`. For one unreadable snapshot record, request that table again with `ferry snapshot`."),
        .stateDiskFull: Explanation(
            meaning: "The state file's file system is full. A running ferry holds every pipeline — state writes are retried each second while status and the API keep working, and ferry_state_disk_full is 1 — and goes on by itself when space returns; at start-up the file cannot be prepared and the command fails.",
            fix: "Free some space on the state file's file system (a few MiB is plenty), or move the state file with `state: { sqlite: PATH }`; if it happened at start-up, start again."),
        .clusterFenced: Explanation(
            meaning: "In cluster mode a node was about to write for a pipeline it may no longer own: its lease was not renewed in time (paused, cut off from etcd), so its write window closed, or its claim on the pipeline (`owners/PIPELINE` in etcd) is gone or was made again by another node. The write is refused, which is the point: a former owner must change nothing. The pipeline stops on this node; the node that owns it now carries on from the state it finds.",
            fix: "Nothing, when it follows a failover. If it repeats, the node's lease runs out while it is alive: look for long pauses (swap, a stopped VM, CPU starvation) or a slow path to etcd, and raise `cluster.lease_seconds`."),
        .clusterUnavailable: Explanation(
            meaning: "etcd, where cluster mode keeps claims, positions and snapshot progress, did not answer on any endpoint within the request deadline, or refused the request (permissions, a request too large).",
            fix: "Check that a majority of the etcd members run and that this node reaches them (`etcdctl --endpoints … endpoint health`), and that `cluster.etcd.user` has readwrite on the cluster prefix. The message names the endpoints and the last error."),
        .serverListen: Explanation(
            meaning: "The web page and API cannot listen on their address (in use, not an address of this machine, or a privileged port). An address set with `server.listen` must work, so `ferry run` stops; the default 127.0.0.1:8080 only logs a warning and runs without the page when it is taken.",
            fix: "Set `server.listen` to a free HOST:PORT, stop whatever holds the port, or set `listen: off`."),
        .serverTLS: Explanation(
            meaning: "`server.tls` is set but ferry cannot use the certificate or key (unreadable, not PEM, or an encrypted key). `ferry run` does not start.",
            fix: "Point `server.tls.cert` at the PEM certificate (chain) and `server.tls.key` at its unencrypted PEM private key, both readable by ferry's user."),
        .sinkWriteFailed: Explanation(
            meaning: "A sink (or the dead-letter sink) could not be opened or could not write, and the underlying error has no more specific code; the cause is in the message. Transient failures were already retried, so the pipeline stops.",
            fix: "Read the cause in the message and the log lines before it (`ferry status` shows the last error), fix the target, then restart `ferry run`."),
        .sinkRejected: Explanation(
            meaning: "A sink refused a change for good with an error that has no sink-specific code. The batch is split to find the change it refuses; with `error_policy: stop` (default) the pipeline stops naming table and position, with `error_policy: dead-letter` that change goes to the dead-letter sink and the rest is applied.",
            fix: "Fix the cause in the message (usually the target table against the source schema) and restart, or set `error_policy: dead-letter` with `dead_letter: <jsonl sink>` to set such changes aside."),
        .sinkSchemaChangeRefused: Explanation(
            meaning: "A DDL statement on a replicated table is refused by the sink's `schema_changes` policy: under `mode: fail` every kind not in `allow` (or in `deny`, or a statement ferry cannot interpret) is refused. It is handled as a rejected change, so with the default error_policy the pipeline stops, naming the statement and position.",
            fix: "Apply the change to the target yourself and restart with a policy that lets the statement pass (add its kind to `allow`, or use `evolve`, `lenient` or `ignore`)."),
        .sinkPostgresUnavailable: Explanation(
            meaning: "The PostgreSQL target cannot be reached or failed a batch for a passing reason: connection refused or lost, serialization failure (40001), deadlock (40P01), shutdown (57P…), too many connections (53300). Ferry retries with exponential backoff (up to 30 s apart, without limit), each time on a new connection; this sink holds at its position, and with a memory buffer the whole pipeline waits once the buffer is full.",
            fix: "Usually nothing: it goes on by itself. If it persists, check that PostgreSQL is up, reachable at the sink's url (host, port, pg_hba.conf) and has free connections."),
        .sinkPostgresRejected: Explanation(
            meaning: "PostgreSQL refused for good; for a row change (a constraint or type error, a value it cannot store such as NUL in text) the batch is split to find it, and with `error_policy: stop` (default) the pipeline stops naming table and position, while with `error_policy: dead-letter` that change goes to the dead-letter sink and the rest is applied. A failed login, TLS setup or protocol mismatch stops the pipeline at once.",
            fix: "Act on the SQLSTATE and message: fix the target table (types, constraints), or the sink's url, `password:`, sslmode or sslrootcert; then restart `ferry run`."),
        .sinkMariaDBUnavailable: Explanation(
            meaning: "The MariaDB/MySQL target cannot be reached or failed a batch for a passing reason: connection refused or lost, read timeout, lock wait timeout (1205), deadlock (1213), too many connections (1040), shutdown (1053), server gone (2006, 2013). Ferry retries with exponential backoff (up to 30 s apart, without limit), each time on a new connection; this sink holds at its position, and with a memory buffer the whole pipeline waits once the buffer is full.",
            fix: "Usually nothing: it goes on by itself. If it persists, check the target server's health, its reachability at the sink's url, and max_connections."),
        .sinkMariaDBRejected: Explanation(
            meaning: "The MariaDB/MySQL target refused for good; for a row change (a constraint, type or value error) the batch is split to find it, and with `error_policy: stop` (default) the pipeline stops naming table and position, while with `error_policy: dead-letter` that change goes to the dead-letter sink and the rest is applied. A failed login, missing privilege or unknown database when connecting stops the pipeline at once.",
            fix: "Act on the server's error number: fix the target table against the source schema, or the sink's url and `password:`, and make sure the sink's user may create, alter and write tables in the target database; then restart."),
        .sinkSQLiteBusy: Explanation(
            meaning: "The SQLite target file is busy or locked by another connection, or an I/O error occurred. Ferry retries with exponential backoff (up to 30 s apart, without limit), each time on a new connection; this sink holds at its position, and with a memory buffer the whole pipeline waits once the buffer is full.",
            fix: "Find the process holding a lock or a long transaction on the file (another writer, a reader with an open transaction) and end it; for I/O errors check the disk."),
        .sinkSQLiteRejected: Explanation(
            meaning: "SQLite refused for good; for a row change (a constraint or type conflict with the target table) the batch is split to find it, and with `error_policy: stop` (default) the pipeline stops naming table and position, while with `error_policy: dead-letter` that change goes to the dead-letter sink and the rest is applied. A file that cannot be opened or written (permissions, read-only) stops the pipeline at once.",
            fix: "Check the target table's definition against the source, and that ferry's user can write the file and its directory (the packaged systemd unit can only write under /var/lib/ferry); then restart."),
        .sinkRedisUnavailable: Explanation(
            meaning: "Redis cannot be reached or the connection was lost mid-batch. Ferry retries with backoff (up to 30 s apart, without limit) and sends again the part of the batch Redis does not hold (the position it holds says where that starts), which is harmless; this sink holds meanwhile.",
            fix: "Check the host and port in the sink's url and that Redis is running."),
        .sinkRedisRejected: Explanation(
            meaning: "Redis refused a command of a change for good: a stream key that holds another type (WRONGTYPE, checked before anything is written) or an error while queueing the transaction (for example OOM above maxmemory). The batch is split to find the change it refuses; with `error_policy: stop` (default) the pipeline stops naming table and position, with `error_policy: dead-letter` that change goes to the dead-letter sink and the rest is applied.",
            fix: "For WRONGTYPE give the table its own key template (the sink's `tables.<glob>.key`) or delete the conflicting key; for OOM raise maxmemory or free memory; then restart."),
        .sinkRedisRefused: Explanation(
            meaning: "Redis refused a command that is not part of a change (SELECT of the database number, reading the offset key, EXEC), and the pipeline stops. LOADING, BUSY and TRYAGAIN replies also carry this code but are retried with backoff.",
            fix: "Read Redis's reply in the message: use a database number the server has (`/db` in the url), point the sink at a writable primary rather than a replica (READONLY), or wait for Redis to finish loading."),
        .sinkRedisAuth: Explanation(
            meaning: "Redis refused the sink's credentials (AUTH failed, NOAUTH, WRONGPASS). Nothing is written; the pipeline stops.",
            fix: "Set the sink's `password:` (and the user in the url, for ACL users) to what Redis's requirepass or ACL expects, then restart."),
        .sinkRedisKey: Explanation(
            meaning: "A Redis key template cannot be filled for a table: it uses {key} for a table without a key, or names a column the table does not have. The change is refused, so the pipeline stops naming table and template (or, under error_policy: dead-letter, the change is dead-lettered).",
            fix: "Fix the template in the sink's `tables.<glob>.key` to use {db}, {table}, {key} or columns the table has, or give the table a key with `mapping.<table>.key` on the pipeline."),
        .sinkClickHouseUnavailable: Explanation(
            meaning: "ClickHouse cannot be reached, timed out, answered 5xx without an error code, or reported an overload (too many parts, memory limit, too many simultaneous queries, network errors). Ferry inserts the whole batch again with backoff (up to 30 s apart, without limit; versions make repeats harmless), and this sink holds meanwhile.",
            fix: "Usually nothing: it goes on by itself. If it persists, check that the server at the sink's url is up and not overloaded."),
        .sinkClickHouseRejected: Explanation(
            meaning: "ClickHouse cannot take a change for good: the table has no primary key or mapping key, a value does not fit the target column's type exactly (e.g. a date outside Date's range), a column has a type ferry cannot write, a key column is missing, or the server refused the INSERT. The batch is split to find the change it refuses; with `error_policy: stop` (default) the pipeline stops naming table and position, with `error_policy: dead-letter` that change goes to the dead-letter sink and the rest is applied.",
            fix: "As the message says: give the table a key (`mapping.<table>.key`) or exclude it, declare the ClickHouse column as String or Nullable so ferry writes exact text, or add the missing column to the ClickHouse table; then restart."),
        .sinkClickHouseRefused: Explanation(
            meaning: "ClickHouse refused a statement not tied to a row change (creating the database or a table, reading or writing ferry_offsets, a schema change), or ferry_offsets holds something that is not a position. The pipeline stops.",
            fix: "Check the ClickHouse server's log for the statement and the user's grants. If ferry_offsets holds a bad row, delete that pipeline's and sink's row and rewind the sink with `ferry sink rewind`."),
        .sinkClickHouseAuth: Explanation(
            meaning: "ClickHouse refused the credentials (HTTP 401/403, unknown user, wrong password). The pipeline stops.",
            fix: "Check the user in the sink's url and the sink's `password:` (sent as X-ClickHouse-Key), then restart."),
        .sinkSearchUnavailable: Explanation(
            meaning: "The Elasticsearch/OpenSearch cluster cannot be reached, answered the bulk request with 429 or 5xx, returned an item with 429/502/503/504, or sent a response that does not match the request. Ferry sends the whole batch again with backoff (up to 30 s apart, without limit; external versions make repeats harmless), and this sink holds meanwhile.",
            fix: "Usually nothing: it goes on by itself. If it persists, check that the cluster at the sink's url is up and not rejecting writes under load."),
        .sinkSearchRejected: Explanation(
            meaning: "The cluster refused a document for good (e.g. 400 mapper_parsing_exception, a document too large). The batch is split to find the change it refuses; with `error_policy: stop` (default) the pipeline stops naming table and position, with `error_policy: dead-letter` that change goes to the dead-letter sink and the rest is applied.",
            fix: "Fix the index mapping (or the size limit) so the document fits, or use `error_policy: dead-letter`; then restart."),
        .sinkSearchRefused: Explanation(
            meaning: "The cluster refused the whole bulk request (a 4xx other than 401, 403 or 429), or ferry could not build a document, e.g. for a table without a key (no _id). It is not retried; the pipeline stops unless error_policy is dead-letter.",
            fix: "For a table without a key set `mapping.<table>.key` on the pipeline; otherwise read the cluster's error in the message and fix the index or the sink's `index` template."),
        .sinkSearchAuth: Explanation(
            meaning: "The cluster answered 401 or 403: the credentials are wrong or the user may not write the index. The pipeline stops.",
            fix: "Check the user in the sink's url, the sink's `password:`, and that the user's role may write the target indexes; then restart."),
        .sinkNATSUnavailable: Explanation(
            meaning: "The NATS server cannot be reached or the connection was lost. Ferry retries with backoff (up to 30 s apart, without limit) and publishes the batch again, which message ids make harmless; this sink holds meanwhile.",
            fix: "Check the host and port in the sink's url and that nats-server is running."),
        .sinkNATSRejected: Explanation(
            meaning: "JetStream refused a message — it is larger than the server's max_payload (checked before sending) or its acknowledgement carried an error — or the sink's subject names the row ({key}) and the table has no key; the batch is split to find it, and with `error_policy: stop` (default) the pipeline stops naming table and position, while with `error_policy: dead-letter` that change goes to the dead-letter sink and the rest is applied. Acknowledgements with code 503 or 429, or none at all, carry this code too but are retried with backoff.",
            fix: "For a message over max_payload raise the server's max_payload or leave the table's large columns out (`mapping.<table>.exclude_columns`); for a table without a key give it one (`mapping.<table>.key`) or keep it out of this sink; otherwise act on JetStream's error in the message (stream limits, permissions)."),
        .sinkNATSRefused: Explanation(
            meaning: "The NATS server refused the sink outside a message: JetStream is not enabled, the stream cannot be looked up or created (e.g. its subjects overlap another stream's), or the server sent an -ERR (permissions, limits). The pipeline stops.",
            fix: "If JetStream is off, start nats-server with -js; otherwise act on the server's message, e.g. create the stream yourself or change the sink's `stream`/`stream_subjects`, or grant the user publish rights and access to $JS.API."),
        .sinkNATSAuth: Explanation(
            meaning: "The NATS server refused the credentials (Authorization Violation). The pipeline stops.",
            fix: "Check the user in the sink's url (nats://USER@HOST:PORT) and the sink's `password:`, then restart."),
        .sinkNATSNoStream: Explanation(
            meaning: "No JetStream stream takes a message's subject (the publish was answered 503, no responders), so it cannot be stored. It is not retried; the pipeline stops naming the subject unless error_policy is dead-letter.",
            fix: "Add the subject to the stream's subjects (e.g. `nats stream edit FERRY`) or change the sink's `subject` template to match them; `stream_subjects` only applies when ferry creates the stream."),
        .sinkWebhookUnavailable: Explanation(
            meaning: "The endpoint could not be reached (DNS, connect or read timeout, lost connection) or answered 408, 429 or 5xx. Ferry retries with exponential backoff (up to 30 s apart, without limit), each time on a new connection; this sink holds at its position, and with a memory buffer the whole pipeline waits once the buffer is full.",
            fix: "Check the endpoint's URL and that it answers within `timeout_seconds` (default 10); raise that setting or lower `max_events` for slow receivers."),
        .sinkWebhookRejected: Explanation(
            meaning: "The endpoint answered a 4xx other than 408 and 429 (401 and 403 included), or a redirect, which ferry never follows; it counts as a refusal for good. The batch is split to find the change it refuses; with `error_policy: stop` (default) the pipeline stops naming table and position, with `error_policy: dead-letter` that change goes to the dead-letter sink and the rest is applied.",
            fix: "Fix the endpoint or the sink's `headers`/`secret` so it accepts the events, point `url` at the final address rather than one that redirects, or use `error_policy: dead-letter`."),
        .sinkWebhookAddressRefused: Explanation(
            meaning: "The webhook's host resolves to an address ferry will not contact: loopback, private, link-local (which holds cloud metadata services), carrier-grade NAT, one of this machine's own addresses, or another special-purpose range. Nothing is sent; the pipeline stops.",
            fix: "Use a public endpoint, or, when the endpoint really is on your own network, set `allow_private: true` on the sink."),
        .sinkFileOpen: Explanation(
            meaning: "A JSON-lines file (the sink's current or next rotated file, or a dead-letters file) cannot be opened for appending: no permission, a read-only file system, or too many open files. The pipeline stops.",
            fix: "Make the sink's `directory` writable by ferry's user (the packaged systemd unit can only write under /var/lib/ferry), then restart."),
        .sinkFileWrite: Explanation(
            meaning: "Writing a JSON-lines file failed (disk full, I/O error, file too large). It is not retried; it is handled as a rejection, so with the default error_policy the pipeline stops.",
            fix: "Free space or fix the disk, then restart `ferry run`; at start the sink cuts off any partial line or transaction and writes it again."),
        .sinkFileFsync: Explanation(
            meaning: "fsync of a JSON-lines or dead-letters file failed, so it is unknown whether the data reached the disk. The pipeline stops at once and the write is never retried.",
            fix: "Check the disk and the kernel log (dmesg) for I/O errors and fix the device, then restart `ferry run`; at start the sink checks the file's tail and writes again whatever is incomplete."),
        .internalError: Explanation(
            meaning: "An error without a ferry code reached the top of a command: a bug in ferry, or a failure it does not classify yet. The command exits with status 1.",
            fix: "Report it with the command you ran, `ferry --version`, the message and the log lines before it."),
    ]
}
