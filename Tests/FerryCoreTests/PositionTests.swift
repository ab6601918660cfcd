import FerryCore
import Testing

@Suite struct PositionTests {
    @Test func versionsOrderLikePositions() {
        func version(_ file: String, _ offset: UInt64, _ step: Int = 0) -> Int64 {
            var position = BinlogPosition(coordinates: BinlogCoordinates(file: file, offset: offset), gtidPosition: nil)
            position.snapshotStep = UInt32(step)
            return position.version
        }
        #expect(version("mariadb-bin.000042", 1234) == 42 << 43 | 1234 << 8)
        #expect(version("b.000001", 999_999_999) < version("b.000002", 4))
        #expect(version("b.000001", 500) < version("b.000001", 500, 1) && version("b.000001", 500, 1) < version("b.000001", 501))
        #expect(version("b.999999", 1 << 34, 3) > 0, "the largest positions stay positive")
    }

    @Test func coordinatesOrderByFileSequenceThenOffset() {
        let a = BinlogCoordinates(file: "mariadb-bin.000009", offset: 900)
        let b = BinlogCoordinates(file: "mariadb-bin.000010", offset: 4)
        #expect(a < b)
        #expect(BinlogCoordinates(file: "x.000010", offset: 4) < BinlogCoordinates(file: "x.000010", offset: 5))
        #expect(BinlogCoordinates(parsing: "mariadb-bin.000003:1234") == BinlogCoordinates(file: "mariadb-bin.000003", offset: 1234))
        #expect(BinlogCoordinates(parsing: "nocolon") == nil)
        #expect(BinlogCoordinates(parsing: "file:-1") == nil)
        #expect(BinlogCoordinates(parsing: ":12") == nil)
    }

    @Test func mariadbGTIDPositions() {
        let position = MariaDBGTIDPosition(parsing: "1-2-7, 0-1-100")
        #expect(position?.description == "0-1-100,1-2-7")
        var advanced = position!
        advanced.advance(to: MariaDBGTID(domain: 0, serverID: 3, sequence: 101))
        #expect(advanced.description == "0-3-101,1-2-7")
        #expect(advanced.contains(MariaDBGTID(domain: 1, serverID: 2, sequence: 7)))
        #expect(!advanced.contains(MariaDBGTID(domain: 2, serverID: 2, sequence: 1)))
        #expect(MariaDBGTIDPosition(parsing: "0-1") == nil)
        #expect(MariaDBGTIDPosition(parsing: "0-1-1,0-1-2") == nil)
        #expect(MariaDBGTIDPosition(parsing: "")?.gtids.isEmpty == true)
    }

    @Test func mysqlGTIDSets() throws {
        let text = "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:7,3E11FA47-71CA-11E1-9E33-C80AA9429562:6"
        let set = try #require(MySQLGTIDSet(parsing: Substring(text)))
        #expect(set.description == "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-7")
        var grown = set
        let uuid = try #require(MySQLGTIDSet.ServerUUID(parsing: "3E11FA47-71CA-11E1-9E33-C80AA9429562"))
        grown.add(uuid: uuid, transaction: 9)
        #expect(grown.description == "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-7:9")
        #expect(grown.contains(uuid: uuid, transaction: 9))
        #expect(!grown.contains(uuid: uuid, transaction: 8))
        #expect(MySQLGTIDSet(parsing: "not-a-uuid:1-2") == nil)
        #expect(MySQLGTIDSet(parsing: "3E11FA47-71CA-11E1-9E33-C80AA9429562:5-3") == nil)
    }
}

@Suite struct SnapshotStepTests {
    static func at(_ offset: UInt64, step: UInt32 = 0) -> BinlogPosition {
        BinlogPosition(coordinates: BinlogCoordinates(file: "mariadb-bin.000007", offset: offset), gtidPosition: nil, snapshotStep: step)
    }

    /// A chunk delivered between transactions sits after the one at its coordinates and before the next.
    @Test func stepsOrderAfterTheirTransaction() {
        #expect(Self.at(100) < Self.at(100, step: 1))
        #expect(Self.at(100, step: 1) < Self.at(100, step: 2))
        #expect(Self.at(100, step: 9) < Self.at(101))
        #expect([Self.at(101), Self.at(100, step: 2), Self.at(100)].min() == Self.at(100))
        #expect(Self.at(100, step: 3).description == "mariadb-bin.000007:100 +chunk 3")
    }

    @Test func stepsArePersisted() throws {
        let position = Self.at(4242, step: 17)
        #expect(position.persistedJSON == #"{"file":"mariadb-bin.000007","pos":4242,"step":17}"#)
        #expect(BinlogPosition(persistedJSON: position.persistedJSON) == position)
        #expect(BinlogPosition(persistedJSON: #"{"file":"mariadb-bin.000007","pos":4242}"#) == Self.at(4242))
        let transaction = Transaction(gtid: nil, position: position, serverID: 1, timestampMillis: 5, events: [])
        var decoder = TransactionDecoder()
        #expect(try decoder.decode(TransactionCodec.encode(transaction)).position == position)
        #expect(try TransactionCodec.summary(of: TransactionCodec.encode(transaction)).position == position)
    }

    /// Disk buffers written before steps existed (record version 1) stay readable.
    @Test func versionOneRecordsStayReadable() throws {
        var bytes = TransactionCodec.encode(Transaction(gtid: nil, position: Self.at(9), serverID: 1, timestampMillis: 5, events: []))
        // Version 2 adds one varint (0) after the position: file (1 + 18 bytes), offset (8), flavor (1).
        bytes[0] = 1
        bytes.remove(at: 1 + 1 + 18 + 8 + 1)
        #expect(try TransactionCodec.summary(of: bytes).position == Self.at(9))
    }
}
