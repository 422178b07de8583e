//! The API's routes as data: one table gives both the router and the
//! OpenAPI 3.1 document served at `/v1/openapi.json`, so a route cannot be
//! added without being documented.

use serde_json::{Value, json};

/// What a route needs and does, for the document.
#[derive(Clone, Copy, Debug)]
pub struct RouteDoc {
    /// HTTP method, lower case.
    pub method: &'static str,
    /// Path with `{param}` placeholders.
    pub path: &'static str,
    /// Key scope needed (`None`: open).
    pub scope: Option<&'static str>,
    /// One line on what it does.
    pub summary: &'static str,
    /// The request body it takes, if any: `batch:Schema` (one object, a
    /// JSON array of them, or NDJSON), `json:Schema` (one object), `toml`.
    pub body: Option<&'static str>,
    /// Query parameters it reads.
    pub query: &'static [&'static str],
}

/// Every route, in the router's order (see `crate::router`).
pub const ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "get",
        path: "/healthz",
        scope: None,
        summary: "The database answers; the live model version.",
        body: None,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/metrics",
        scope: Some("read"),
        summary: "Prometheus text metrics.",
        body: None,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/v1/openapi.json",
        scope: None,
        summary: "This document.",
        body: None,
        query: &[],
    },
    RouteDoc {
        method: "post",
        path: "/v1/events",
        scope: Some("write"),
        summary: "Store events (up to 10 000); answered after a durable commit, per item accepted, duplicate or rejected.",
        body: Some("batch:Event"),
        query: &[],
    },
    RouteDoc {
        method: "post",
        path: "/v1/contacts",
        scope: Some("write"),
        summary: "Create or update contacts (merge attributes, or replace with ?replace=true).",
        body: Some("batch:Contact"),
        query: &["replace"],
    },
    RouteDoc {
        method: "get",
        path: "/v1/contacts",
        scope: Some("read"),
        summary: "List contacts with their scores: filters, sort, cursor.",
        body: None,
        query: &[
            "band", "stage", "where", "segment", "sort", "limit", "cursor",
        ],
    },
    RouteDoc {
        method: "get",
        path: "/v1/contacts/{id}",
        scope: Some("read"),
        summary: "A contact's attributes and current score.",
        body: None,
        query: &[],
    },
    RouteDoc {
        method: "delete",
        path: "/v1/contacts/{id}",
        scope: Some("write"),
        summary: "Erase a contact: attributes, events, scores, history.",
        body: None,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/v1/contacts/{id}/score",
        scope: Some("read"),
        summary: "The score object of `leadscore score`, at a time, optionally explained.",
        body: None,
        query: &["as_of", "explain"],
    },
    RouteDoc {
        method: "get",
        path: "/v1/leads",
        scope: Some("read"),
        summary: "The leaderboard: filters, segment, sort, cursor.",
        body: None,
        query: &[
            "band", "stage", "where", "segment", "sort", "limit", "cursor",
        ],
    },
    RouteDoc {
        method: "get",
        path: "/v1/transitions",
        scope: Some("read"),
        summary: "The feed of band and stage changes after a cursor.",
        body: None,
        query: &["after", "limit"],
    },
    RouteDoc {
        method: "get",
        path: "/v1/model",
        scope: Some("read"),
        summary: "The current model, its text and the version history.",
        body: None,
        query: &[],
    },
    RouteDoc {
        method: "put",
        path: "/v1/model",
        scope: Some("admin"),
        summary: "Set a new model (validated; ?dry_run=true shows what would move).",
        body: Some("toml"),
        query: &["dry_run"],
    },
    RouteDoc {
        method: "post",
        path: "/v1/track",
        scope: Some("write"),
        summary: "A Segment-style track call.",
        body: Some("json:SegmentCall"),
        query: &[],
    },
    RouteDoc {
        method: "post",
        path: "/v1/page",
        scope: Some("write"),
        summary: "A Segment-style page call (a page_view event).",
        body: Some("json:SegmentCall"),
        query: &[],
    },
    RouteDoc {
        method: "post",
        path: "/v1/identify",
        scope: Some("write"),
        summary: "A Segment-style identify call: traits to attributes; joins an anonymous visitor.",
        body: Some("json:SegmentCall"),
        query: &[],
    },
    RouteDoc {
        method: "post",
        path: "/v1/batch",
        scope: Some("write"),
        summary: "Segment-style calls in a batch.",
        body: Some("json:SegmentBatch"),
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/v1/webhooks",
        scope: Some("admin"),
        summary: "List webhook subscriptions.",
        body: None,
        query: &[],
    },
    RouteDoc {
        method: "post",
        path: "/v1/webhooks",
        scope: Some("admin"),
        summary: "Subscribe a URL to transitions; the answer holds the signing secret.",
        body: Some("json:NewWebhook"),
        query: &[],
    },
    RouteDoc {
        method: "delete",
        path: "/v1/webhooks/{id}",
        scope: Some("admin"),
        summary: "Remove a subscription.",
        body: None,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/v1/webhooks/{id}/deliveries",
        scope: Some("admin"),
        summary: "A subscription's delivery log.",
        body: None,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/v1/segments",
        scope: Some("read"),
        summary: "List segments.",
        body: None,
        query: &[],
    },
    RouteDoc {
        method: "post",
        path: "/v1/segments",
        scope: Some("write"),
        summary: "Save a segment: band, stage, where, had_event.",
        body: Some("json:Segment"),
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/v1/segments/{name}",
        scope: Some("read"),
        summary: "A segment and how many it holds now.",
        body: None,
        query: &[],
    },
    RouteDoc {
        method: "delete",
        path: "/v1/segments/{name}",
        scope: Some("write"),
        summary: "Delete a segment.",
        body: None,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/v1/segments/{name}/members",
        scope: Some("read"),
        summary: "A segment's members now, by score.",
        body: None,
        query: &["limit", "cursor"],
    },
    RouteDoc {
        method: "get",
        path: "/v1/segments/{name}/export",
        scope: Some("read"),
        summary: "A segment's members as CSV.",
        body: None,
        query: &[],
    },
];

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// The OpenAPI 3.1 document of [`ROUTES`].
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for r in ROUTES {
        let mut parameters: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        parameters.extend(r.query.iter().map(
            |q| json!({"name": q, "in": "query", "required": false, "schema": {"type": "string"}}),
        ));
        let mut responses = serde_json::Map::new();
        let ok = match (r.method, r.path) {
            ("delete", _) => ("204", json!({"description": "Done"})),
            ("post", "/v1/webhooks" | "/v1/segments") => (
                "201",
                json!({"description": "Created", "content": {"application/json": {"schema": {"type": "object"}}}}),
            ),
            ("get", "/metrics") => (
                "200",
                json!({"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}),
            ),
            ("get", p) if p.ends_with("/export") => (
                "200",
                json!({"description": "OK", "content": {"text/csv": {"schema": {"type": "string"}}}}),
            ),
            _ => (
                "200",
                json!({"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}),
            ),
        };
        responses.insert(ok.0.into(), ok.1);
        if r.path.contains('{') {
            responses.insert(
                "404".into(),
                error_response("No such contact, segment or subscription"),
            );
        }
        if r.body.is_some() {
            responses.insert(
                "413".into(),
                error_response("The body or the batch is too large"),
            );
        }
        responses.insert(
            "400".into(),
            error_response("A request part is wrong: `field` names it"),
        );
        if r.scope.is_some() {
            responses.insert(
                "401".into(),
                error_response("No key, or an unknown or revoked one"),
            );
            responses.insert("403".into(), error_response("The key's scope is too small"));
        }
        let operation_id = format!(
            "{}{}",
            r.method,
            r.path.replace(['{', '}'], "").replace(['/', '.', '-'], "_")
        );
        let mut op = json!({
            "operationId": operation_id,
            "summary": r.summary,
            "parameters": parameters,
            "responses": responses,
        });
        if let Some(scope) = r.scope {
            op["security"] = json!([{"apiKey": [scope]}]);
            op["x-leadscore-scope"] = json!(scope);
        } else {
            op["security"] = json!([]);
        }
        if let Some(body) = r.body {
            let reference = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
            let content = match body.split_once(':') {
                Some(("batch", name)) => json!({
                    "application/json": {"schema": {"oneOf": [reference(name), {"type": "array", "items": reference(name), "maxItems": 10000}]}},
                    "application/x-ndjson": {"schema": {"type": "string", "description": format!("one {name} object per line")}}
                }),
                Some((_, name)) => json!({"application/json": {"schema": reference(name)}}),
                None => json!({"application/toml": {"schema": {"type": "string"}}}),
            };
            op["requestBody"] = json!({"required": true, "content": content});
        }
        let entry = paths.entry(r.path.to_owned()).or_insert_with(|| json!({}));
        entry[r.method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "leadscore", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Lead scoring service: events in, scores, leads, segments and webhooks out."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                "description": "A key from `leadscore keys create` (scopes read < write < admin); also X-API-Key, or HTTP Basic with the key as user name."}},
            "schemas": {
                "Event": {"type": "object", "additionalProperties": false, "required": ["id", "contact_id", "type", "timestamp"],
                    "properties": {"id": {"type": "string", "maxLength": 256}, "contact_id": {"type": "string", "maxLength": 256},
                        "type": {"type": "string", "maxLength": 128}, "timestamp": {"type": "string", "format": "date-time"},
                        "properties": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean", "null"]}}}},
                "Contact": {"type": "object", "additionalProperties": false, "required": ["id"],
                    "properties": {"id": {"type": "string", "maxLength": 256},
                        "attributes": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean", "null"]}}}},
                "SegmentCall": {"type": "object", "description": "A Segment-style call; other fields are ignored.",
                    "properties": {"type": {"enum": ["track", "page", "identify"]}, "messageId": {"type": "string"},
                        "userId": {"type": ["string", "number"]}, "anonymousId": {"type": ["string", "number"]}, "event": {"type": "string"},
                        "name": {"type": "string"}, "properties": {"type": "object"}, "traits": {"type": "object"},
                        "timestamp": {"type": "string", "format": "date-time"}}},
                "SegmentBatch": {"type": "object", "required": ["batch"],
                    "properties": {"batch": {"type": "array", "maxItems": 10000, "items": {"$ref": "#/components/schemas/SegmentCall"}}}},
                "NewWebhook": {"type": "object", "additionalProperties": false, "required": ["url"],
                    "properties": {"url": {"type": "string", "format": "uri", "maxLength": 2000},
                        "events": {"type": "array", "items": {"enum": ["band", "stage", "disqualified"]}},
                        "segment": {"type": "string"}}},
                "Segment": {"type": "object", "additionalProperties": false, "required": ["name"],
                    "properties": {"name": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}, "band": {"type": "string"},
                        "stage": {"type": "string"}, "where": {"type": "string", "description": "a condition as a TOML inline table"},
                        "had_event": {"type": "object", "additionalProperties": false, "required": ["type", "within_days"],
                            "properties": {"type": {"type": "string"}, "within_days": {"type": "number", "exclusiveMinimum": 0}}}}},
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": ["string", "null"]}}}}}}
        }
    })
}

/// `GET /v1/openapi.json`.
pub async fn serve_document() -> axum::Json<Value> {
    axum::Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_well_formed_openapi() {
        let d = document();
        assert_eq!(d["openapi"], "3.1.0");
        let paths = d["paths"].as_object().unwrap();
        let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(
            operations,
            ROUTES.len(),
            "one operation per route, no two alike"
        );
        // Every reference names a schema of the document.
        let text = d.to_string();
        for part in text.split("#/components/schemas/").skip(1) {
            let name: String = part.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(d["components"]["schemas"][&name].is_object(), "{name}");
        }
        assert!(text.contains("#/components/schemas/Event"));
        let mut ids = std::collections::HashSet::new();
        for (path, item) in paths {
            assert!(path.starts_with('/'));
            for (method, op) in item.as_object().unwrap() {
                assert!(["get", "post", "put", "delete"].contains(&method.as_str()));
                assert!(
                    ids.insert(op["operationId"].as_str().unwrap().to_owned()),
                    "unique operationId"
                );
                assert!(
                    ["200", "201", "204"]
                        .iter()
                        .any(|c| op["responses"][c].is_object())
                );
                // Every {param} of the path is a declared path parameter.
                for seg in path.split('/').filter(|s| s.starts_with('{')) {
                    let name = &seg[1..seg.len() - 1];
                    assert!(
                        op["parameters"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|p| p["name"] == name && p["in"] == "path")
                    );
                }
                if op["x-leadscore-scope"].is_string() {
                    assert!(
                        op["responses"]["401"].is_object() && op["responses"]["403"].is_object()
                    );
                }
            }
        }
    }
}
