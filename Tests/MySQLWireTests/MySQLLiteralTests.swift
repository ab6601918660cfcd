import FerryCore
import MySQLWire
import Testing

/// Source values as the SQL literals the MariaDB/MySQL sink writes.
@Suite struct MySQLLiteralTests {
    @Test func literals() {
        #expect(MySQLLiteral.literal(.null) == "NULL")
        #expect(MySQLLiteral.literal(.int(-5)) == "-5")
        #expect(MySQLLiteral.literal(.uint(UInt64.max)) == "18446744073709551615")
        #expect(MySQLLiteral.literal(.decimal("-1.50")) == "-1.50")
        #expect(MySQLLiteral.literal(.string("it's a \\ \n")) == "'it\\'s a \\\\ \\n'")
        #expect(MySQLLiteral.literal(.bytes([0x00, 0xAB])) == "X'00AB'")
        #expect(MySQLLiteral.literal(.bytes([])) == "''")
        #expect(MySQLLiteral.literal(.set(["a", "b"])) == "'a,b'")
        #expect(MySQLLiteral.literal(.date(DateValue(year: 0, month: 0, day: 0))) == "'0000-00-00'")
    }

    /// Ill-formed text goes as its exact bytes, compared with the column's collation; the sink
    /// session's lax sql_mode stores them unchanged.
    @Test func illFormedTextKeepsItsBytes() {
        #expect(MySQLLiteral.literal(.illFormedText([0x61, 0xED, 0xA0, 0xBD, 0x62])) == "_utf8mb4 X'61EDA0BD62'")
        #expect(MySQLLiteral.value(parsing: "_utf8mb4 X'61EDA0BD62'") == .illFormedText([0x61, 0xED, 0xA0, 0xBD, 0x62]))
    }
}
