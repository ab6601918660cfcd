import Foundation
import NIOCore

/// What a NATS server sends a client (the text protocol, with headers).
enum NATSServerOperation: Equatable, Sendable {
    case info(String)
    case message(subject: String, sid: String, replyTo: String?, headers: [UInt8]?, payload: [UInt8])
    case ping
    case pong
    case ok
    case error(String)
}

/// A server line that is not NATS; the connection cannot be used any more.
struct NATSProtocolError: Error, Equatable, CustomStringConvertible {
    var reason: String
    var description: String { "malformed NATS server message: \(reason)" }
}

/// Reads server operations. `decode` returns nil while only part of one has arrived and then
/// leaves the reader index where it was.
enum NATSDecoder {
    static let maximumLine = 64 << 10
    static let maximumPayload = 64 << 20

    static func decode(_ buffer: inout ByteBuffer) throws -> NATSServerOperation? {
        var cursor = buffer
        let view = cursor.readableBytesView
        guard let cr = view.firstIndex(of: 0x0D) else {
            if view.count > maximumLine { throw NATSProtocolError(reason: "a line longer than 64 KiB") }
            return nil
        }
        guard view.index(after: cr) < view.endIndex else { return nil }
        guard view[view.index(after: cr)] == 0x0A else { throw NATSProtocolError(reason: "CR without LF") }
        let lineBytes = cursor.readBytes(length: cr - view.startIndex)!
        cursor.moveReaderIndex(forwardBy: 2)
        // Split on bytes, and the line as text only where it is used: a publish acknowledgement
        // arrives per message, and String work cost more than the server took to store it.
        var line: String { String(decoding: lineBytes, as: UTF8.self) }
        let parts = lineBytes.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: true).map { String(decoding: $0, as: UTF8.self) }
        guard let verb = parts.first?.uppercased() else { throw NATSProtocolError(reason: "an empty line") }
        let operation: NATSServerOperation
        switch verb {
        case "PING": operation = .ping
        case "PONG": operation = .pong
        case "+OK": operation = .ok
        case "-ERR": operation = .error(String(line.dropFirst(4)).trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "'")))
        case "INFO": operation = .info(String(line.dropFirst(4)).trimmingCharacters(in: .whitespaces))
        case "MSG", "HMSG":
            // MSG <subject> <sid> [reply-to] <#bytes>; HMSG <subject> <sid> [reply-to] <#header bytes> <#total bytes>
            let headered = verb == "HMSG"
            let counts = headered ? 2 : 1
            guard parts.count == 3 + counts || parts.count == 4 + counts,
                  let total = Int(parts[parts.count - 1]), total >= 0, total <= maximumPayload else {
                throw NATSProtocolError(reason: "'\(line.prefix(200))'")
            }
            let headerBytes = headered ? Int(parts[parts.count - 2]) ?? -1 : 0
            guard headerBytes >= 0, headerBytes <= total else { throw NATSProtocolError(reason: "'\(line.prefix(200))'") }
            guard cursor.readableBytes >= total + 2 else { return nil }
            let headers = headered ? cursor.readBytes(length: headerBytes) : nil
            let payload = cursor.readBytes(length: total - headerBytes)!
            guard cursor.readInteger(as: UInt16.self) == 0x0D0A else { throw NATSProtocolError(reason: "a message not ended by CRLF") }
            operation = .message(subject: parts[1], sid: parts[2], replyTo: parts.count == 4 + counts ? parts[3] : nil, headers: headers, payload: payload)
        default:
            throw NATSProtocolError(reason: "unknown operation '\(line.prefix(40))'")
        }
        buffer = cursor
        return operation
    }

    /// `NATS/1.0 503\r\nName: value\r\n…\r\n\r\n` → the status code (if any) and the header fields.
    static func headers(_ bytes: [UInt8]) -> (status: Int?, fields: [String: String]) {
        let lines = String(decoding: bytes, as: UTF8.self).components(separatedBy: "\r\n")
        var status: Int? = nil
        if let first = lines.first, first.hasPrefix("NATS/1.0") {
            status = Int(first.dropFirst("NATS/1.0".count).trimmingCharacters(in: .whitespaces).prefix(3))
        }
        var fields: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
        }
        return (status, fields)
    }
}

/// Writes client operations.
enum NATSEncoder {
    /// The header block of a message: `NATS/1.0`, a line per header of `first`, `shared` (lines
    /// made once for many messages by `headerLines`), a line per header of `last`, an empty line.
    static func headerBlock(_ first: [(String, String)], shared: [UInt8] = [], _ last: [(String, String)] = []) -> [UInt8] {
        var block = Array("NATS/1.0\r\n".utf8)
        block.reserveCapacity(block.count + shared.count + 128)
        headerLines(first, into: &block)
        block.append(contentsOf: shared)
        headerLines(last, into: &block)
        block.append(contentsOf: "\r\n".utf8)
        return block
    }

    /// `Name: value` lines.
    static func headerLines(_ headers: [(String, String)], into out: inout [UInt8]) {
        for (name, value) in headers {
            out.append(contentsOf: name.utf8)
            out.append(contentsOf: ": ".utf8)
            out.append(contentsOf: value.utf8)
            out.append(contentsOf: "\r\n".utf8)
        }
    }

    static func publish(subject: String, replyTo: String, headerBlock: [UInt8], payload: [UInt8], into buffer: inout ByteBuffer) {
        buffer.writeString("HPUB \(subject) \(replyTo) \(headerBlock.count) \(headerBlock.count + payload.count)\r\n")
        buffer.writeBytes(headerBlock)
        buffer.writeBytes(payload)
        buffer.writeStaticString("\r\n")
    }

    static func request(subject: String, replyTo: String, payload: [UInt8], into buffer: inout ByteBuffer) {
        buffer.writeString("PUB \(subject) \(replyTo) \(payload.count)\r\n")
        buffer.writeBytes(payload)
        buffer.writeStaticString("\r\n")
    }
}
