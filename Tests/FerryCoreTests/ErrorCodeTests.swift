import FerryCore
import Testing

@Suite struct ErrorCodeTests {
    /// Codes are stable identifiers users search for: each is spelled once, dotted lower-case
    /// words, in a known area.
    @Test func everyCodeIsUniqueDottedAndInAKnownArea() {
        let raw = FerryError.Code.all.map(\.rawValue)
        #expect(Set(raw).count == raw.count)
        let areas: Set<Substring> = ["config", "cli", "source", "snapshot", "buffer", "pipeline", "state", "server", "sink", "internal"]
        for code in FerryError.Code.all {
            #expect(areas.contains(code.area), "\(code)")
            #expect(code.rawValue.allSatisfy { $0.isLowercase || $0 == "." || $0 == "_" }, "\(code)")
            #expect(!code.rawValue.hasPrefix(".") && !code.rawValue.hasSuffix(".") && !code.rawValue.contains(".."), "\(code)")
        }
    }

    @Test func anErrorPrintsItsCode() {
        let error = FerryError(code: .sourceBinlogPurged, message: "gone", context: [("pipeline", "p")], fix: "snapshot again")
        #expect(error.description == "error[source.binlog.purged]: gone (pipeline=p). Fix: snapshot again")
        #expect(error.code.area == "source")
    }
}
