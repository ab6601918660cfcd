import Foundation
import FerryCore

/// The Elasticsearch/OpenSearch bulk API as ferry uses it (pure: request bodies in, item results
/// out; tested against the documented request and response shapes).
enum SearchBulk {
    /// One action of a bulk request, with the change it came from.
    struct Action {
        var index: String
        var id: String
        /// External version from the source position: a replay never moves a document back.
        var version: Int64
        /// The document; nil deletes.
        var document: [UInt8]?
        var event: ChangeEvent
    }

    /// What happened to one action.
    enum Outcome: Equatable {
        case applied
        /// The document already has this or a newer version: a replay, nothing to do.
        case superseded
        /// Overloaded or unavailable (429, 503): the batch is sent again.
        case retry(status: Int, reason: String)
        /// Refused for good (a mapping error, a document too large): dead-lettered or stops.
        case rejected(status: Int, reason: String)
    }

    /// The actions of a batch, in order: upserts index the row as a JSON document, deletes remove
    /// it; the key columns joined by `:` are the `_id`.
    static func actions(_ transactions: [Transaction], index template: String) throws -> [Action] {
        var actions: [Action] = []
        var indexes = TableRun<String>()
        for transaction in transactions {
            for event in transaction.events where event.operation != .ddl {
                let index = indexes.value(for: event.table) { indexName(template, event.table) }
                let version = event.source.position.version
                let before = try event.before.map { try documentID(event, $0) }
                let after = try event.after.map { try documentID(event, $0) }
                switch event.operation {
                case .delete:
                    if let before { actions.append(Action(index: index, id: before, version: version, document: nil, event: event)) }
                case .create, .update, .read:
                    guard let after, let row = event.after else { continue }
                    if let before, before != after { actions.append(Action(index: index, id: before, version: version, document: nil, event: event)) }
                    var document: [UInt8] = []
                    ValueJSON.appendRow(row, schema: event.schema, to: &document)
                    actions.append(Action(index: index, id: after, version: version, document: document, event: event))
                case .ddl:
                    break
                }
            }
        }
        return actions
    }

    /// NDJSON: an action line, and for an index action the document line.
    static func body(_ actions: [Action]) -> [UInt8] {
        var out: [UInt8] = []
        for action in actions {
            JSONBuffer.appendASCII(action.document == nil ? "{\"delete\":{\"_index\":" : "{\"index\":{\"_index\":", to: &out)
            JSONBuffer.appendString(action.index, to: &out)
            JSONBuffer.appendASCII(",\"_id\":", to: &out)
            JSONBuffer.appendString(action.id, to: &out)
            JSONBuffer.appendASCII(",\"version\":", to: &out)
            JSONBuffer.appendInteger(action.version, to: &out)
            JSONBuffer.appendASCII(",\"version_type\":\"external_gte\"}}\n", to: &out)
            if let document = action.document {
                out.append(contentsOf: document)
                out.append(UInt8(ascii: "\n"))
            }
        }
        return out
    }

    /// Each item's outcome, in the order of the request. A 404 on delete is success (already gone);
    /// 409 is a version conflict: the target holds a newer change.
    static func outcomes(_ response: [String: Any], count: Int) throws -> [Outcome] {
        guard let items = response["items"] as? [[String: Any]], items.count == count else {
            throw SearchBulkError(message: "the bulk response has \((response["items"] as? [Any])?.count ?? 0) items for \(count) actions")
        }
        return items.map { item in
            guard let result = (item["index"] ?? item["delete"] ?? item["create"] ?? item["update"]) as? [String: Any] else {
                return .rejected(status: 0, reason: "an item without a result")
            }
            let status = (result["status"] as? Int) ?? 0
            let error = result["error"] as? [String: Any]
            let reason = error.map { "\($0["type"] ?? "error"): \($0["reason"] ?? "")" } ?? "status \(status)"
            switch status {
            case 200...299: return .applied
            case 404 where item["delete"] != nil: return .applied
            case 409: return .superseded
            case 429, 503, 502, 504: return .retry(status: status, reason: reason)
            default: return .rejected(status: status, reason: reason)
            }
        }
    }

    /// `{db}`, `{table}`; lowercased, as index names must be.
    static func indexName(_ template: String, _ table: TableName) -> String {
        template.replacingOccurrences(of: "{db}", with: table.database).replacingOccurrences(of: "{table}", with: table.table).lowercased()
    }

    static func documentID(_ event: ChangeEvent, _ row: Row) throws -> String {
        guard let schema = event.schema, !schema.primaryKey.isEmpty else {
            throw SearchBulkError(message: "table \(event.table) has no key for the document _id; set mapping.\(event.table).key in the pipeline")
        }
        return schema.primaryKey.map { String(decoding: ValueJSON.plainText(row[$0]) ?? Array("null".utf8), as: UTF8.self) }.joined(separator: ":")
    }
}

struct SearchBulkError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
