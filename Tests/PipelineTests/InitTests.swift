import FerryCore
import Foundation
import Testing
@testable import FerryApp

@Suite struct InitTests {
    @Test func sinksComeFromSchemesAndTheirPasswordsFromTheEnvironment() throws {
        let entries = try Init.sinkEntries(["sqlite:./a.sqlite", "postgres://ferry:s3cret@pg:5432/replica", "jsonl:/var/lib/ferry/out",
                                            "postgresql://other@pg2/r", "sqlite:b.sqlite"])
        #expect(entries.map(\.name) == ["replica", "postgres", "files", "postgres2", "replica2"])
        #expect(entries[1].fields.map { "\($0.key)=\($0.value)" } == ["type=postgres", "url=postgres://ferry@pg:5432/replica",
                                                                      "password=${FERRY_POSTGRES_PASSWORD}"])
        #expect(entries[3].passwordVariable == nil && entries[3].fields.count == 2)
        #expect(try Init.sinkEntries([]).first?.fields.map(\.value) == ["sqlite", "./replica.sqlite"])
        #expect(throws: FerryError.self) { try Init.sinkEntries(["kafka://broker:9092"]) }
    }

    /// The file for a keyless table, a MyISAM table and one database: exact text, so a change to
    /// what `ferry init` writes is a visible change here.
    @Test func theStarterFileFlagsWhatNeedsALook() throws {
        let tables = [
            Init.TableFacts(name: TableName(database: "shop", table: "customers"), rows: 12_345, bytes: 2 << 20, engine: "InnoDB", key: .primary(["id"])),
            Init.TableFacts(name: TableName(database: "shop", table: "log"), rows: 7, bytes: 16384, engine: "InnoDB", key: .none),
            Init.TableFacts(name: TableName(database: "shop", table: "old"), rows: 0, bytes: 1024, engine: "MyISAM", key: .unique("code_u", ["code"])),
        ]
        let text = Init.configuration(sourceURL: "mysql://ferry@db:3306", sourcePasswordVariable: "FERRY_SOURCE_PASSWORD", sourceName: "shop",
                                      databases: ["shop"], tables: tables, sinks: try Init.sinkEntries(["sqlite:./replica.sqlite"]),
                                      dataDirectory: "./ferry-data", writtenAt: "2026-12-06")
        #expect(text == """
        # Ferry configuration written by `ferry init` on 2026-12-06 from mysql://ferry@db:3306.
        # Check it with `ferry check -c FILE`, run it with `ferry run -c FILE`. Every key: docs/pipelines.md,
        # each sink's keys: docs/sinks/. Secrets are not written here: `${NAME}` reads the environment.

        data_dir: ./ferry-data           # the state file and disk buffers

        sources:
          shop:
            type: mysql
            url: mysql://ferry@db:3306
            password: "${FERRY_SOURCE_PASSWORD}"

        sinks:
          replica:
            type: sqlite
            path: ./replica.sqlite
            # schema_changes: lenient   — what a schema change does to the target: evolve, lenient, ignore or fail, or { mode, allow: [...], deny: [...] } (docs/pipelines.md)

        pipelines:
          shop-to-replica:
            source: shop
            sinks: [replica]
            # Tables created later in these databases are picked up too (their rows from the stream).
            tables:
              - "shop.*"    # 3 tables, ~12k rows, 2.0 MiB
            snapshot: initial     # existing rows first, without locks; then every change (docs/snapshots.md)
            # Look at these tables before the first run:
            #   shop.log has no primary key and no unique NOT NULL key: targets match its rows by every column,
            #   and a snapshot reads it whole. If some columns identify a row, name them under mapping: below.
            #   shop.old is MyISAM: a snapshot cannot read it consistently while it changes.
            # mapping:
            #   shop.log: { key: [COLUMN, …] }

        # The web page, API and /metrics listen on 127.0.0.1:8080 unless told otherwise:
        # server: { listen: "127.0.0.1:8080" }   (docs/control-plane.md)

        """)
        // It is a valid configuration as written.
        let configuration = try FerryConfiguration.parse(text, file: "ferry.yml", environment: ["FERRY_SOURCE_PASSWORD": "x"])
        #expect(configuration.pipelines.map(\.name) == ["shop-to-replica"])
    }

    @Test func scalarsThatYAMLWouldMisreadAreQuoted() {
        #expect(Init.yamlScalar("./ferry-data") == "./ferry-data")
        #expect(Init.yamlScalar("shop.*") == "\"shop.*\"")
        #expect(Init.yamlScalar("my dir/data") == "\"my dir/data\"")
        #expect(Init.yamlScalar("@home") == "\"@home\"")
        #expect(Init.yamlScalar("") == "\"\"")
        #expect(Init.yamlScalar("off") == "\"off\"" && Init.yamlScalar("1.5") == "\"1.5\"")
    }
}
