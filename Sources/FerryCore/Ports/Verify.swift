/// A table sink that can compare what it holds with source rows (`ferry verify`).
///
/// Rows are in the target's shape (after the pipeline's mapping) and carry the source's values;
/// keys are values of `schema.primaryKey`. Each sink compares in its database with the semantics
/// it writes with, so a value it wrote exactly is never reported as different.
public protocol VerifiableSink: SinkSession {
    /// The indexes of `rows` that the target's table `table` lacks or holds with other values.
    func differingRows(table: String, schema: TableSchema, rows: [Row]) async throws -> [Int]

    /// Rows in the target's table; `nil` when the table does not exist.
    func rowCount(table: String) async throws -> Int?

    /// The keys the target's table holds that are not among `sourceKeys`, as values the source can
    /// take back as literals.
    func extraKeys(table: String, schema: TableSchema, sourceKeys: [[Value]]) async throws -> [[Value]]
}
