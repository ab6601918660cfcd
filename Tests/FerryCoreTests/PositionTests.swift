import Foundation
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

    @Test func fileSequenceIsTheNumberAfterTheLastDot() {
        #expect(BinlogCoordinates(file: "mariadb-bin.000042", offset: 4).fileSequence == 42)
        #expect(BinlogCoordinates(file: "my.host-bin.1000000", offset: 4).fileSequence == 1_000_000)
        #expect(BinlogCoordinates(file: "binlog.18446744073709551615", offset: 4).fileSequence == UInt64.max)
        for name in ["binlog", "binlog.", "binlog.00a1", "binlog.18446744073709551616", "binlog.-1"] {
            #expect(BinlogCoordinates(file: name, offset: 4).fileSequence == nil, "\(name)")
        }
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
    static func at(_ offset: UInt64, step: UInt32 = 0) -> SourcePosition {
        .binlog(file: "mariadb-bin.000007", offset: offset, snapshotStep: step)
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
        #expect(SourcePosition(persistedJSON: position.persistedJSON) == position)
        #expect(SourcePosition(persistedJSON: #"{"file":"mariadb-bin.000007","pos":4242}"#) == Self.at(4242))
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

@Suite struct SourcePositionTests {
    static let gtidA = GTIDPosition.mariadb(MariaDBGTIDPosition(parsing: "0-1-5")!)
    static let gtidB = GTIDPosition.mariadb(MariaDBGTIDPosition(parsing: "0-1-5,1-2-9")!)

    static func at(_ offset: UInt64, file: String = "b.000003", gtid: GTIDPosition? = nil, step: UInt32 = 0) -> SourcePosition {
        .binlog(BinlogPosition(coordinates: BinlogCoordinates(file: file, offset: offset), gtidPosition: gtid, snapshotStep: step))
    }

    /// Equal exactly when neither orders before the other: the GTID state annotates a place and
    /// does not make two places of the same stream different.
    @Test func equalityAgreesWithOrder() {
        let pairs: [(SourcePosition, SourcePosition)] = [
            (Self.at(100, gtid: Self.gtidA), Self.at(100, gtid: Self.gtidB)),
            (Self.at(100), Self.at(100, gtid: Self.gtidA)),
            (Self.at(100), Self.at(100, step: 1)),
            (Self.at(100), Self.at(99)),
            (Self.at(4, file: "b.000010"), Self.at(900, file: "b.000009")),
        ]
        for (a, b) in pairs {
            #expect((a == b) == (!(a < b) && !(b < a)), "\(a) vs \(b)")
            if a == b { #expect(a.hashValue == b.hashValue) }
        }
        #expect(Set([Self.at(100, gtid: Self.gtidA), Self.at(100, gtid: Self.gtidB), Self.at(100, step: 1)]).count == 2)
        #expect(Self.at(900, file: "b.000009") < Self.at(4, file: "b.000010"))
    }

    @Test func placeIsFileOffsetAndStep() {
        #expect(Self.at(1234, gtid: Self.gtidA).place == "b.000003:1234")
        #expect(Self.at(1234, step: 2).place == "b.000003:1234#2")
        #expect(Self.at(1234, gtid: Self.gtidB).description == "b.000003:1234 (gtid 0-1-5,1-2-9)")
    }

    /// The persisted text keeps the GTID state, and texts written by earlier releases read back.
    @Test func persistedFormKeepsEverything() throws {
        let position = Self.at(77, gtid: Self.gtidB, step: 3)
        #expect(position.persistedJSON == #"{"file":"b.000003","pos":77,"gtid_pos":"0-1-5,1-2-9","flavor":"mariadb","step":3}"#)
        let read = try #require(SourcePosition(persistedJSON: position.persistedJSON))
        #expect(read.description == position.description)
        #expect(SourcePosition(persistedJSON: #"{"file":"b.000003","pos":77}"#) == Self.at(77))
        #expect(SourcePosition(persistedJSON: #"{"lsn":"0/16B3748"}"#) == .wal(WALPosition(lsn: LSN(0x16B_3748))), "a PostgreSQL position")
        #expect(SourcePosition(persistedJSON: #"{"pos":77}"#) == nil)
        #expect(SourcePosition(persistedJSON: "start") == nil)
    }

    /// Snapshot records in the state file hold positions in `BinlogPosition`'s `Codable` form.
    @Test func codableFormIsTheBinlogPositions() throws {
        let position = Self.at(77, gtid: Self.gtidA, step: 2)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let text = String(decoding: try encoder.encode(position), as: UTF8.self)
        #expect(text == String(decoding: try encoder.encode(try #require(position.binlog)), as: UTF8.self))
        let read = try JSONDecoder().decode(SourcePosition.self, from: Data(text.utf8))
        #expect(read.description == position.description)
    }

    @Test func logBytesBetweenPositions() {
        #expect(Self.at(500).logBytes(after: Self.at(120)) == 380)
        #expect(Self.at(120).logBytes(after: Self.at(500)) == 0)
        #expect(Self.at(300, file: "b.000004").logBytes(after: Self.at(900)) == 300)
        #expect(Self.at(300, file: "b.000002").logBytes(after: Self.at(900)) == 0)
    }
}

@Suite struct SourceLogEndTests {
    static func at(_ file: String, _ offset: UInt64) -> SourcePosition { .binlog(file: file, offset: offset) }

    @Test func lagInBytesWithinAndAcrossFiles() {
        let end = SourceLogEnd()
        #expect(end.bytes(after: Self.at("b.000001", 4)) == nil)
        end.reached(Self.at("b.000001", 500))
        end.reached(Self.at("b.000001", 300))
        #expect(end.position == Self.at("b.000001", 500))
        #expect(end.bytes(after: Self.at("b.000001", 120)) == 380)
        #expect(end.bytes(after: Self.at("b.000001", 900)) == 0)
        end.binlogFileEnded("b.000001", size: 1000)
        end.binlogFileEnded("b.000002", size: 2000)
        end.reached(Self.at("b.000003", 250))
        // 1000 - 600 in the first file, all 2000 of the second, 250 of the third.
        #expect(end.bytes(after: Self.at("b.000001", 600)) == 2650)
        #expect(end.bytes(after: Self.at("b.000002", 1500)) == 750)
        // A file the stream did not read to its end: unknown, not guessed.
        #expect(end.bytes(after: Self.at("b.000000", 10)) == nil)
    }
}
