import FerryCore
import PostgresWire

/// How much WAL the server keeps for a pipeline's slot, against what it may keep.
///
/// A slot holds the WAL from its `restart_lsn` on: a pipeline that is down or behind makes that
/// grow without bound, until `max_slot_wal_keep_size` (when set) lets the server drop the slot's
/// WAL and invalidate it — changes lost. The figure falls back to a few megabytes once every
/// target holds the changes and the slot confirms them.
public struct SlotRetention: Sendable, Equatable {
    public var slot: String
    /// From the slot's `restart_lsn` to the server's current WAL position.
    public var retainedBytes: Int64
    /// `max_slot_wal_keep_size`; nil when unlimited (-1, the default).
    public var limitBytes: Int64?
    /// `reserved`, `extended`, `unreserved` (past the limit: lost at the next checkpoint) or `lost`.
    public var walStatus: String

    public init(slot: String, retainedBytes: Int64, limitBytes: Int64?, walStatus: String) {
        self.slot = slot
        self.retainedBytes = retainedBytes
        self.limitBytes = limitBytes
        self.walStatus = walStatus
    }

    /// Past half the limit, or the server already counts the WAL as not reserved.
    public var isHigh: Bool {
        walStatus == "unreserved" || walStatus == "lost" || limitBytes.map { retainedBytes > $0 / 2 } == true
    }

    /// `slot ferry_orders holds 1.2 GiB of WAL (limit 4 GiB, reserved)`.
    public var summary: String {
        let limit = limitBytes.map { "limit \(ByteText.binary($0))" } ?? "no limit: max_slot_wal_keep_size = -1"
        return "slot \(slot) holds \(ByteText.binary(retainedBytes)) of WAL (\(limit), \(walStatus))"
    }

    /// What to do while the figure is high.
    public static let fix = "let the pipeline catch up (resume it, or fix what holds its sinks), or let the server keep more: ALTER SYSTEM SET max_slot_wal_keep_size = '…'; SELECT pg_reload_conf();"

    static let query = """
        SELECT coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint::text, coalesce(wal_status, ''),
               (SELECT setting FROM pg_settings WHERE name = 'max_slot_wal_keep_size')
        FROM pg_replication_slots WHERE slot_name = $1
        """
}

extension PostgresSource {
    /// The retention of this source's named slot; nil when there is no such slot (yet).
    public func slotRetention() async throws -> SlotRetention? {
        guard let slot = configuration.slot else { return nil }
        let sql = try await connect(configuration.connection, purpose: "catalog")
        do {
            let found = try await setup("reading slot \(slot)") { try await sql.query(SlotRetention.query, [.text(slot)]) }
            await sql.close()
            guard !found.rows.isEmpty else { return nil }
            // The setting is in megabytes; -1 means no limit.
            let megabytes = Int64(found.text(0, 2) ?? "") ?? -1
            return SlotRetention(slot: slot, retainedBytes: Int64(found.text(0, 0) ?? "") ?? 0,
                                 limitBytes: megabytes < 0 ? nil : megabytes * 1024 * 1024, walStatus: found.text(0, 1) ?? "")
        } catch {
            await sql.close()
            throw error
        }
    }
}
