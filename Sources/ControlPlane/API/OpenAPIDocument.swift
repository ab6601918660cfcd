/// The OpenAPI 3.0 description of `/api/v1`, served at `/api/v1/openapi.json`. A test runs
/// schemathesis against a live server with it, so it has to say exactly what the routes do.
enum OpenAPIDocument {
    static let json = #"""
    {
      "openapi": "3.0.3",
      "info": {
        "title": "Ferry control plane",
        "version": "1",
        "description": "Read and steer the pipelines of a running `ferry run`. Every call but this document needs `Authorization: Bearer <token>` (make one with `ferry token create --name NAME --role viewer|operator|admin`)."
      },
      "servers": [{"url": "/"}],
      "security": [{"token": []}],
      "paths": {
        "/api/v1/pipelines": {
          "get": {
            "operationId": "listPipelines",
            "summary": "Every pipeline with state, positions, lag, throughput, snapshot progress and recent errors",
            "responses": {
              "200": {"description": "The pipelines", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PipelineList"}}}},
              "401": {"$ref": "#/components/responses/Unauthorized"},
              "429": {"$ref": "#/components/responses/TooManyRequests"}
            }
          }
        },
        "/api/v1/pipelines/{name}": {
          "get": {
            "operationId": "getPipeline",
            "summary": "One pipeline",
            "parameters": [{"$ref": "#/components/parameters/Pipeline"}],
            "responses": {
              "200": {"description": "The pipeline", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pipeline"}}}},
              "401": {"$ref": "#/components/responses/Unauthorized"},
              "404": {"$ref": "#/components/responses/NotFound"},
              "429": {"$ref": "#/components/responses/TooManyRequests"}
            }
          }
        },
        "/api/v1/pipelines/{name}/pause": {"post": {"operationId": "pausePipeline", "summary": "Drain, commit and hold the pipeline (role operator)", "parameters": [{"$ref": "#/components/parameters/Pipeline"}], "responses": {
          "202": {"description": "Done", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pipeline"}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "403": {"$ref": "#/components/responses/Forbidden"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "409": {"$ref": "#/components/responses/Conflict"},
          "429": {"$ref": "#/components/responses/TooManyRequests"}
        }}},
        "/api/v1/pipelines/{name}/resume": {"post": {"operationId": "resumePipeline", "summary": "Start a paused pipeline again (role operator)", "parameters": [{"$ref": "#/components/parameters/Pipeline"}], "responses": {
          "202": {"description": "Done", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pipeline"}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "403": {"$ref": "#/components/responses/Forbidden"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "409": {"$ref": "#/components/responses/Conflict"},
          "429": {"$ref": "#/components/responses/TooManyRequests"}
        }}},
        "/api/v1/pipelines/{name}/restart": {"post": {"operationId": "restartPipeline", "summary": "Drain, commit and start the pipeline again (role operator)", "parameters": [{"$ref": "#/components/parameters/Pipeline"}], "responses": {
          "202": {"description": "Done", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pipeline"}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "403": {"$ref": "#/components/responses/Forbidden"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "409": {"$ref": "#/components/responses/Conflict"},
          "429": {"$ref": "#/components/responses/TooManyRequests"}
        }}},
        "/api/v1/pipelines/{name}/snapshot": {
          "post": {
            "operationId": "snapshotTables",
            "summary": "Snapshot tables while the pipeline streams (role operator); no tables: every table",
            "parameters": [{"$ref": "#/components/parameters/Pipeline"}],
            "requestBody": {"required": false, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SnapshotRequest"}}}},
            "responses": {
              "202": {"description": "Requested", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SnapshotAccepted"}}}},
              "400": {"$ref": "#/components/responses/BadRequest"},
              "401": {"$ref": "#/components/responses/Unauthorized"},
              "403": {"$ref": "#/components/responses/Forbidden"},
              "404": {"$ref": "#/components/responses/NotFound"},
              "409": {"$ref": "#/components/responses/Conflict"},
              "429": {"$ref": "#/components/responses/TooManyRequests"}
            }
          }
        },
        "/api/v1/pipelines/{name}/sinks/{sink}/rewind": {
          "post": {
            "operationId": "rewindSink",
            "summary": "Apply a sink again from an earlier position (role admin); the pipeline restarts",
            "parameters": [{"$ref": "#/components/parameters/Pipeline"}, {"name": "sink", "in": "path", "required": true, "schema": {"type": "string"}}],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RewindRequest"}}}},
            "responses": {
              "202": {"description": "Rewound", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RewindAccepted"}}}},
              "400": {"$ref": "#/components/responses/BadRequest"},
              "401": {"$ref": "#/components/responses/Unauthorized"},
              "403": {"$ref": "#/components/responses/Forbidden"},
              "404": {"$ref": "#/components/responses/NotFound"},
              "409": {"$ref": "#/components/responses/Conflict"},
              "429": {"$ref": "#/components/responses/TooManyRequests"}
            }
          }
        },
        "/api/v1/reload": {
          "post": {
            "operationId": "reload",
            "summary": "Read the configuration file again and apply what changed (role operator): added pipelines start, removed ones drain and stop, changed ones restart, the rest keep running. An invalid file is refused (400) and the running configuration stays",
            "responses": {
              "200": {"description": "Applied", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ReloadDone"}}}},
              "400": {"$ref": "#/components/responses/BadRequest"},
              "401": {"$ref": "#/components/responses/Unauthorized"},
              "403": {"$ref": "#/components/responses/Forbidden"},
              "409": {"$ref": "#/components/responses/Conflict"},
              "429": {"$ref": "#/components/responses/TooManyRequests"}
            }
          }
        },
        "/api/v1/audit": {
          "get": {
            "operationId": "auditLog",
            "summary": "Audit entries, newest first",
            "parameters": [
              {"name": "pipeline", "in": "query", "required": false, "schema": {"type": "string"}},
              {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}
            ],
            "responses": {
              "200": {"description": "Entries", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AuditList"}}}},
              "400": {"$ref": "#/components/responses/BadRequest"},
              "401": {"$ref": "#/components/responses/Unauthorized"},
              "404": {"$ref": "#/components/responses/NotFound"},
              "429": {"$ref": "#/components/responses/TooManyRequests"}
            }
          }
        },
        "/api/v1/cluster": {
          "get": {
            "operationId": "cluster",
            "summary": "Cluster mode: the members, which node owns which pipeline at which epoch, this node's lease, and recent changes of ownership (role viewer); 404 when ferry runs alone",
            "responses": {
              "200": {"description": "The cluster", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Cluster"}}}},
              "401": {"$ref": "#/components/responses/Unauthorized"},
              "404": {"$ref": "#/components/responses/NotFound"},
              "429": {"$ref": "#/components/responses/TooManyRequests"}
            }
          }
        },
        "/api/v1/events": {
          "get": {
            "operationId": "events",
            "summary": "Server-sent events: every pipeline's figures once a second (`event: pipelines`, `data:` a PipelineList); a stream ends after a minute and the client reconnects (role viewer)",
            "responses": {
              "200": {"description": "An event stream", "content": {"text/event-stream": {"schema": {"type": "string"}}}},
              "401": {"$ref": "#/components/responses/Unauthorized"},
              "429": {"$ref": "#/components/responses/TooManyRequests"}
            }
          }
        },
        "/api/v1/config": {
          "get": {
            "operationId": "configuration",
            "summary": "The effective configuration, secrets redacted (role admin)",
            "responses": {
              "200": {"description": "Configuration", "content": {"application/json": {"schema": {"type": "object"}}}},
              "401": {"$ref": "#/components/responses/Unauthorized"},
              "403": {"$ref": "#/components/responses/Forbidden"},
              "429": {"$ref": "#/components/responses/TooManyRequests"}
            }
          }
        }
      },
      "components": {
        "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        "parameters": {
          "Pipeline": {"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}
        },
        "responses": {
          "BadRequest": {"description": "The request is not valid", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "Unauthorized": {"description": "No valid token", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "Forbidden": {"description": "The token's role is too low", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "NotFound": {"description": "No such pipeline or sink", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "Conflict": {"description": "Not possible in the pipeline's state", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "TooManyRequests": {"description": "Too many failed logins from this address", "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        },
        "schemas": {
          "Error": {
            "type": "object", "required": ["error"], "additionalProperties": false,
            "properties": {"error": {"type": "object", "required": ["status", "message"], "additionalProperties": false,
              "properties": {"status": {"type": "integer"}, "message": {"type": "string"}}}}
          },
          "ReloadDone": {"type": "object", "required": ["summary"], "additionalProperties": false,
            "properties": {"summary": {"type": "string", "description": "What the reload did, e.g. started b; restarted a (sink pg); untouched c"}}},
          "PipelineList": {"type": "object", "required": ["pipelines"], "additionalProperties": false,
            "properties": {"pipelines": {"type": "array", "items": {"$ref": "#/components/schemas/Pipeline"}}}},
          "Pipeline": {
            "type": "object", "additionalProperties": false,
            "required": ["name", "state", "source", "buffer", "events_read", "events_per_second", "events_per_second_history", "sinks", "tables", "snapshots", "errors"],
            "properties": {
              "name": {"type": "string"},
              "state": {"type": "string", "enum": ["starting", "running", "paused", "stopping", "stopped", "failed", "unowned"]},
              "source": {"type": "string"},
              "source_position": {"type": "string", "description": "The source's current end of log"},
              "read_position": {"type": "string"},
              "safe_position": {"type": "string", "description": "Applied by every sink up to here"},
              "binlog_retention": {"type": "object", "additionalProperties": false,
                "description": "How long the source keeps the oldest binlog file the pipeline needs; absent while that is the current file or binlogs never expire",
                "required": ["needed_file", "expire_seconds", "seconds_left", "low"],
                "properties": {"needed_file": {"type": "string"}, "expire_seconds": {"type": "number"},
                  "seconds_left": {"type": "number", "minimum": 0, "description": "0: the server may purge it at its next rotation"},
                  "low": {"type": "boolean", "description": "Below half the expiry, at most six hours"}}},
              "wal_retention": {"type": "object", "additionalProperties": false,
                "description": "A PostgreSQL source: the WAL the server keeps for the pipeline's slot; absent for other sources and before the slot exists",
                "required": ["slot", "retained_bytes", "wal_status", "high"],
                "properties": {"slot": {"type": "string"}, "retained_bytes": {"type": "integer", "description": "From the slot's restart_lsn to the current WAL position"},
                  "limit_bytes": {"type": "integer", "description": "max_slot_wal_keep_size; absent when unlimited"},
                  "wal_status": {"type": "string", "enum": ["reserved", "extended", "unreserved", "lost", ""]},
                  "high": {"type": "boolean", "description": "Past half the limit, or the WAL is no longer reserved"}}},
              "buffer": {"type": "string", "enum": ["memory", "disk"]},
              "buffer_bytes": {"type": "integer"},
              "events_read": {"type": "integer"},
              "events_per_second": {"type": "number"},
              "events_per_second_history": {"type": "array", "items": {"type": "number"}, "maxItems": 60, "description": "Once a second over the last minute, oldest first"},
              "lag_seconds": {"type": "number"},
              "sinks": {"type": "array", "items": {"$ref": "#/components/schemas/Sink"}},
              "tables": {"type": "array", "items": {"type": "object", "required": ["name", "changes"], "additionalProperties": false,
                "properties": {"name": {"type": "string"}, "changes": {"type": "integer"}}}},
              "snapshots": {"type": "array", "items": {"$ref": "#/components/schemas/Snapshot"}},
              "errors": {"type": "array", "items": {"$ref": "#/components/schemas/LoggedError"}},
              "owner": {"type": "string", "description": "Cluster mode: the node that runs the pipeline"},
              "epoch": {"type": "integer", "description": "Cluster mode: the owner's claim; writes of older claims are refused"}
            }
          },
          "Cluster": {
            "type": "object", "additionalProperties": false,
            "required": ["node", "lease_seconds", "writable_seconds", "members", "pipelines", "history"],
            "properties": {
              "node": {"type": "string", "description": "The node that answered"},
              "lease_seconds": {"type": "integer"},
              "writable_seconds": {"type": "number", "minimum": 0, "description": "How long this node may still write without renewing its lease"},
              "members": {"type": "array", "items": {"type": "object", "required": ["name", "pipelines"], "additionalProperties": false,
                "properties": {"name": {"type": "string"}, "started": {"type": "string"}, "pipelines": {"type": "array", "items": {"type": "string"}}}}},
              "pipelines": {"type": "array", "items": {"type": "object", "required": ["pipeline", "paused"], "additionalProperties": false,
                "properties": {"pipeline": {"type": "string"}, "owner": {"type": "string"}, "epoch": {"type": "integer"}, "paused": {"type": "boolean"}}}},
              "history": {"type": "array", "items": {"type": "object", "required": ["at", "pipeline", "action", "detail", "actor"], "additionalProperties": false,
                "properties": {"at": {"type": "string"}, "pipeline": {"type": "string"}, "action": {"type": "string"}, "detail": {"type": "string"}, "actor": {"type": "string"}}}}
            }
          },
          "Sink": {
            "type": "object", "required": ["name"], "additionalProperties": false,
            "properties": {
              "name": {"type": "string"}, "applied_position": {"type": "string"}, "lag_bytes": {"type": "integer"},
              "lag_events": {"type": "integer"}, "lag_seconds": {"type": "number"}, "events_per_second": {"type": "number"}
            }
          },
          "Snapshot": {
            "type": "object", "additionalProperties": false,
            "required": ["table", "state", "reason", "rows_done", "estimated_rows", "chunks_done", "chunks_planned", "fraction"],
            "properties": {
              "table": {"type": "string"}, "state": {"type": "string"}, "reason": {"type": "string"}, "rows_done": {"type": "integer"}, "estimated_rows": {"type": "integer"},
              "chunks_done": {"type": "integer"}, "chunks_planned": {"type": "integer"}, "fraction": {"type": "number", "minimum": 0, "maximum": 1},
              "rows_per_second": {"type": "number"}, "seconds_left": {"type": "number"}
            }
          },
          "LoggedError": {
            "type": "object", "required": ["at", "level", "message"], "additionalProperties": false,
            "properties": {
              "at": {"type": "string"}, "level": {"type": "string"}, "message": {"type": "string"}, "code": {"type": "string"},
              "position": {"type": "string"}, "table": {"type": "string"}, "sink": {"type": "string"}
            }
          },
          "SnapshotRequest": {"type": "object", "additionalProperties": false,
            "properties": {"tables": {"type": "array", "items": {"type": "string", "pattern": "^[^.]+\\.[^.]+$"}}}},
          "SnapshotAccepted": {"type": "object", "required": ["pipeline", "tables"], "additionalProperties": false,
            "properties": {"pipeline": {"type": "string"}, "tables": {"type": "array", "items": {"type": "string"}}}},
          "RewindRequest": {"type": "object", "required": ["position"], "additionalProperties": false,
            "properties": {"position": {"type": "string", "pattern": "^[A-Za-z0-9_.-]+:[0-9]{1,15}$", "example": "mariadb-bin.000042:4"}}},
          "RewindAccepted": {"type": "object", "required": ["pipeline", "sink", "position"], "additionalProperties": false,
            "properties": {"pipeline": {"type": "string"}, "sink": {"type": "string"}, "position": {"type": "string"}}},
          "AuditList": {"type": "object", "required": ["entries"], "additionalProperties": false,
            "properties": {"entries": {"type": "array", "items": {"type": "object", "required": ["at", "pipeline", "action", "detail", "actor"], "additionalProperties": false,
              "properties": {"at": {"type": "string"}, "pipeline": {"type": "string"}, "action": {"type": "string"}, "detail": {"type": "string"}, "actor": {"type": "string"}}}}}}
        }
      }
    }
    """#
}
