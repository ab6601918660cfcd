import Foundation
import NIOCore
import Testing
@testable import Etcd

/// The gateway's JSON, as etcd 3.4 sends it (captured from the cluster `scripts/services` starts).
@Suite struct EtcdWireTests {
    func decode<T: Decodable>(_ type: T.Type, _ json: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(json.utf8))
    }

    @Test func rangeAnswer() throws {
        let json = #"{"header":{"cluster_id":"1184158466654030536","member_id":"3195131907451453440","revision":"2","raft_term":"2"},"kvs":[{"key":"L2ZlcnJ5L2E=","create_revision":"2","mod_revision":"2","version":"1","value":"eA=="}],"count":"1"}"#
        let range = try decode(WireRangeResponse.self, json).range
        #expect(range == EtcdRange(keyValues: [EtcdKeyValue(key: Array("/ferry/a".utf8), value: Array("x".utf8), createRevision: 2,
                                                             modRevision: 2, version: 1, lease: 0)],
                                   revision: 2, more: false, count: 1))
        // Zero values are left out: an empty range has neither kvs nor count.
        #expect(try decode(WireRangeResponse.self, #"{"header":{"revision":"9"}}"#).range == EtcdRange(keyValues: [], revision: 9, more: false, count: 0))
    }

    @Test func txnAnswers() throws {
        let won = #"{"header":{"revision":"5","raft_term":"2"},"succeeded":true,"responses":[{"response_put":{"header":{"revision":"5"}}}]}"#
        let response = try decode(WireTxnResponse.self, won)
        #expect(response.succeeded == true && response.responses?.map(\.result) == [.put])
        let lost = #"{"header":{"revision":"5"},"responses":[{"response_range":{"header":{"revision":"5"},"kvs":[{"key":"L2ZlcnJ5L28=","create_revision":"5","mod_revision":"5","version":"1","value":"bg==","lease":"178456030511638"}],"count":"1"}}]}"#
        let other = try decode(WireTxnResponse.self, lost)
        #expect(other.succeeded == nil)
        guard case .get(let range)? = other.responses?.first?.result else { Issue.record("not a range"); return }
        #expect(range.keyValues.first?.lease == 178456030511638 && range.keyValues.first?.valueText == "n")
    }

    @Test func keepAliveAnswers() throws {
        let alive = try decode(WireKeepAliveMessage.self, #"{"result":{"header":{"revision":"4"},"ID":"178456030511638","TTL":"5"}}"#)
        #expect(alive.result?.TTL?.value == 5)
        // A revoked or expired lease: the same answer without a TTL.
        let gone = try decode(WireKeepAliveMessage.self, #"{"result":{"header":{"revision":"4"},"ID":"178456030511638"}}"#)
        #expect(gone.result?.TTL == nil)
        let failed = try decode(WireKeepAliveMessage.self, #"{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}}"#)
        #expect(failed.error?.grpc_code == 14)
    }

    @Test func errorAnswer() throws {
        let error = try decode(WireError.self, #"{"error":"etcdserver: invalid auth token","message":"etcdserver: invalid auth token","code":16}"#)
        #expect(error.code == 16 && error.message == "etcdserver: invalid auth token")
    }

    @Test func requestsAreWrittenAsTheGatewayReadsThem() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let txn = WireTxnRequest(compare: [WireCompare(.absent("/ferry/o"))],
                                 success: [WireRequestOp(.put("/ferry/o", Array("n".utf8), lease: 7))],
                                 failure: [WireRequestOp(.get("/ferry/o"))])
        #expect(String(decoding: try encoder.encode(txn), as: UTF8.self)
                == #"{"compare":[{"create_revision":"0","key":"L2ZlcnJ5L28=","result":"EQUAL","target":"CREATE"}],"failure":[{"request_range":{"key":"L2ZlcnJ5L28="}}],"success":[{"request_put":{"key":"L2ZlcnJ5L28=","lease":"7","value":"bg=="}}]}"#)
        let compare = WireCompare(EtcdCompare(key: "k", .modRevision(12), .less))
        #expect(String(decoding: try encoder.encode(compare), as: UTF8.self)
                == #"{"key":"aw==","mod_revision":"12","result":"LESS","target":"MOD"}"#)
    }

    @Test func integersComeAsStringsOrNumbers() throws {
        #expect(try decode([WireInt64].self, #"["-9223372036854775808", 42, "0"]"#) == [WireInt64(.min), WireInt64(42), WireInt64(0)])
        #expect(throws: DecodingError.self) { try decode(WireInt64.self, #""12x""#) }
        #expect(throws: DecodingError.self) { try decode(WireBytes.self, #""not base64!""#) }
    }

    @Test func prefixEnds() {
        #expect(etcdPrefixEnd(Array("/ferry/".utf8)) == Array("/ferry0".utf8))
        #expect(etcdPrefixEnd([0x61, 0xFF, 0xFF]) == [0x62])
        #expect(etcdPrefixEnd([0xFF]) == [0])
        #expect(etcdPrefixEnd([]) == [0])
    }
}

@Suite struct EtcdStreamTests {
    @Test func endpointRingMovesOnOnlyFromTheFailedOne() {
        var ring = EndpointRing(count: 3)
        ring.failed(0)
        #expect(ring.preferred == 1)
        // A second caller that saw endpoint 0 fail too does not skip endpoint 1.
        ring.failed(0)
        #expect(ring.preferred == 1)
        ring.failed(1)
        ring.failed(2)
        #expect(ring.preferred == 0)
    }

    @Test func linesSplitAcrossParts() throws {
        var splitter = LineSplitter()
        #expect(try splitter.append(ByteBuffer(string: "{\"a\":1}\n{\"b\"")).map { String(decoding: $0, as: UTF8.self) } == ["{\"a\":1}"])
        #expect(try splitter.append(ByteBuffer(string: ":2}")).isEmpty)
        #expect(try splitter.append(ByteBuffer(string: "\n\n{}\n")).map { String(decoding: $0, as: UTF8.self) } == ["{\"b\":2}", "{}"])
    }

    func result(_ json: String) throws -> WireWatchMessage.Result {
        try #require(try JSONDecoder().decode(WireWatchMessage.self, from: Data("{\"result\":\(json)}".utf8)).result)
    }

    @Test func watchCursorResumesAfterTheLastDelivered() throws {
        var cursor = WatchCursor(nextRevision: 2)
        // Created while history is still to come: the header's revision is not yet delivered.
        #expect(try cursor.accept(try result(#"{"header":{"revision":"9"},"created":true}"#), endpoint: "e").isEmpty)
        #expect(cursor.nextRevision == 2)
        let events = try cursor.accept(try result(#"{"header":{"revision":"9"},"events":[{"kv":{"key":"L2ZlcnJ5L2I=","create_revision":"3","mod_revision":"3","version":"1","value":"eQ=="}},{"type":"DELETE","kv":{"key":"L2ZlcnJ5L2I=","mod_revision":"4"}}]}"#), endpoint: "e")
        #expect(events.map(\.kind) == [.put, .delete] && events.map(\.keyValue.modRevision) == [3, 4])
        #expect(events[0].keyValue.valueText == "y" && events[1].keyValue.value.isEmpty)
        #expect(cursor.nextRevision == 5)
        // A progress notice: everything up to 9 was sent.
        #expect(try cursor.accept(try result(#"{"header":{"revision":"9"}}"#), endpoint: "e").isEmpty)
        #expect(cursor.nextRevision == 10)
    }

    @Test func watchFromNowStartsAfterTheCreationRevision() throws {
        var cursor = WatchCursor(nextRevision: 0)
        _ = try cursor.accept(try result(#"{"header":{"revision":"41"},"created":true}"#), endpoint: "e")
        #expect(cursor.nextRevision == 42)
    }

    @Test func compactedAndCancelledWatchesThrow() throws {
        var cursor = WatchCursor(nextRevision: 3)
        #expect {
            try cursor.accept(try result(#"{"header":{"revision":"90"},"canceled":true,"compact_revision":"50"}"#), endpoint: "e")
        } throws: { error in
            guard case EtcdError.compacted(3, 50)? = error as? EtcdError else { return false }
            return "\(error)".contains("compacted")
        }
        #expect(throws: EtcdError.self) {
            try cursor.accept(try result(#"{"header":{"revision":"90"},"canceled":true,"cancel_reason":"mvcc: required revision is a future revision"}"#), endpoint: "e")
        }
    }
}
