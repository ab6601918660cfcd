import FerryCore
import FerryTestKit
import SinkSupport
import Testing

@Suite struct LaneTests {
    let router = LaneRouter(lanes: 4)

    @Test func aRowAlwaysTakesTheSameLane() {
        for id in 0..<200 {
            let row: Row = [.int(Int64(id)), .string("x"), .null]
            let lane = router.lane(itemsSchema.name, itemsSchema, row)
            #expect(lane == router.lane(itemsSchema.name, itemsSchema, [.int(Int64(id)), .string("changed"), .decimal("1.00")]))
            #expect((0..<4).contains(lane))
        }
        let lanes = Set((0..<200).map { router.lane(itemsSchema.name, itemsSchema, [.int(Int64($0)), .null, .null]) })
        #expect(lanes.count == 4, "keys spread over every lane")
        // Stable across runs: FNV-1a over "shop", 0, "items", 0, "1" (the key in JSON form) is 2 mod 4.
        #expect(router.lane(itemsSchema.name, itemsSchema, [.int(1), .null, .null]) == 2)
    }

    @Test func aKeyChangeAcrossLanesIsADeleteAndAnInsert() throws {
        var from: Int64 = 0, to: Int64 = 1
        while router.lane(itemsSchema.name, itemsSchema, [.int(from), .null, .null]) == router.lane(itemsSchema.name, itemsSchema, [.int(to), .null, .null]) { to += 1 }
        let parts = router.route(transaction(100, [(.update, [.int(from), .string("a"), .null], [.int(to), .absent, .null])]))
        #expect(parts.count == 4)
        #expect(parts.allSatisfy { $0.position == position(100) }, "every lane records the position")
        let oldLane = parts[router.lane(itemsSchema.name, itemsSchema, [.int(from), .null, .null])]
        let newLane = parts[router.lane(itemsSchema.name, itemsSchema, [.int(to), .null, .null])]
        #expect(oldLane.events.map(\.operation) == [.delete])
        #expect(newLane.events.map(\.operation) == [.create])
        #expect(newLane.events[0].after == [.int(to), .string("a"), .null], "the partial image is completed from the before image")
        #expect(parts.map(\.events.count).reduce(0, +) == 2)
    }

    @Test func lanesApplyInParallelAndEachSkipsWhatItHas() async throws {
        let lanes = (0..<3).map { MemoryTableSink(name: "lane\($0)") }
        let sink = LanedSink(name: "pg", lanes: lanes)
        #expect(try await sink.open() == nil)
        let first = (1...30).map { transaction(UInt64($0 * 10), [(.create, nil, [.int(Int64($0)), .string("v\($0)"), .null])]) }
        try await sink.apply(first)
        let counts = await (lanes[0].rows("shop.items").count, lanes[1].rows("shop.items").count, lanes[2].rows("shop.items").count)
        #expect(counts.0 + counts.1 + counts.2 == 30)
        #expect(counts.0 > 0 && counts.1 > 0 && counts.2 > 0)
        for lane in lanes { #expect(await lane.position == position(300)) }
        // A DDL is a barrier applied in lane 0 only; every lane records its position.
        let ddl = Transaction(gtid: nil, position: position(310), serverID: 1, timestampMillis: 0, events: [
            ChangeEvent(operation: .ddl, table: itemsSchema.name, schema: nil, before: nil, after: nil, statement: "TRUNCATE items",
                        schemaChanges: [.truncateTable(itemsSchema.name)],
                        source: ChangeSource(name: "s", serverID: 1, gtid: nil, position: position(310), row: 0, timestampMillis: 0)),
        ])
        try await sink.apply([ddl])
        for lane in lanes { #expect(await lane.position == position(310)) }
        // Reopened with lanes at different positions: the sink reports the lowest, and a lane
        // that is ahead does not apply its changes again.
        let reopened = LanedSink(name: "pg", lanes: [MemoryTableSink(name: "a", position: position(310)), MemoryTableSink(name: "b", position: position(300)),
                                                      MemoryTableSink(name: "c", position: position(310))])
        #expect(try await reopened.open() == position(300))
    }
}
