#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Buffered writes to a file descriptor (stdout for `ferry tail`), without Foundation.
public final class FileDescriptorOutput {
    private let descriptor: Int32
    private var buffer: [UInt8] = []
    /// Flush once this many bytes are buffered.
    public var flushThreshold = 256 * 1024

    public init(descriptor: Int32) {
        self.descriptor = descriptor
        buffer.reserveCapacity(flushThreshold + 64 * 1024)
    }

    /// Appends through `body`, flushing when the buffer is large.
    public func append(_ body: (inout [UInt8]) -> Void) throws {
        body(&buffer)
        if buffer.count >= flushThreshold { try flush() }
    }

    /// Writes everything buffered. Throws `OutputClosed` when the reader went away (EPIPE).
    public func flush() throws {
        var offset = 0
        while offset < buffer.count {
            let written = buffer.withUnsafeBytes { raw in
                write(descriptor, raw.baseAddress! + offset, raw.count - offset)
            }
            if written < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                buffer.removeAll(keepingCapacity: true)
                if errno == EPIPE { throw OutputClosed() }
                throw OutputFailed(errno: errno)
            }
            offset += written
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// The reader of the output closed it (e.g. `ferry tail | head`).
    public struct OutputClosed: Error {}

    public struct OutputFailed: Error, CustomStringConvertible {
        public var errno: Int32
        public var description: String { "cannot write output: \(String(cString: strerror(errno)))" }
    }

    /// Makes writes to a closed pipe return EPIPE instead of killing the process.
    public static func ignoreBrokenPipeSignal() {
        signal(SIGPIPE, SIG_IGN)
    }
}
