import FerryCore
import Foundation
import Logging
import PostgresLogical
import PostgresWire
import Testing

extension Integration {
    /// PostgreSQL's logical replication, read by ferry's own client and pgoutput decoder from
    /// the real server (`wal_level = logical`, scripts/services): a slot, a publication, every
    /// kind of change — an update leaving a TOASTed column untouched among them — a logical
    /// message, the confirmed position moved by a standby status update, and a transaction too
    /// large for the server's memory streamed in segments (protocol 2).
    @Suite struct PostgresLogicalReplication {
        static func configuration(replication: Bool, options: [(String, String)] = []) throws -> PostgresWireConfiguration {
            let url = try #require(URLComponents(string: try TestEnvironment.value("FERRY_POSTGRES_SOURCE_URL")))
            return PostgresWireConfiguration(host: "127.0.0.1", port: try #require(url.port), user: "ferry_source",
                                             password: try TestEnvironment.value("FERRY_POSTGRES_PASSWORD"), database: "source",
                                             options: (replication ? [("replication", "database")] : []) + options)
        }

        static func connect(replication: Bool, options: [(String, String)] = []) async throws -> PostgresWireConnection {
            try await PostgresWireConnection.connect(configuration(replication: replication, options: options), logger: Logger(label: "test"))
        }

        /// Reads the stream until `done` says so, answering keepalives that ask; the connection is
        /// closed (and the read fails) when 60 seconds pass first.
        static func read(_ stream: PostgresWireConnection, protocolVersion: Int,
                         until done: @escaping @Sendable ([PgOutputMessage]) -> Bool) async throws -> [PgOutputMessage] {
            try await withThrowingTaskGroup(of: [PgOutputMessage]?.self) { group in
                let closer = stream.closer
                group.addTask {
                    try await Task.sleep(for: .seconds(60))
                    closer.close()
                    return nil
                }
                var decoder = PgOutputDecoder(protocolVersion: protocolVersion)
                var messages: [PgOutputMessage] = []
                while !done(messages) {
                    guard let data = try await stream.nextCopyData() else { break }
                    switch try ReplicationMessage.decode(data) {
                    case .xLogData(_, _, _, let payload):
                        messages.append(try decoder.decode(payload))
                    case .keepalive(let end, _, true):
                        try await stream.sendCopyData(StandbyStatusUpdate(written: end, flushed: .zero, applied: .zero, sentAt: 0).bytes)
                    case .keepalive:
                        continue
                    }
                }
                group.cancelAll()
                return messages
            }
        }

        static func text(_ value: String) -> TupleData.Value { .text(Array(value.utf8)) }

        /// Runs `body` again while the server says the slot is still in use (by a connection it
        /// has not yet seen go), for up to 30 seconds.
        static func whileSlotIsActive(_ body: () async throws -> Void) async throws {
            let deadline = ContinuousClock.now + .seconds(30)
            while true {
                do {
                    return try await body()
                } catch PostgresWireError.server(let error) where ContinuousClock.now < deadline && "\(error)".contains("is active") {
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
        }

        @Test func changesArriveThroughPgoutput() async throws {
            let sql = try await Self.connect(replication: false)
            try await sql.simpleQuery("""
                DROP PUBLICATION IF EXISTS it_pub; DROP TABLE IF EXISTS it_items;
                CREATE TABLE it_items (id int PRIMARY KEY, note text, price numeric(12,2), big text);
                ALTER TABLE it_items ALTER COLUMN big SET STORAGE EXTERNAL;
                CREATE PUBLICATION it_pub FOR TABLE it_items
                """)
            let stream = try await Self.connect(replication: true)
            let system = try await stream.simpleQuery("IDENTIFY_SYSTEM")
            #expect(system.columns == ["systemid", "timeline", "xlogpos", "dbname"] && system.text(0, 3) == "source")
            #expect(LSN(system.text(0, 2) ?? "") != nil)
            let slot = "it_slot_\(UInt32.random(in: 0 ... .max))"
            let created = try await stream.simpleQuery("CREATE_REPLICATION_SLOT \(slot) TEMPORARY LOGICAL pgoutput")
            let start = try #require(LSN(created.text(0, 1) ?? ""), "\(created.columns)")
            let big = String(repeating: "x", count: 10_000)
            // One simple query: one transaction.
            try await sql.simpleQuery("""
                INSERT INTO it_items VALUES (1, 'one', 12.50, '\(big)'), (2, NULL, -0.01, NULL);
                UPDATE it_items SET note = 'uno' WHERE id = 1;
                UPDATE it_items SET id = 3 WHERE id = 2;
                DELETE FROM it_items WHERE id = 3;
                SELECT pg_logical_emit_message(true, 'ferry', 'hello')
                """)
            try await stream.startCopyBoth("START_REPLICATION SLOT \(slot) LOGICAL \(start) (proto_version '1', publication_names 'it_pub', messages 'true')")
            let messages = try await Self.read(stream, protocolVersion: 1) { messages in
                messages.contains { if case .commit = $0 { return true } else { return false } }
            }
            #expect(messages.count == 9, "\(messages)")
            guard messages.count == 9, case .begin(let begin) = messages[0], case .relation(let relation, nil) = messages[1],
                  case .commit(let commit) = messages[8] else {
                Issue.record("not begin, relation … commit: \(messages)")
                return
            }
            #expect(commit.commitLSN == begin.finalLSN && commit.endLSN > commit.commitLSN)
            #expect(relation.namespace == "public" && relation.name == "it_items" && relation.replicaIdentity == .default)
            #expect(relation.columns.map(\.name) == ["id", "note", "price", "big"] && relation.columns.map(\.isKey) == [true, false, false, false])
            #expect(relation.columns.map(\.typeOID) == [23, 25, 1700, 25])
            let id = relation.id
            let t = Self.text
            #expect(Array(messages[2...7]) == [
                .insert(relation: id, new: TupleData([t("1"), t("one"), t("12.50"), t(big)]), xid: nil),
                .insert(relation: id, new: TupleData([t("2"), .null, t("-0.01"), .null]), xid: nil),
                // The TOASTed column the update left alone is not sent: the target must keep its own.
                .update(relation: id, old: nil, new: TupleData([t("1"), t("uno"), t("12.50"), .unchangedToast]), xid: nil),
                .update(relation: id, old: .key(TupleData([t("2"), .null, .null, .null])), new: TupleData([t("3"), .null, t("-0.01"), .null]), xid: nil),
                .delete(relation: id, old: .key(TupleData([t("3"), .null, .null, .null])), xid: nil),
                .message(transactional: true, lsn: messages[7].messageLSN ?? .zero, prefix: "ferry", content: Array("hello".utf8), xid: nil),
            ])
            var assembler = PgTransactionAssembler()
            let assembled = try messages.compactMap { try assembler.add($0) }
            guard case .transaction(let transaction)? = assembled.first, assembled.count == 1 else { Issue.record("\(assembled)"); return }
            #expect(transaction.xid == begin.xid && transaction.endLSN == commit.endLSN && transaction.changes.count == 6 && !transaction.streamed)
            // The slot's confirmed position moves only when ferry says the change is safe.
            try await stream.sendCopyData(StandbyStatusUpdate(written: commit.endLSN, flushed: commit.endLSN, applied: commit.endLSN, sentAt: 0).bytes)
            let deadline = ContinuousClock.now + .seconds(30)
            var confirmed: LSN?
            while ContinuousClock.now < deadline {
                confirmed = LSN(try await sql.query("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", [.text(slot)]).text(0, 0) ?? "")
                if confirmed == commit.endLSN { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(confirmed == commit.endLSN)
            await stream.close()
            await sql.close()
        }

        /// A transaction larger than `logical_decoding_work_mem` arrives in segments while it
        /// runs, each change carrying its xid, and ends with Stream Commit.
        @Test func largeTransactionsStreamInSegments() async throws {
            let sql = try await Self.connect(replication: false)
            try await sql.simpleQuery("""
                DROP PUBLICATION IF EXISTS it_big_pub; DROP TABLE IF EXISTS it_big;
                CREATE TABLE it_big (id int PRIMARY KEY, v text); CREATE PUBLICATION it_big_pub FOR TABLE it_big
                """)
            let stream = try await Self.connect(replication: true, options: [("logical_decoding_work_mem", "64kB")])
            let slot = "it_big_\(UInt32.random(in: 0 ... .max))"
            let start = try #require(LSN(try await stream.simpleQuery("CREATE_REPLICATION_SLOT \(slot) TEMPORARY LOGICAL pgoutput").text(0, 1) ?? ""))
            try await sql.simpleQuery("INSERT INTO it_big SELECT g, repeat('v', 100) FROM generate_series(1, 5000) g")
            try await stream.startCopyBoth("START_REPLICATION SLOT \(slot) LOGICAL \(start) (proto_version '2', publication_names 'it_big_pub', streaming 'on')")
            let messages = try await Self.read(stream, protocolVersion: 2) { messages in
                messages.contains { if case .streamCommit = $0 { return true } else { return false } }
            }
            let segments = messages.filter { if case .streamStart = $0 { return true } else { return false } }.count
            var xids: Set<UInt32?> = []
            var inserts = 0
            for message in messages {
                if case .insert(_, _, let xid) = message {
                    inserts += 1
                    xids.insert(xid)
                }
            }
            guard case .streamCommit(let xid, _)? = messages.last else {
                Issue.record("no stream commit last: \(messages.suffix(3))")
                return
            }
            #expect(segments >= 2, "\(segments) segments")
            #expect(inserts == 5000 && xids == [xid])
            var assembler = PgTransactionAssembler()
            let assembled = try messages.compactMap { try assembler.add($0) }
            guard case .transaction(let transaction)? = assembled.first, assembled.count == 1 else { Issue.record("\(assembled.count) assembled"); return }
            #expect(transaction.xid == xid && transaction.streamed && transaction.changes.count == 5000)
            await stream.close()
            await sql.close()
        }

        /// What was confirmed is where a restart resumes: after the first transaction is
        /// confirmed and the connection dropped, a new connection gets exactly the second one —
        /// nothing lost, nothing twice.
        @Test func aRestartResumesAfterWhatWasConfirmed() async throws {
            let sql = try await Self.connect(replication: false)
            try await sql.simpleQuery("""
                DROP PUBLICATION IF EXISTS it_resume_pub; DROP TABLE IF EXISTS it_resume;
                CREATE TABLE it_resume (id int PRIMARY KEY); CREATE PUBLICATION it_resume_pub FOR TABLE it_resume
                """)
            let slot = "it_resume_\(UInt32.random(in: 0 ... .max))"
            let first = try await Self.connect(replication: true)
            try await first.simpleQuery("CREATE_REPLICATION_SLOT \(slot) LOGICAL pgoutput")
            try await sql.simpleQuery("INSERT INTO it_resume VALUES (1)")
            try await sql.simpleQuery("INSERT INTO it_resume VALUES (2)")
            let command = "START_REPLICATION SLOT \(slot) LOGICAL 0/0 (proto_version '1', publication_names 'it_resume_pub')"
            func now() -> PostgresTimestamp { .fromUnixMicroseconds(Int64(Date().timeIntervalSince1970 * 1_000_000)) }
            func transactions(_ stream: PostgresWireConnection, _ state: inout ReplicationStreamState, count: Int) async throws -> [PgTransaction] {
                var found: [PgTransaction] = []
                while found.count < count, let payload = try await stream.nextCopyData() {
                    let step = try state.receive(payload, now: now())
                    if case .transaction(let transaction)? = step.assembled { found.append(transaction) }
                    if let reply = step.reply { try await stream.sendCopyData(reply.bytes) }
                }
                return found
            }
            try await first.startCopyBoth(command)
            var state = ReplicationStreamState(protocolVersion: 1, confirmed: .zero)
            let both = try await transactions(first, &state, count: 2)
            #expect(both.count == 2)
            guard both.count == 2 else { return }
            state.confirm(both[0].endLSN)
            if let status = state.statusIfDue(now: now()) { try await first.sendCopyData(status.bytes) }
            let deadline = ContinuousClock.now + .seconds(30)
            var confirmed: LSN?
            while ContinuousClock.now < deadline {
                confirmed = LSN(try await sql.query("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", [.text(slot)]).text(0, 0) ?? "")
                if confirmed == both[0].endLSN { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(confirmed == both[0].endLSN)
            first.closer.close()
            let second = try await Self.connect(replication: true)
            // The slot stays active until the server notices the first connection is gone.
            try await Self.whileSlotIsActive { try await second.startCopyBoth(command) }
            var resumed = ReplicationStreamState(protocolVersion: 1, confirmed: both[0].endLSN)
            let again = try await transactions(second, &resumed, count: 1)
            #expect(again.map(\.xid) == [both[1].xid] && again.first?.changes == both[1].changes)
            await second.close()
            try await Self.whileSlotIsActive { try await sql.query("SELECT pg_drop_replication_slot($1)", [.text(slot)]) }
            await sql.close()
        }
    }
}

extension PgOutputMessage {
    var messageLSN: LSN? {
        if case .message(_, let lsn, _, _, _) = self { return lsn }
        return nil
    }
}
