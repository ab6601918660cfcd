import NIOCore
import NIOPosix

/// A short description of why a client connection failed (a NIO or system error), for the wire
/// protocols' error messages.
public func describeConnectionError(_ error: any Error) -> String {
    if let error = error as? IOError { return error.description }
    if let error = error as? ChannelError {
        switch error {
        case .connectTimeout(let amount): return "connection timed out after \(amount.nanoseconds / 1_000_000_000) s"
        case .ioOnClosedChannel, .alreadyClosed, .eof: return "connection closed"
        default: return "\(error)"
        }
    }
    if let error = error as? NIOConnectionError, let first = error.connectionErrors.first {
        return describeConnectionError(first.error)
    }
    return "\(error)"
}
