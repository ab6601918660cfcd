import FerryCore
import PostgresLogical
import Testing

/// Text forms as PostgreSQL 15 writes them under `PgValueReader.sessionOptions`, read into
/// values; the real server's corpus is in IntegrationTests (PostgresTypeCorpus).
@Suite struct PgValueReaderTests {
    func read(_ text: String, _ oid: UInt32, modifier: Int32 = -1) -> Value {
        PgValueReader.value(Array(text.utf8), type: PgType.builtIn(oid)!, modifier: modifier)
    }

    @Test func numbersKeepEveryDigitAndTheirSpecialValues() {
        #expect(read("t", 16) == .bool(true) && read("f", 16) == .bool(false))
        #expect(read("-32768", 21) == .int(-32768))
        #expect(read("-9223372036854775808", 20) == .int(.min) && read("9223372036854775807", 20) == .int(.max))
        #expect(read("4294967295", 26) == .int(4_294_967_295))
        #expect(read("3.4028235e+38", 700) == .float(.greatestFiniteMagnitude))
        #expect(read("-Infinity", 700) == .float(-.infinity))
        if case .float(let nan) = read("NaN", 700) { #expect(nan.isNaN) } else { Issue.record("NaN is not a float") }
        #expect(read("2.2250738585072014e-308", 701) == .double(2.2250738585072014e-308))
        #expect(read("0.1", 701) == .double(0.1))
        #expect(read("-123.4500", 1700) == .decimal("-123.4500"))
        #expect(read("0.000000000000000000000000000001", 1700) == .decimal("0.000000000000000000000000000001"))
        #expect(read("NaN", 1700) == .sourceText("NaN") && read("-Infinity", 1700) == .sourceText("-Infinity"))
        #expect(read("-$92,233,720,368,547,758.08", 790) == .decimal("-92233720368547758.08"))
        #expect(read("$12.34", 790) == .decimal("12.34"))
        #expect(read("12,34 €", 790) == .sourceText("12,34 €"), "another lc_monetary keeps its text")
    }

    @Test func textAndBytes() {
        #expect(read("ab   ", 1042, modifier: 9) == .string("ab   "))
        #expect(PgValueReader.value([0x61, 0xFF], type: PgType.builtIn(25)!, modifier: -1) == .illFormedText([0x61, 0xFF]))
        #expect(read("\\x00ff10", 17) == .bytes([0, 0xFF, 0x10]))
        #expect(read("\\x", 17) == .bytes([]))
        #expect(read("{\"a\": 1,  \"b\":[1,2]}", 114) == .json("{\"a\": 1,  \"b\":[1,2]}"))
        #expect(read("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", 2950) == .string("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"))
        #expect(read("{1,NULL,3}", 1007) == .sourceText("{1,NULL,3}"))
    }

    @Test func datesAndTimesWithTheirEdges() {
        #expect(read("2024-02-29", 1082) == .date(DateValue(year: 2024, month: 2, day: 29)))
        #expect(read("0001-01-01", 1082) == .date(DateValue(year: 1, month: 1, day: 1)))
        for kept in ["4714-11-24 BC", "infinity", "-infinity", "5874897-12-31"] {
            #expect(read(kept, 1082) == .sourceText(kept))
        }
        #expect(read("24:00:00", 1083) == .time(TimeValue(negative: false, hours: 24, minutes: 0, seconds: 0, microseconds: 0, fsp: 6)))
        #expect(read("23:59:59.99", 1083, modifier: 3) == .time(TimeValue(negative: false, hours: 23, minutes: 59, seconds: 59, microseconds: 990_000, fsp: 3)))
        #expect(read("2000-01-01 00:00:00.000001", 1114) == .datetime(DateTimeValue(date: DateValue(year: 2000, month: 1, day: 1), hour: 0, minute: 0, second: 0, microseconds: 1, fsp: 6)))
        #expect(read("0001-01-01 00:00:00 BC", 1114) == .sourceText("0001-01-01 00:00:00 BC"))
        #expect(read("1969-12-31 23:59:59.999+00", 1184, modifier: 3) == .timestamp(TimestampValue(seconds: -1, microseconds: 999_000, fsp: 3)))
        #expect(read("2024-06-01 12:00:00.5+05:30", 1184) == .timestamp(TimestampValue(seconds: 1_717_223_400, microseconds: 500_000, fsp: 6)))
        #expect(read("1970-01-01 00:00:00+00", 1184) == .sourceText("1970-01-01 00:00:00+00"), "not MySQL's zero timestamp")
        #expect(read("infinity", 1184) == .sourceText("infinity"))
        #expect(read("12:00:00+05:30", 1266) == .sourceText("12:00:00+05:30"))
        #expect(read("1 year 2 mons -3 days 04:05:06.789", 1186) == .sourceText("1 year 2 mons -3 days 04:05:06.789"))
    }

    @Test func typeNamesFollowFormatType() {
        let numeric = PgType.builtIn(1700)!
        #expect(numeric.nativeType(modifier: -1) == "numeric" && numeric.mysqlType(modifier: -1) == "longtext")
        #expect(numeric.nativeType(modifier: (12 << 16 | 2) + 4) == "numeric(12,2)" && numeric.mysqlType(modifier: (12 << 16 | 2) + 4) == "decimal(12,2)")
        // numeric(5,-2): the scale is an 11-bit signed field.
        #expect(numeric.nativeType(modifier: (5 << 16 | 0x7FE) + 4) == "numeric(5,-2)" && numeric.mysqlType(modifier: (5 << 16 | 0x7FE) + 4) == "longtext")
        #expect(PgType.builtIn(1043)!.nativeType(modifier: 44) == "character varying(40)")
        #expect(PgType.builtIn(1043)!.mysqlType(modifier: 44) == "varchar(40)")
        #expect(PgType.builtIn(1042)!.nativeType(modifier: -1) == "bpchar")
        #expect(PgType.builtIn(1184)!.nativeType(modifier: 3) == "timestamp(3) with time zone" && PgType.builtIn(1184)!.mysqlType(modifier: 3) == "datetime(3)")
        #expect(PgType.builtIn(1114)!.mysqlType(modifier: -1) == "datetime(6)")
        #expect(PgType.builtIn(1186)!.nativeType(modifier: 0x7FFF_0000 | 3) == "interval(3)")
        #expect(PgType.builtIn(1015)!.nativeType(modifier: 14) == "character varying(10)[]")
        #expect(PgType.builtIn(1560)!.nativeType(modifier: 4) == "bit(4)")
        #expect(PgType.builtIn(16)!.mysqlType(modifier: -1) == "boolean")
    }

    @Test func theDatabasesOwnTypesResolveThroughTheirCatalogRows() {
        var catalog = PgTypeCatalog()
        let mood: UInt32 = 16_390, moods: UInt32 = 16_389, price: UInt32 = 16_400, prices: UInt32 = 16_399, pair: UInt32 = 16_410
        #expect(catalog.missing([23, mood, price]) == [mood, price])
        catalog.add(.init(oid: mood, kind: UInt8(ascii: "e"), baseType: 0, element: 0, baseModifier: -1, category: UInt8(ascii: "E")))
        catalog.add(.init(oid: moods, kind: UInt8(ascii: "b"), baseType: 0, element: mood, baseModifier: -1, category: UInt8(ascii: "A")))
        // A domain over numeric(10,2) carries the modifier; the column's own is -1.
        catalog.add(.init(oid: price, kind: UInt8(ascii: "d"), baseType: 1700, element: 0, baseModifier: (10 << 16 | 2) + 4, category: UInt8(ascii: "N")))
        catalog.add(.init(oid: prices, kind: UInt8(ascii: "b"), baseType: 0, element: price, baseModifier: -1, category: UInt8(ascii: "A")))
        catalog.add(.init(oid: pair, kind: UInt8(ascii: "c"), baseType: 0, element: 0, baseModifier: -1, category: UInt8(ascii: "C")))
        #expect(catalog.missing([mood, moods, price, prices, pair]).isEmpty)
        let enumColumn = catalog.column(oid: mood, modifier: -1)!
        #expect(enumColumn.type.kind == .enumeration && enumColumn.type.nativeType(modifier: enumColumn.modifier) == "text")
        #expect(catalog.column(oid: moods, modifier: -1).map { $0.type.nativeType(modifier: $0.modifier) } == "text[]")
        let priceColumn = catalog.column(oid: price, modifier: -1)!
        #expect(priceColumn.type.kind == .numeric && priceColumn.type.nativeType(modifier: priceColumn.modifier) == "numeric(10,2)")
        #expect(catalog.column(oid: prices, modifier: -1).map { $0.type.nativeType(modifier: $0.modifier) } == "numeric(10,2)[]")
        #expect(catalog.column(oid: pair, modifier: -1).map { $0.type.nativeType(modifier: $0.modifier) } == "text")
        #expect(catalog.column(oid: 99_999, modifier: -1) == nil)
    }
}
