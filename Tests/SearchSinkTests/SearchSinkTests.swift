import FerryCore
import Foundation
import Testing
@testable import SearchSink

/// The bulk API's request and response shapes as Elasticsearch's and OpenSearch's documents give
/// them (no such server is packaged here).
@Suite struct SearchBulkTests {
    static let schema = TableSchema(name: TableName(database: "Shop", table: "Orders"),
                                    columns: [ColumnSchema(name: "id", typeName: "int", nullable: false), ColumnSchema(name: "who", typeName: "varchar(20)", nullable: true)],
                                    primaryKey: [0])

    func transaction(_ offset: UInt64, step: Int = 0, _ changes: [(ChangeOperation, Row?, Row?)]) -> Transaction {
        let at = SourcePosition.binlog(file: "mariadb-bin.000042", offset: offset, snapshotStep: UInt32(step))
        return Transaction(gtid: nil, position: at, serverID: 1, timestampMillis: 0, events: changes.enumerated().map { index, change in
            ChangeEvent(operation: change.0, table: Self.schema.name, schema: Self.schema, before: change.1, after: change.2,
                        source: ChangeSource(name: "db", serverID: 1, gtid: nil, position: at, row: index, timestampMillis: 0))
        })
    }

    @Test func requestBodyIsNDJSONWithExternalVersions() throws {
        let batch = [
            transaction(1000, [(.create, nil, [.int(1), .string("ada \"a\"")]), (.update, [.int(2), .null], [.int(3), .null])]),
            transaction(2000, [(.delete, [.int(1), .string("ada")], nil)]),
        ]
        let actions = try SearchBulk.actions(batch, index: "{db}.{table}")
        let v1 = 42 << 43 | 1000 << 8, v2 = 42 << 43 | 2000 << 8
        #expect(String(decoding: SearchBulk.body(actions), as: UTF8.self) == """
            {"index":{"_index":"shop.orders","_id":"1","version":\(v1),"version_type":"external_gte"}}
            {"id":1,"who":"ada \\"a\\""}
            {"delete":{"_index":"shop.orders","_id":"2","version":\(v1),"version_type":"external_gte"}}
            {"index":{"_index":"shop.orders","_id":"3","version":\(v1),"version_type":"external_gte"}}
            {"id":3,"who":null}
            {"delete":{"_index":"shop.orders","_id":"1","version":\(v2),"version_type":"external_gte"}}

            """)
    }

    @Test func itemOutcomes() throws {
        let response = #"""
        {"took":30,"errors":true,"items":[
          {"index":{"_index":"shop.orders","_id":"1","_version":5,"result":"created","_shards":{"total":2,"successful":1,"failed":0},"status":201}},
          {"index":{"_index":"shop.orders","_id":"2","status":409,"error":{"type":"version_conflict_engine_exception","reason":"[2]: version conflict, current version [9] is higher or equal to the one provided [5]"}}},
          {"delete":{"_index":"shop.orders","_id":"3","_version":1,"result":"not_found","status":404}},
          {"index":{"_index":"shop.orders","_id":"4","status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation"}}},
          {"index":{"_index":"shop.orders","_id":"5","status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [who] of type [long]"}}},
          {"index":{"_index":"shop.orders","_id":"6","status":200,"result":"updated"}}
        ]}
        """#
        let json = try #require(JSONSerialization.jsonObject(with: Data(response.utf8)) as? [String: Any])
        #expect(try SearchBulk.outcomes(json, count: 6) == [
            .applied, .superseded, .applied, .retry(status: 429, reason: "es_rejected_execution_exception: rejected execution of coordinating operation"),
            .rejected(status: 400, reason: "mapper_parsing_exception: failed to parse field [who] of type [long]"), .applied,
        ])
        #expect(throws: SearchBulkError.self) { try SearchBulk.outcomes(json, count: 5) }
    }

    @Test func aTableWithoutKeyIsNamed() {
        let keyless = TableSchema(name: TableName(database: "s", table: "log"), columns: [ColumnSchema(name: "m", typeName: "text", nullable: true)], primaryKey: [])
        let at = SourcePosition.binlog(file: "b.000001", offset: 4)
        let event = ChangeEvent(operation: .create, table: keyless.name, schema: keyless, before: nil, after: [.string("x")],
                                source: ChangeSource(name: "db", serverID: 1, gtid: nil, position: at, row: 0, timestampMillis: 0))
        #expect(throws: SearchBulkError.self) { try SearchBulk.actions([Transaction(gtid: nil, position: at, serverID: 1, timestampMillis: 0, events: [event])], index: "{table}") }
    }
}
