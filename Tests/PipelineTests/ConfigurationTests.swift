import FerryApp
import FerryCore
import Foundation
import Testing

@Suite struct ConfigurationTests {
    static let valid = """
    sources:
      shop: { type: mysql, url: "mysql://ferry@127.0.0.1:3306", password: "${SHOP_PASSWORD}" }
    sinks:
      local: { type: sqlite, path: ./replica.sqlite }
      files: { type: jsonl, max_file_bytes: 8MiB }
    pipelines:
      shop-to-local:
        source: shop
        sinks: [local, files]
        tables: ["shop.*"]
        buffer: memory
        buffer_bytes: 16MiB
        target_table: "{db}_{table}"
    state: { sqlite: ./ferry-state.sqlite }
    """

    func parse(_ text: String, environment: [String: String] = ["SHOP_PASSWORD": "s3cret"]) throws -> FerryConfiguration {
        try FerryConfiguration.parse(text, file: "ferry.yml", environment: environment)
    }

    @Test func readsTheDocumentedShape() throws {
        let configuration = try parse(Self.valid)
        #expect(configuration.sources["shop"]?.password == "s3cret")
        #expect(configuration.statePath == "./ferry-state.sqlite")
        let pipeline = try #require(configuration.pipelines.first)
        #expect(pipeline.sinks == ["local", "files"] && pipeline.include == ["shop.*"])
        #expect(pipeline.bufferBytes == 16 << 20 && pipeline.targetTable == "{db}_{table}")
        #expect(pipeline.serverID >= 100_000_000)
        guard case .jsonl(_, let bytes, _) = configuration.sinks["files"]?.kind else { Issue.record("files is not jsonl"); return }
        #expect(bytes == 8 << 20)
    }

    @Test func unknownKeyNamesFileLineAndSuggestion() {
        let text = Self.valid.replacingOccurrences(of: "    tables:", with: "    tabels:")
        #expect(throws: FerryError.self) { try parse(text) }
        do { _ = try parse(text) } catch let error as FerryError {
            #expect(error.code == "config.invalid")
            #expect(error.message.hasPrefix("ferry.yml:10: pipelines.shop-to-local.tabels: unknown key 'tabels'"))
            #expect(error.fix?.contains("did you mean 'tables'") == true)
        } catch { Issue.record("\(error)") }
    }

    @Test func missingEnvironmentVariable() {
        do { _ = try parse(Self.valid, environment: [:]) } catch let error as FerryError {
            #expect(error.message.contains("ferry.yml:2: sources.shop.password: environment variable SHOP_PASSWORD is not set"))
            #expect(error.fix == "export SHOP_PASSWORD=… before starting ferry")
        } catch { Issue.record("\(error)") }
    }

    @Test func invalidYAMLAndReferences() {
        #expect(throws: FerryError.self) { try parse("sources: [unclosed") }
        #expect(throws: FerryError.self) { try parse(Self.valid.replacingOccurrences(of: "sinks: [local, files]", with: "sinks: [local, nowhere]")) }
        #expect(throws: FerryError.self) { try parse(Self.valid.replacingOccurrences(of: "type: sqlite", with: "type: oracle")) }
        #expect(throws: FerryError.self) { try parse(Self.valid.replacingOccurrences(of: "buffer_bytes: 16MiB", with: "buffer_bytes: lots")) }
        #expect(throws: FerryError.self) { try parse(Self.valid.replacingOccurrences(of: "mysql://ferry@127.0.0.1:3306", with: "mysql://127.0.0.1")) }
    }
}
