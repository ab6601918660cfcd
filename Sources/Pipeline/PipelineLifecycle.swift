/// What a supervised pipeline is doing, and what each operator request or end of a run makes it
/// do next: a pure state machine, so that requests arriving in any order (a pause during a
/// resume, a restart during a pause) have one tested outcome. The supervisor applies each input
/// and carries out its action before it awaits anything else.
public struct PipelineLifecycle: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        /// About to run (first start, after a resume or a restart).
        case starting
        case running
        /// The run was asked to stop; `then` says what follows.
        case stopping(then: AfterStop)
        /// Drained and held until resumed.
        case paused
        case stopped
        case failed
    }

    public enum AfterStop: Sendable, Equatable {
        case pause, restart, shutdown
    }

    /// What the supervisor does for a request.
    public enum Action: Sendable, Equatable {
        /// Stop the current run (drain and commit); nothing to do when none is running yet.
        case stopRun
        /// Let the held (paused) pipeline run again.
        case releaseToRun
        /// End the held (paused) pipeline.
        case releaseToStop
        /// Nothing to do: the request is already in effect.
        case none
    }

    /// What the supervisor does when a run is about to start or has ended.
    public enum Next: Sendable, Equatable {
        case run
        case hold
        case finish
    }

    /// Why a request was refused.
    public struct Conflict: Error, Sendable, Equatable {
        public var message: String
    }

    public private(set) var state: State = .starting

    public init() {}

    /// The state's name as the API shows it.
    public var name: String {
        switch state {
        case .starting: "starting"
        case .running: "running"
        case .stopping: "stopping"
        case .paused: "paused"
        case .stopped: "stopped"
        case .failed: "failed"
        }
    }

    public mutating func pauseRequested() throws(Conflict) -> Action {
        switch state {
        case .starting, .running, .stopping(then: .restart):
            state = .stopping(then: .pause)
            return .stopRun
        case .stopping(then: .pause), .paused:
            return .none
        case .stopping(then: .shutdown), .stopped, .failed:
            throw Conflict(message: "it is \(name), not running")
        }
    }

    public mutating func resumeRequested() throws(Conflict) -> Action {
        switch state {
        case .paused:
            state = .starting
            return .releaseToRun
        case .stopping(then: .pause):
            // Resumed before the pause took effect: the run that is stopping starts again.
            state = .stopping(then: .restart)
            return .none
        default:
            throw Conflict(message: "it is \(name), not paused")
        }
    }

    public mutating func restartRequested() throws(Conflict) -> Action {
        switch state {
        case .paused:
            state = .starting
            return .releaseToRun
        case .starting, .running, .stopping(then: .pause):
            state = .stopping(then: .restart)
            return .stopRun
        case .stopping(then: .restart):
            return .none
        case .stopping(then: .shutdown), .stopped, .failed:
            throw Conflict(message: "it is \(name); it can be restarted only while running or paused")
        }
    }

    public mutating func shutdownRequested() -> Action {
        switch state {
        case .paused:
            state = .stopped
            return .releaseToStop
        case .stopped, .failed:
            return .none
        default:
            state = .stopping(then: .shutdown)
            return .stopRun
        }
    }

    /// A run is about to start: `.run` to start it, or what a request that came first asks.
    public mutating func runStarting() -> Next {
        switch state {
        case .starting:
            state = .running
            return .run
        case .stopping(let then):
            return after(then)
        case .running, .paused, .stopped, .failed:
            return .finish
        }
    }

    /// The run returned without an error: drained after a stop, or finished its work.
    public mutating func runEnded() -> Next {
        switch state {
        case .stopping(let then):
            return after(then)
        default:
            state = .stopped
            return .finish
        }
    }

    public mutating func runFailed() {
        state = .failed
    }

    private mutating func after(_ then: AfterStop) -> Next {
        switch then {
        case .pause:
            state = .paused
            return .hold
        case .restart:
            state = .starting
            return runStarting()
        case .shutdown:
            state = .stopped
            return .finish
        }
    }
}
