/// One key and its value as etcd stores it, with the revisions that order every change.
public struct EtcdKeyValue: Sendable, Equatable {
    public var key: [UInt8]
    public var value: [UInt8]
    /// The revision that created the key (it stays until the key is deleted); cluster mode uses
    /// an owner key's create revision as the owner's epoch.
    public var createRevision: Int64
    public var modRevision: Int64
    public var version: Int64
    /// The lease the key is bound to, 0 for none.
    public var lease: Int64

    public init(key: [UInt8], value: [UInt8], createRevision: Int64, modRevision: Int64, version: Int64, lease: Int64) {
        self.key = key
        self.value = value
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.version = version
        self.lease = lease
    }

    public var keyText: String { String(decoding: key, as: UTF8.self) }
    public var valueText: String { String(decoding: value, as: UTF8.self) }
}

/// The answer to a range read: the keys, and the store's revision when it was read.
public struct EtcdRange: Sendable, Equatable {
    public var keyValues: [EtcdKeyValue]
    public var revision: Int64
    /// Whether a limit left keys out.
    public var more: Bool
    public var count: Int64
}

/// A condition of a transaction: `key`'s target compared with `result` to the operand.
public struct EtcdCompare: Sendable, Equatable {
    public enum Target: Sendable, Equatable {
        case version(Int64)
        case createRevision(Int64)
        case modRevision(Int64)
        case value([UInt8])
        case lease(Int64)
    }
    public enum Result: String, Sendable {
        case equal = "EQUAL", notEqual = "NOT_EQUAL", greater = "GREATER", less = "LESS"
    }
    public var key: [UInt8]
    public var target: Target
    public var result: Result

    public init(key: String, _ target: Target, _ result: Result = .equal) {
        self.key = Array(key.utf8)
        self.target = target
        self.result = result
    }

    /// True when `key` does not exist (its create revision is 0).
    public static func absent(_ key: String) -> EtcdCompare { EtcdCompare(key: key, .createRevision(0)) }
}

/// An operation inside a transaction. A `rangeEnd` makes get and delete cover [key, rangeEnd).
public enum EtcdOperation: Sendable, Equatable {
    case get(key: [UInt8], rangeEnd: [UInt8]?)
    case put(key: [UInt8], value: [UInt8], lease: Int64)
    case delete(key: [UInt8], rangeEnd: [UInt8]?)

    public static func get(_ key: String) -> EtcdOperation { .get(key: Array(key.utf8), rangeEnd: nil) }
    public static func put(_ key: String, _ value: [UInt8], lease: Int64 = 0) -> EtcdOperation {
        .put(key: Array(key.utf8), value: value, lease: lease)
    }
    public static func delete(_ key: String) -> EtcdOperation { .delete(key: Array(key.utf8), rangeEnd: nil) }
}

public enum EtcdOperationResult: Sendable, Equatable {
    case get(EtcdRange)
    case put
    case delete(deleted: Int64)
}

/// What a transaction did: which branch ran, at which revision, and each operation's result.
public struct EtcdTxnResult: Sendable, Equatable {
    public var succeeded: Bool
    public var revision: Int64
    public var results: [EtcdOperationResult]
}

public struct EtcdLease: Sendable, Equatable {
    public var id: Int64
    /// The time to live the server granted, in seconds.
    public var ttlSeconds: Int64
}

/// One change a watch saw.
public struct EtcdWatchEvent: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case put, delete }
    public var kind: Kind
    /// For a delete, only the key and the deleting revision (`modRevision`) are set.
    public var keyValue: EtcdKeyValue

    public init(kind: Kind, keyValue: EtcdKeyValue) {
        self.kind = kind
        self.keyValue = keyValue
    }
}

/// The first key after every key that starts with `prefix`: the range end that makes a range
/// read, delete or watch cover exactly the prefix. An empty prefix, or one of only 0xFF bytes,
/// has no such key; etcd spells "to the end of the key space" as a single zero byte.
public func etcdPrefixEnd(_ prefix: [UInt8]) -> [UInt8] {
    var end = prefix
    while let last = end.last {
        if last < 0xFF {
            end[end.count - 1] = last + 1
            return end
        }
        end.removeLast()
    }
    return [0]
}
