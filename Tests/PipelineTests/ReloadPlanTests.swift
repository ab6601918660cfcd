import Testing
@testable import FerryApp

@Suite struct ReloadPlanTests {
    func configuration(_ text: String) throws -> FerryConfiguration {
        try FerryConfiguration.parse(text, file: "ferry.yml", environment: ["PG": "secret"])
    }

    let before = """
    sources:
      db: { type: mysql, url: "mysql://ferry@127.0.0.1:3306" }
    sinks:
      local: { type: sqlite, path: ./a.sqlite }
      other: { type: sqlite, path: ./b.sqlite }
      pg: { type: postgres, url: "postgres://ferry@127.0.0.1/replica", password: "${PG}" }
    pipelines:
      keep: { source: db, sinks: [local], tables: ["shop.*"] }
      tune: { source: db, sinks: [pg], tables: ["crm.*"] }
      widen: { source: db, sinks: [other], tables: ["a.*"] }
      drop: { source: db, sinks: [other], tables: ["b.*"] }
    """

    /// Each pipeline is compared by its own YAML, its source's and its sinks': a sink's batch
    /// change restarts the pipelines that use it, a wider `tables:` restarts that one, an added or
    /// removed pipeline starts or stops, and the rest stays untouched.
    @Test func onlyWhatChangedIsTouched() throws {
        let after = """
        sources:
          db: { type: mysql, url: "mysql://ferry@127.0.0.1:3306" }
        sinks:
          local: { type: sqlite, path: ./a.sqlite }
          other: { type: sqlite, path: ./b.sqlite }
          pg: { type: postgres, url: "postgres://ferry@127.0.0.1/replica", password: "${PG}", lanes: 2 }
        pipelines:
          keep: { source: db, sinks: [local], tables: ["shop.*"] }
          tune: { source: db, sinks: [pg], tables: ["crm.*"] }
          widen: { source: db, sinks: [other], tables: ["a.*", "c.*"] }
          new: { source: db, sinks: [local], tables: ["d.*"] }
        """
        let plan = ReloadPlan.make(from: try configuration(before), to: try configuration(after))
        #expect(plan.unchanged == ["keep"])
        #expect(plan.added == ["new"])
        #expect(plan.removed == ["drop"])
        #expect(plan.changed == ["tune": ["sink pg"], "widen": ["its settings"]])
        #expect(plan.refusal == nil && plan.needsRestart.isEmpty)
        #expect(plan.summary == "started new; stopped drop; restarted tune (sink pg), widen (its settings); untouched keep")
    }

    @Test func theSameFileChangesNothing() throws {
        let plan = ReloadPlan.make(from: try configuration(before), to: try configuration(before + "\n# a comment\n"))
        #expect(plan.isEmpty && plan.unchanged == ["keep", "tune", "widen", "drop"])
        #expect(plan.summary == "untouched keep, tune, widen, drop")
    }

    @Test func aMovedStateFileOrListenerIsNotAppliedWhileRunning() throws {
        let moved = ReloadPlan.make(from: try configuration(before), to: try configuration(before + "\ndata_dir: /elsewhere\n"))
        #expect(moved.refusal?.contains("data_dir") == true)
        let listener = ReloadPlan.make(from: try configuration(before), to: try configuration(before + "\nserver: { listen: \"127.0.0.1:9999\" }\n"))
        #expect(listener.needsRestart == ["server"] && listener.refusal == nil)
        #expect(listener.summary.hasSuffix("server changes apply at the next restart of ferry run"))
    }

    /// `data_dir:` after `sinks:` still gives a JSON-lines sink its default directory.
    @Test func dataDirectoryAppliesWhereverItIsWritten() throws {
        let text = """
        sources:
          db: { type: mysql, url: "mysql://ferry@127.0.0.1:3306" }
        sinks:
          files: { type: jsonl }
        pipelines:
          p: { source: db, sinks: [files] }
        data_dir: /var/lib/ferry
        """
        guard case .jsonl(let directory, _, _, _)? = try configuration(text).sinks["files"]?.kind else {
            Issue.record("not a jsonl sink")
            return
        }
        #expect(directory == "/var/lib/ferry/jsonl")
    }
}
