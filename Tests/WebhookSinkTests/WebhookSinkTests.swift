import Foundation
import FerryCore
import Testing
@testable import WebhookSink

@Suite struct AddressPolicyTests {
    @Test func ownNetworksAndMetadataAreRefused() async {
        for (address, reason) in [("127.0.0.1", "a loopback address"), ("10.1.2.3", "a private address"), ("172.31.0.1", "a private address"),
                                  ("192.168.0.10", "a private address"), ("169.254.169.254", "a cloud metadata address"),
                                  ("169.254.10.1", "a link-local address"), ("100.100.0.1", "a carrier-grade NAT address"), ("0.0.0.0", "the unspecified address"),
                                  ("::1", "a loopback address"), ("::", "the unspecified address"), ("fd00:ec2::254", "a cloud metadata address"),
                                  ("fd12:3456::1", "a private (unique local) address"), ("fe80::1", "a link-local address"),
                                  ("::ffff:169.254.169.254", "a cloud metadata address"), ("::ffff:10.0.0.1", "a private address"),
                                  ("fe80::1%eth0", "not an IP address")] {
            #expect(AddressPolicy.refusal(address) == reason, "\(address)")
        }
        // IPv6 spellings of IPv4 addresses and IANA's special-purpose ranges.
        for (address, reason) in [("::127.0.0.1", "a loopback address"), ("64:ff9b::7f00:1", "a loopback address"),
                                  ("64:ff9b::a00:1", "a private address"), ("2002:a9fe:a9fe::1", "a cloud metadata address"),
                                  ("64:ff9b:1::1", "a local-use NAT64 address"), ("192.0.2.1", "a documentation address"),
                                  ("198.18.0.1", "a benchmarking address"), ("240.0.0.1", "a reserved address"),
                                  ("2001:db8::1", "a documentation address"), ("fec0::1", "a site-local address"),
                                  ("100::1", "a discard-only address"), ("2001::1", "a special-purpose address (IETF protocol assignments)"),
                                  ("4000::1", "a reserved address")] {
            #expect(AddressPolicy.refusal(address) == reason, "\(address)")
        }
        for address in ["93.184.216.34", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "8.8.8.8", "64:ff9b::5db8:d822"] {
            #expect(AddressPolicy.refusal(address) == nil, "\(address)")
        }
        // The machine's own addresses (its eth0, say) are refused whatever range they are in.
        for own in AddressPolicy.interfaceAddresses() {
            let text = own.count == 4 ? own.map(String.init).joined(separator: ".") : nil
            if let text { #expect(AddressPolicy.refusal(text) != nil, "\(text) belongs to this machine") }
        }
        #expect(AddressPolicy.ownAddress([127, 0, 0, 1]) == "an address of this machine")
        #expect(await AddressPolicy.resolve("127.0.0.1") == ["127.0.0.1"])
        #expect(await AddressPolicy.resolve("localhost").contains("127.0.0.1"))
        for name in ["localhost.", "LOCALHOST", "evil.localhost", "a.b.localhost."] {
            #expect(await AddressPolicy.resolve(name) == ["127.0.0.1"], "\(name)")
        }
    }
}

@Suite struct WebhookBodyTests {
    @Test func signatureIsHMACSHA256OfTheBody() {
        #expect(WebhookSink.signature(Array(#"{"events":[]}"#.utf8), secret: "topsecret")
                == "sha256=579edd9f2665fb4ccbf51765e780cf85aa90cc5f0d1286c424a4e165187553f8")
    }

    @Test func bodyCarriesIdsInOrder() throws {
        let schema = TableSchema(name: TableName(database: "shop", table: "t"), columns: [ColumnSchema(name: "id", typeName: "int", nullable: false)], primaryKey: [0])
        let at = SourcePosition.binlog(file: "b.000002", offset: 77)
        let events = (0..<2).map { row in
            ChangeEvent(operation: .create, table: schema.name, schema: schema, before: nil, after: [.int(Int64(row))],
                        source: ChangeSource(name: "db", serverID: 1, gtid: nil, position: at, row: row, timestampMillis: 0))
        }
        let body = String(decoding: WebhookSink.body(events.map { ($0, 2) }, pipeline: "p", sink: "hook", writer: EventJSONWriter(format: .debezium)), as: UTF8.self)
        #expect(body.hasPrefix(#"{"pipeline":"p","sink":"hook","events":[{"id":"b.000002:77:0","txn_events":2,"before":null,"after":{"id":0},"source":"#))
        #expect(body.contains(#"},{"id":"b.000002:77:1","txn_events":2,"before":null,"after":{"id":1}"#) && body.hasSuffix("}]}"))
        // With the schema block each event is Kafka Connect's {schema, payload} beside its id.
        let withSchema = WebhookSink.body(events.map { ($0, 2) }, pipeline: "p", sink: "hook", writer: EventJSONWriter(format: .debeziumSchema))
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(withSchema)) as? [String: Any])
        let first = try #require((parsed["events"] as? [[String: Any]])?.first)
        #expect(Set(first.keys) == ["id", "txn_events", "schema", "payload"])
        #expect(first["id"] as? String == "b.000002:77:0")
        #expect((first["schema"] as? [String: Any])?["name"] as? String == "db.shop.t.Envelope")
        #expect(((first["payload"] as? [String: Any])?["after"] as? [String: Any])?["id"] as? Int == 0)
    }
}
