import Etcd
import Testing
@testable import Cluster

@Suite struct PipelineAssignmentTests {
    func loads(_ owners: [String: String], _ members: [String]) -> [Int] {
        members.map { member in owners.values.filter { $0 == member }.count }
    }

    @Test func everyPipelineGetsAnOwnerAndLoadsDifferByAtMostOne() {
        for memberCount in 1...7 {
            let members = (0..<memberCount).map { "node-\($0)" }
            for pipelineCount in 0...20 {
                let pipelines = (0..<pipelineCount).map { "p\($0)" }
                let owners = PipelineAssignment.assign(pipelines: pipelines, members: Dictionary(uniqueKeysWithValues: members.map { ($0, .seconds(60)) }),
                                                       coolDown: .seconds(10))
                #expect(Set(owners.keys) == Set(pipelines))
                let counts = loads(owners, members)
                #expect(counts.max()! - counts.min()! <= 1, "\(pipelineCount) pipelines on \(memberCount) members: \(counts)")
            }
        }
        #expect(PipelineAssignment.assign(pipelines: ["a"], members: [:], coolDown: .zero).isEmpty)
    }

    /// Every node must compute the same answer, whatever order it learned things in, and every
    /// release too: the weights are pinned (values computed independently, in Python).
    @Test func theAnswerIsTheSameEverywhere() {
        let pipelines = ["orders", "users", "billing", "audit", "events", "search"]
        let members: [String: Duration] = ["a": .seconds(99), "b": .seconds(50), "c": .seconds(12)]
        let first = PipelineAssignment.assign(pipelines: pipelines, members: members, coolDown: .seconds(10))
        #expect(PipelineAssignment.assign(pipelines: pipelines.reversed(), members: members, coolDown: .seconds(10)) == first)
        #expect(PipelineAssignment.score("orders", "a") == PipelineAssignment.score("orders", "a"))
        #expect(PipelineAssignment.score("orders", "a") != PipelineAssignment.score("a", "orders"))
        #expect(PipelineAssignment.score("", "") == 0xb903_4ad3_7056_f5fb)
        #expect(PipelineAssignment.score("orders", "node-a") == 0x2bcf_8977_2ec9_8cbd)
    }

    /// When a member goes, its pipelines move; of the others, few do.
    @Test func aLostMemberMovesItsPipelinesAndFewOthers() {
        var movedOthers = 0, others = 0
        for round in 0..<100 {
            let pipelines = (0..<6).map { "pipeline-\(round)-\($0)" }
            let members: [String: Duration] = ["a": .seconds(60), "b": .seconds(60), "c": .seconds(60)]
            let before = PipelineAssignment.assign(pipelines: pipelines, members: members, coolDown: .seconds(10))
            let after = PipelineAssignment.assign(pipelines: pipelines, members: members.filter { $0.key != "c" }, coolDown: .seconds(10))
            for pipeline in pipelines {
                #expect(after[pipeline] != "c")
                guard before[pipeline] != "c" else { continue }
                others += 1
                if after[pipeline] != before[pipeline] { movedOthers += 1 }
            }
        }
        #expect(Double(movedOthers) / Double(others) < 0.2, "\(movedOthers) of \(others) pipelines on surviving members moved")
    }

    @Test func newMembersWaitOutTheirCoolDown() {
        let pipelines = (0..<6).map { "p\($0)" }
        let owners = PipelineAssignment.assign(pipelines: pipelines, members: ["a": .seconds(60), "b": .seconds(10), "new": .seconds(3)],
                                               coolDown: .seconds(10))
        #expect(!owners.values.contains("new"))
        #expect(loads(owners, ["a", "b"]) == [3, 3])
        // A cluster starting: nobody has waited yet, so everyone is eligible.
        let starting = PipelineAssignment.assign(pipelines: pipelines, members: ["a": .seconds(1), "b": .zero, "c": .seconds(2)],
                                                 coolDown: .seconds(10))
        #expect(loads(starting, ["a", "b", "c"]) == [2, 2, 2])
    }
}

@Suite struct LeaseDeadlineTests {
    @Test func writableUntilTheMarginBeforeTheServerCanExpireTheLease() {
        let start = ContinuousClock.now
        var deadline = LeaseDeadline(margin: .seconds(2))
        #expect(!deadline.isWritable(at: start))
        deadline.renewed(sentAt: start, ttlSeconds: 10)
        #expect(deadline.isWritable(at: start + .milliseconds(7_999)))
        #expect(!deadline.isWritable(at: start + .seconds(8)))
        deadline.renewed(sentAt: start + .seconds(3), ttlSeconds: 10)
        #expect(deadline.writableUntil == start + .seconds(11))
        // An older renewal answered late does not shorten it.
        deadline.renewed(sentAt: start + .seconds(1), ttlSeconds: 10)
        #expect(deadline.writableUntil == start + .seconds(11))
        deadline.lost()
        #expect(!deadline.isWritable(at: start + .seconds(4)))
    }
}

@Suite struct MemberViewTests {
    @Test func agesCountFromFirstSightAndRestartWithANewRegistration() {
        let start = ContinuousClock.now
        var view = MemberView()
        view.reset(to: ["a": 10, "b": 11], at: start)
        view.reset(to: ["a": 10, "b": 11, "c": 12], at: start + .seconds(5))
        #expect(view.ages(at: start + .seconds(6)) == ["a": .seconds(6), "b": .seconds(6), "c": .seconds(1)])
        // a left and came back: missing from a read.
        view.reset(to: ["b": 11, "c": 12], at: start + .seconds(7))
        view.reset(to: ["a": 20, "b": 11, "c": 12], at: start + .seconds(8))
        #expect(view.ages(at: start + .seconds(9))["a"] == .seconds(1))
        // b restarted between two reads: the same name under a new registration.
        view.reset(to: ["a": 20, "b": 30, "c": 12], at: start + .seconds(9))
        #expect(view.ages(at: start + .seconds(10))["b"] == .seconds(1))
        view.reset(to: ["c": 12], at: start + .seconds(10))
        #expect(view.names == ["c"] && view.ages(at: start + .seconds(10)) == ["c": .seconds(5)])
    }
}
