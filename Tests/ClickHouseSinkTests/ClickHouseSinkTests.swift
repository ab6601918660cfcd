@testable import ClickHouseSink
import FerryCore
import Testing

@Suite struct ClickHouseTypeTests {
    @Test func typesParseAsSystemColumnsSpellsThem() {
        #expect(ClickHouseType(parsing: "Int32") == .integer(bytes: 4, signed: true))
        #expect(ClickHouseType(parsing: "UInt64") == .integer(bytes: 8, signed: false))
        #expect(ClickHouseType(parsing: "Nullable(Decimal(30, 10))") == .nullable(.decimal(precision: 30, scale: 10)))
        #expect(ClickHouseType(parsing: "Decimal64(4)") == .decimal(precision: 18, scale: 4))
        #expect(ClickHouseType(parsing: "DateTime('UTC')") == .dateTime)
        #expect(ClickHouseType(parsing: "DateTime64(6, 'Europe/Berlin')") == .dateTime64(precision: 6))
        #expect(ClickHouseType(parsing: "LowCardinality(Nullable(String))") == .nullable(.string))
        #expect(ClickHouseType(parsing: "FixedString(16)") == .fixedString(16))
        #expect(ClickHouseType(parsing: "Enum8('a' = 1, 'it\\'s, b' = -2)") == .enumeration(bytes: 1, values: ["a": 1, "it's, b": -2]))
        #expect(ClickHouseType(parsing: "Array(String)") == nil)
        #expect(ClickHouseType(parsing: "UUID") == nil)
    }

    @Test func sourceTypesMapToExactClickHouseTypes() {
        func mapped(_ type: String, nullable: Bool = false, dateTime64: Bool = false) -> String {
            ClickHouseType.forSource(type, nullable: nullable, hasDateTime64: dateTime64)
        }
        #expect(mapped("tinyint") == "Int8")
        #expect(mapped("mediumint unsigned") == "UInt32")
        #expect(mapped("bigint unsigned", nullable: true) == "Nullable(UInt64)")
        #expect(mapped("decimal(38,4)") == "Decimal(38, 4)")
        #expect(mapped("decimal(65,2)") == "String", "wider than ClickHouse's 38 digits: exact text")
        #expect(mapped("datetime") == "DateTime('UTC')")
        #expect(mapped("datetime(6)") == "String", "no DateTime64 before 20.1: exact text")
        #expect(mapped("timestamp(3)", dateTime64: true) == "DateTime64(3, 'UTC')")
        #expect(mapped("time(6)") == "String")
        #expect(mapped("bit(5)") == "UInt64")
        #expect(mapped("enum('a','b')") == "String")
    }
}

@Suite struct RowBinaryWriterTests {
    func bytes(_ value: Value, _ type: ClickHouseType) throws -> [UInt8] {
        var writer = RowBinaryWriter()
        try writer.write(value, as: type)
        return writer.bytes
    }

    /// Byte layouts from ClickHouse's RowBinary format description.
    @Test func valuesAreWrittenInRowBinary() throws {
        #expect(try bytes(.int(-2), .integer(bytes: 2, signed: true)) == [0xFE, 0xFF])
        #expect(try bytes(.uint(UInt64.max), .integer(bytes: 8, signed: false)) == Array(repeating: 0xFF, count: 8))
        #expect(try bytes(.year(2024), .integer(bytes: 2, signed: false)) == [0xE8, 0x07])
        #expect(try bytes(.double(1.5), .float64) == [0, 0, 0, 0, 0, 0, 0xF8, 0x3F])
        #expect(try bytes(.float(1.5), .float32) == [0, 0, 0xC0, 0x3F])
        // Decimal(9, 2): -12.50 → -1250 as Int32.
        #expect(try bytes(.decimal("-12.50"), .decimal(precision: 9, scale: 2)) == [0x1E, 0xFB, 0xFF, 0xFF])
        // Decimal(38, 0): 2^64 → low word 0, high word 1.
        #expect(try bytes(.decimal("18446744073709551616"), .decimal(precision: 38, scale: 0)) == [0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
        #expect(try bytes(.string("hé"), .string) == [3, 0x68, 0xC3, 0xA9])
        let long = try bytes(.string(String(repeating: "x", count: 200)), .string)
        #expect(long.prefix(2) == [0xC8, 0x01] && long.count == 202, "LEB128 length")
        #expect(try bytes(.bytes([0, 0xFF]), .fixedString(4)) == [0, 0xFF, 0, 0])
        #expect(try bytes(.date(DateValue(year: 2024, month: 2, day: 29)), .date) == [0x46, 0x4D], "19782 days")
        #expect(try bytes(.date(DateValue(year: 0, month: 0, day: 0)), .date) == [0, 0], "the zero date is ClickHouse's zero")
        #expect(try bytes(.timestamp(TimestampValue(seconds: 2_147_483_647, microseconds: 0, fsp: 0)), .dateTime) == [0xFF, 0xFF, 0xFF, 0x7F])
        let datetime = DateTimeValue(date: DateValue(year: 1970, month: 1, day: 2), hour: 0, minute: 0, second: 1, microseconds: 250_000, fsp: 6)
        #expect(try bytes(.datetime(datetime), .dateTime) == [0x81, 0x51, 0x01, 0x00], "86401 s")
        #expect(try bytes(.datetime(datetime), .dateTime64(precision: 3)) == RowBinaryWriterTests.littleEndian(86_401_250, 8))
        #expect(try bytes(.enumeration("b"), .enumeration(bytes: 1, values: ["a": 1, "b": -2])) == [0xFE])
        #expect(try bytes(.null, .nullable(.string)) == [1])
        #expect(try bytes(.int(7), .nullable(.integer(bytes: 1, signed: false))) == [0, 7])
        #expect(try bytes(.absent, .decimal(precision: 20, scale: 2)) == Array(repeating: 0, count: 16), "absent (a partial delete image): the default")
        #expect(try bytes(.time(TimeValue(negative: true, hours: 838, minutes: 59, seconds: 58, microseconds: 0, fsp: 0)), .string) == [10] + Array("-838:59:58".utf8))
    }

    @Test func valuesTheTypeCannotHoldAreRefusedNotWrapped() throws {
        #expect(throws: RowBinaryError.self) { try bytes(.int(128), .integer(bytes: 1, signed: true)) }
        #expect(throws: RowBinaryError.self) { try bytes(.int(-1), .integer(bytes: 4, signed: false)) }
        #expect(throws: RowBinaryError.self) { try bytes(.uint(1 << 63), .integer(bytes: 8, signed: true)) }
        #expect(throws: RowBinaryError.self) { try bytes(.decimal("1.005"), .decimal(precision: 9, scale: 2)) }
        #expect(throws: RowBinaryError.self) { try bytes(.decimal("1234567890"), .decimal(precision: 9, scale: 0)) }
        #expect(throws: RowBinaryError.self) { try bytes(.date(DateValue(year: 1969, month: 12, day: 31)), .date) }
        #expect(throws: RowBinaryError.self) { try bytes(.bytes([1, 2, 3]), .fixedString(2)) }
        #expect(throws: RowBinaryError.self) { try bytes(.enumeration("c"), .enumeration(bytes: 1, values: ["a": 1])) }
        #expect(throws: RowBinaryError.self) { try bytes(.null, .string) }
        #expect(throws: RowBinaryError.self) { try bytes(.string("x"), .date) }
        #expect(try bytes(.decimal("1.500"), .decimal(precision: 9, scale: 2)) == [150, 0, 0, 0], "trailing zeros lose nothing")
    }

    /// Decimal text → scaled integer, exactly or not at all.
    @Test func decimalTextScalesExactly() {
        let scaled = { (text: String, precision: Int, scale: Int) in RowBinaryWriter.scaledDecimal(text, scale: scale, precision: precision) }
        #expect(scaled("12.34", 9, 2) == 1234)
        #expect(scaled("-0.05", 9, 2) == -5)
        #expect(scaled(".5", 9, 2) == 50)
        #expect(scaled("+7", 9, 2) == 700)
        #expect(scaled("7.", 9, 2) == 700)
        #expect(scaled("0.00", 9, 2) == 0)
        #expect(scaled("000123.4000", 5, 2) == 12_340, "leading and trailing zeros are not significant")
        #expect(scaled("1.0050", 9, 2) == nil, "a digit beyond the scale would be lost")
        #expect(scaled("0.001", 9, 2) == nil)
        #expect(scaled("1234.5", 5, 2) == nil, "six significant digits in Decimal(5, 2)")
        #expect(scaled(String(repeating: "9", count: 38), 38, 0) == Int128(String(repeating: "9", count: 38)))
        #expect(scaled(String(repeating: "9", count: 39), 38, 0) == nil, "one digit more than Decimal(38) holds, without overflowing")
        #expect(scaled("9" + String(repeating: "0", count: 37), 38, 2) == nil, "the scale's digits count too")
        for bad in ["", "-", ".", "1.2.3", "1e5", " 1", "1,5", "--1"] {
            #expect(scaled(bad, 9, 2) == nil, "'\(bad)'")
        }
    }

    @Test func daysSinceTheEpochFollowTheGregorianCalendar() {
        #expect(RowBinaryWriter.daysSinceEpoch(DateValue(year: 1970, month: 1, day: 1)) == 0)
        #expect(RowBinaryWriter.daysSinceEpoch(DateValue(year: 2000, month: 3, day: 1)) == 11_017)
        #expect(RowBinaryWriter.daysSinceEpoch(DateValue(year: 1900, month: 3, day: 1)) == -25_508)
        #expect(RowBinaryWriter.daysSinceEpoch(DateValue(year: 2149, month: 6, day: 6)) == 65_535)
    }

    static func littleEndian(_ value: UInt64, _ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }
}

@Suite struct ClickHouseErrorTests {
    @Test func answersAreClassifiedByTheirCode() {
        let at = SourcePosition.binlog(file: "b.000001", offset: 9)
        let table = TableName(database: "shop", table: "orders")
        func error(_ status: Int, _ answer: String) -> ClickHouseSinkError {
            ClickHouseSinkError(status: status, answer: answer, sink: "olap", table: table, position: at)
        }
        #expect(error(500, "Code: 193, e.displayText() = DB::Exception: Wrong password for user ferry, e.what() = DB::Exception\n").ferryError.code == .sinkClickHouseAuth)
        #expect(error(516, "Code: 516. DB::Exception: ferry: Authentication failed").ferryError.code == .sinkClickHouseAuth)
        #expect(error(500, "Code: 252, e.displayText() = DB::Exception: Too many parts (300)").isTransient)
        #expect(error(503, "Service Unavailable").isTransient, "a 5xx without a ClickHouse code (a proxy) is retried")
        let rejected = error(500, "Code: 53, e.displayText() = DB::Exception: Type mismatch, e.what() = DB::Exception\nstack")
        #expect(!rejected.isTransient)
        #expect(rejected.ferryError.code == .sinkClickHouseRejected)
        #expect(rejected.ferryError.message == "ClickHouse sink olap cannot write a change of shop.orders: Code: 53, e.displayText() = DB::Exception: Type mismatch")
        #expect(ClickHouseSinkError(status: 400, answer: "Code: 62, e.displayText() = DB::Exception: Syntax error", sink: "olap", table: nil, position: nil)
            .ferryError.code == .sinkClickHouseRefused)
    }

    @Test func urlsGiveUserAndDatabaseAndKeepNoCredentials() throws {
        let configuration = try ClickHouseSink.Configuration(name: "olap", pipeline: "p", url: "http://analyst:pw@ch.internal:8123/warehouse", password: nil, timeoutSeconds: 60)
        #expect(configuration.url == "http://ch.internal:8123")
        #expect(configuration.username == "analyst" && configuration.password == "pw" && configuration.database == "warehouse")
        let defaults = try ClickHouseSink.Configuration(name: "olap", pipeline: "p", url: "https://ch.internal:8443", password: "x", timeoutSeconds: 60)
        #expect(defaults.username == "default" && defaults.database == "default" && defaults.password == "x")
        #expect(throws: FerryError.self) { try ClickHouseSink.Configuration(name: "olap", pipeline: "p", url: "tcp://ch:9000", password: nil, timeoutSeconds: 60) }
        #expect(throws: FerryError.self) { try ClickHouseSink.Configuration(name: "olap", pipeline: "p", url: "http://ch:8123/a/b", password: nil, timeoutSeconds: 60) }
    }
}
