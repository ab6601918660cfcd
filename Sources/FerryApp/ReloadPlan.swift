/// What a reload changes: which pipelines keep running untouched, which start, which drain and
/// stop, and which are restarted with their new definition — decided from the YAML of each
/// pipeline, its source and its sinks as written (pure; `PipelineFleet` carries it out).
struct ReloadPlan: Equatable {
    var unchanged: [String] = []
    var added: [String] = []
    var removed: [String] = []
    /// Pipeline → what changed in it (`its settings`, `source db`, `sink pg`).
    var changed: [String: [String]] = [:]
    /// Settings that only a restart of `ferry run` applies; they are kept as they were.
    var needsRestart: [String] = []
    /// Why the new file cannot be applied while running; `nil` when it can.
    var refusal: String?

    var isEmpty: Bool { added.isEmpty && removed.isEmpty && changed.isEmpty }

    static func make(from old: FerryConfiguration, to new: FerryConfiguration) -> ReloadPlan {
        var plan = ReloadPlan()
        if old.dataDirectory != new.dataDirectory || old.statePath != new.statePath {
            plan.refusal = "data_dir or state moved: the state file cannot change while ferry runs; restart ferry to use the new one"
            return plan
        }
        if old.definitions["server"] != new.definitions["server"] {
            plan.needsRestart.append("server")
        }
        let oldNames = Set(old.pipelines.map(\.name))
        let newNames = Set(new.pipelines.map(\.name))
        plan.removed = old.pipelines.map(\.name).filter { !newNames.contains($0) }
        for pipeline in new.pipelines {
            guard oldNames.contains(pipeline.name), let before = old.pipelines.first(where: { $0.name == pipeline.name }) else {
                plan.added.append(pipeline.name)
                continue
            }
            var reasons: [String] = []
            if old.definitions["pipeline \(pipeline.name)"] != new.definitions["pipeline \(pipeline.name)"] { reasons.append("its settings") }
            if before.source != pipeline.source || old.definitions["source \(pipeline.source)"] != new.definitions["source \(pipeline.source)"] {
                reasons.append("source \(pipeline.source)")
            }
            // A sink added to or taken from the pipeline changes its own settings (sinks:).
            for sink in sinkNames(pipeline) where sinkNames(before).contains(sink) && old.definitions["sink \(sink)"] != new.definitions["sink \(sink)"] {
                reasons.append("sink \(sink)")
            }
            if reasons.isEmpty { plan.unchanged.append(pipeline.name) } else { plan.changed[pipeline.name] = reasons }
        }
        return plan
    }

    /// The sinks a pipeline writes to, its dead-letter sink included.
    static func sinkNames(_ pipeline: FerryConfiguration.Pipeline) -> [String] {
        pipeline.sinks + (pipeline.deadLetterSink.map { [$0] } ?? [])
    }

    /// One line for the log and the API: `added b; removed c; restarted a (sink pg); unchanged d`.
    var summary: String {
        var parts: [String] = []
        if !added.isEmpty { parts.append("started \(added.joined(separator: ", "))") }
        if !removed.isEmpty { parts.append("stopped \(removed.joined(separator: ", "))") }
        if !changed.isEmpty {
            parts.append("restarted " + changed.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value.joined(separator: ", ")))" }.joined(separator: ", "))
        }
        if !unchanged.isEmpty { parts.append("untouched \(unchanged.joined(separator: ", "))") }
        if !needsRestart.isEmpty { parts.append("\(needsRestart.joined(separator: ", ")) changes apply at the next restart of ferry run") }
        return parts.isEmpty ? "nothing changed" : parts.joined(separator: "; ")
    }
}
