import FerryCore
import Foundation
import Testing

@Suite struct ErrorCodeTests {
    /// Codes are stable identifiers users search for: each is spelled once, dotted lower-case
    /// words, in a known area.
    @Test func everyCodeIsUniqueDottedAndInAKnownArea() {
        let raw = FerryError.Code.all.map(\.rawValue)
        #expect(Set(raw).count == raw.count)
        let areas: Set<Substring> = ["config", "cli", "source", "snapshot", "buffer", "pipeline", "state", "cluster", "server", "sink", "internal"]
        for code in FerryError.Code.all {
            #expect(areas.contains(code.area), "\(code)")
            #expect(code.rawValue.allSatisfy { $0.isLowercase || $0 == "." || $0 == "_" }, "\(code)")
            #expect(!code.rawValue.hasPrefix(".") && !code.rawValue.hasSuffix(".") && !code.rawValue.contains(".."), "\(code)")
        }
    }

    /// Every code declared is in `all`, and has a meaning and a fix.
    @Test func everyCodeIsListedAndExplained() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let declarations = try String(contentsOf: root.appendingPathComponent("Sources/FerryCore/Errors/FerryErrorCode.swift"), encoding: .utf8)
        let declared = declarations.split(separator: "\n").compactMap { line -> String? in
            guard let start = line.range(of: "= Self(\""), let end = line[start.upperBound...].firstIndex(of: "\"") else { return nil }
            return String(line[start.upperBound..<end])
        }
        #expect(declared.count > 80)
        #expect(Set(declared) == Set(FerryError.Code.all.map(\.rawValue)))
        for code in FerryError.Code.all {
            let explanation = try #require(code.explanation, "\(code) has no explanation")
            #expect(explanation.meaning.count > 20 && explanation.fix.count > 10, "\(code)")
            #expect(FerryError.Code(code: code.rawValue) == code)
        }
        #expect(FerryError.Code(code: "no.such.code") == nil)
    }

    /// docs/errors.md is the generated catalog, not a copy that drifted.
    @Test func theErrorsPageIsTheGeneratedCatalog() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let page = try String(contentsOf: root.appendingPathComponent("docs/errors.md"), encoding: .utf8)
        #expect(page == FerryError.Code.catalogMarkdown(), "docs/errors.md is stale: run `ferry explain --markdown > docs/errors.md`")
        #expect(page.contains("### `source.binlog.purged`"))
    }

    @Test func anErrorPrintsItsCode() {
        let error = FerryError(code: .sourceBinlogPurged, message: "gone", context: [("pipeline", "p")], fix: "snapshot again")
        #expect(error.description == "error[source.binlog.purged]: gone (pipeline=p). Fix: snapshot again")
        #expect(error.code.area == "source")
    }
}
