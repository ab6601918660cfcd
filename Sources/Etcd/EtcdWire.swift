import Foundation

// etcd v3's JSON gateway (grpc-gateway) spells bytes as base64 and 64-bit integers as decimal
// strings, and leaves out every field at its zero value. These types read and write exactly that.

/// A 64-bit integer the gateway writes as a string (and accepts as one).
struct WireInt64: Codable, Sendable, Equatable {
    var value: Int64

    init(_ value: Int64) { self.value = value }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self), let number = Int64(text) {
            value = number
        } else {
            value = try container.decode(Int64.self)
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(String(value))
    }
}

/// Bytes as the gateway carries them: standard base64.
struct WireBytes: Codable, Sendable, Equatable {
    var bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }
    init(_ text: String) { self.bytes = Array(text.utf8) }

    init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let data = Data(base64Encoded: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not base64: \(text.prefix(40))"))
        }
        bytes = [UInt8](data)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(Data(bytes).base64EncodedString())
    }
}

struct WireHeader: Decodable, Sendable {
    var revision: WireInt64?
}

/// An error the gateway returns instead of a response (`code` is the gRPC status code).
struct WireError: Decodable, Sendable {
    var error: String?
    var message: String?
    var code: Int?
}

/// A streamed call's failure as the whole answer: `{"error": {...}}`.
struct WireStreamEnvelope: Decodable, Sendable {
    var error: WireStreamError?
}

/// An error inside a streamed response (watch, keep-alive): `{"error": {...}}`.
struct WireStreamError: Decodable, Sendable {
    var grpc_code: Int?
    var http_code: Int?
    var message: String?
}

struct WireKeyValue: Decodable, Sendable {
    var key: WireBytes
    var create_revision: WireInt64?
    var mod_revision: WireInt64?
    var version: WireInt64?
    var value: WireBytes?
    var lease: WireInt64?

    var keyValue: EtcdKeyValue {
        EtcdKeyValue(key: key.bytes, value: value?.bytes ?? [],
                     createRevision: create_revision?.value ?? 0, modRevision: mod_revision?.value ?? 0,
                     version: version?.value ?? 0, lease: lease?.value ?? 0)
    }
}

struct WireRangeRequest: Encodable {
    var key: WireBytes
    var range_end: WireBytes?
    var limit: WireInt64?
    var revision: WireInt64?
    var keys_only: Bool?
    var count_only: Bool?
}

struct WireRangeResponse: Decodable, Sendable {
    var header: WireHeader?
    var kvs: [WireKeyValue]?
    var more: Bool?
    var count: WireInt64?

    var range: EtcdRange {
        EtcdRange(keyValues: (kvs ?? []).map(\.keyValue), revision: header?.revision?.value ?? 0,
                  more: more ?? false, count: count?.value ?? 0)
    }
}

struct WirePutRequest: Encodable {
    var key: WireBytes
    var value: WireBytes
    var lease: WireInt64?
}

struct WirePutResponse: Decodable, Sendable {
    var header: WireHeader?
}

struct WireDeleteRequest: Encodable {
    var key: WireBytes
    var range_end: WireBytes?
}

struct WireDeleteResponse: Decodable, Sendable {
    var header: WireHeader?
    var deleted: WireInt64?
}

struct WireCompare: Encodable {
    var key: WireBytes
    var range_end: WireBytes?
    var target: String
    var result: String
    var version: WireInt64?
    var create_revision: WireInt64?
    var mod_revision: WireInt64?
    var value: WireBytes?
    var lease: WireInt64?

    init(_ compare: EtcdCompare) {
        key = WireBytes(compare.key)
        result = compare.result.rawValue
        switch compare.target {
        case .version(let number): target = "VERSION"; version = WireInt64(number)
        case .createRevision(let number): target = "CREATE"; create_revision = WireInt64(number)
        case .modRevision(let number): target = "MOD"; mod_revision = WireInt64(number)
        case .value(let bytes): target = "VALUE"; value = WireBytes(bytes)
        case .lease(let id): target = "LEASE"; lease = WireInt64(id)
        }
    }
}

struct WireRequestOp: Encodable {
    var request_range: WireRangeRequest?
    var request_put: WirePutRequest?
    var request_delete_range: WireDeleteRequest?

    init(_ operation: EtcdOperation) {
        switch operation {
        case .get(let key, let rangeEnd):
            request_range = WireRangeRequest(key: WireBytes(key), range_end: rangeEnd.map(WireBytes.init))
        case .put(let key, let value, let lease):
            request_put = WirePutRequest(key: WireBytes(key), value: WireBytes(value), lease: lease == 0 ? nil : WireInt64(lease))
        case .delete(let key, let rangeEnd):
            request_delete_range = WireDeleteRequest(key: WireBytes(key), range_end: rangeEnd.map(WireBytes.init))
        }
    }
}

struct WireTxnRequest: Encodable {
    var compare: [WireCompare]
    var success: [WireRequestOp]
    var failure: [WireRequestOp]
}

struct WireResponseOp: Decodable, Sendable {
    var response_range: WireRangeResponse?
    var response_put: WirePutResponse?
    var response_delete_range: WireDeleteResponse?

    var result: EtcdOperationResult {
        if let response_range { return .get(response_range.range) }
        if let response_delete_range { return .delete(deleted: response_delete_range.deleted?.value ?? 0) }
        return .put
    }
}

struct WireTxnResponse: Decodable, Sendable {
    var header: WireHeader?
    var succeeded: Bool?
    var responses: [WireResponseOp]?
}

struct WireLeaseGrantRequest: Encodable {
    var TTL: WireInt64
    var ID: WireInt64?
}

struct WireLeaseGrantResponse: Decodable, Sendable {
    var header: WireHeader?
    var ID: WireInt64?
    var TTL: WireInt64?
    var error: String?
}

struct WireLeaseID: Encodable {
    var ID: WireInt64
}

/// One message of the keep-alive stream; `TTL` is absent (zero) when the lease no longer exists.
struct WireKeepAliveMessage: Decodable, Sendable {
    struct Result: Decodable, Sendable {
        var header: WireHeader?
        var ID: WireInt64?
        var TTL: WireInt64?
    }
    var result: Result?
    var error: WireStreamError?
}

struct WireAuthenticateRequest: Encodable {
    var name: String
    var password: String
}

struct WireAuthenticateResponse: Decodable, Sendable {
    var token: String?
}

struct WireWatchCreate: Encodable {
    struct Create: Encodable {
        var key: WireBytes
        var range_end: WireBytes?
        var start_revision: WireInt64?
        var progress_notify: Bool?
    }
    var create_request: Create
}

struct WireWatchMessage: Decodable, Sendable {
    struct Event: Decodable, Sendable {
        var type: String?
        var kv: WireKeyValue
    }
    struct Result: Decodable, Sendable {
        var header: WireHeader?
        var created: Bool?
        var canceled: Bool?
        var compact_revision: WireInt64?
        var cancel_reason: String?
        var events: [Event]?
    }
    var result: Result?
    var error: WireStreamError?
}
