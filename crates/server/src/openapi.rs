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
    /// The schema (in `components.schemas`) of its success answer's JSON
    /// body; `None` for answers without one (204) or not JSON (text, CSV).
    pub reply: Option<&'static str>,
}

/// The media types (`Content-Type`, without parameters) a body of this
/// kind (a [`RouteDoc::body`]) may be sent as. JSON bodies of the
/// Segment-style routes also come as `text/plain`: browser libraries send
/// that type, which needs no CORS preflight.
pub fn body_types(body: &str) -> &'static [&'static str] {
    match body.split_once(':') {
        Some(("batch", _)) => &[
            "application/json",
            "application/x-ndjson",
            "application/jsonl",
        ],
        Some((_, "SegmentCall" | "SegmentBatch")) => &["application/json", "text/plain"],
        Some(_) => &["application/json"],
        None => &["application/toml", "text/plain"],
    }
}

/// The route of `method` (lower case) and `path` (as routed, with
/// `{param}` placeholders).
pub fn route(method: &str, path: &str) -> Option<&'static RouteDoc> {
    ROUTES.iter().find(|r| r.method == method && r.path == path)
}

/// Every route, in the router's order (see `crate::router`).
pub const ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "get",
        path: "/healthz",
        scope: None,
        summary: "The database answers; with a read key, also the contacts and the live model version.",
        body: None,
        query: &[],
        reply: Some("Health"),
    },
    RouteDoc {
        method: "get",
        path: "/metrics",
        scope: Some("read"),
        summary: "Prometheus text metrics.",
        body: None,
        query: &[],
        reply: None,
    },
    RouteDoc {
        method: "get",
        path: "/v1/openapi.json",
        scope: None,
        summary: "This document.",
        body: None,
        query: &[],
        reply: Some("OpenApi"),
    },
    RouteDoc {
        method: "post",
        path: "/v1/events",
        scope: Some("ingest"),
        summary: "Store events (up to 10 000); answered after a durable commit, per item accepted, duplicate or rejected.",
        body: Some("batch:Event"),
        query: &[],
        reply: Some("EventsResult"),
    },
    RouteDoc {
        method: "post",
        path: "/v1/contacts",
        scope: Some("write"),
        summary: "Create or update contacts (merge attributes, or replace with ?replace=true).",
        body: Some("batch:Contact"),
        query: &["replace"],
        reply: Some("ContactsResult"),
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
        reply: Some("ScorePage"),
    },
    RouteDoc {
        method: "get",
        path: "/v1/contacts/{id}",
        scope: Some("read"),
        summary: "A contact's attributes and current score.",
        body: None,
        query: &[],
        reply: Some("ContactView"),
    },
    RouteDoc {
        method: "delete",
        path: "/v1/contacts/{id}",
        scope: Some("write"),
        summary: "Erase a contact: attributes, events, scores, history.",
        body: None,
        query: &[],
        reply: None,
    },
    RouteDoc {
        method: "get",
        path: "/v1/contacts/{id}/score",
        scope: Some("read"),
        summary: "The score object of `leadscore score`, at a time, optionally explained.",
        body: None,
        query: &["as_of", "explain"],
        reply: Some("Score"),
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
        reply: Some("ScorePage"),
    },
    RouteDoc {
        method: "get",
        path: "/v1/transitions",
        scope: Some("read"),
        summary: "The feed of band and stage changes after a cursor.",
        body: None,
        query: &["after", "limit"],
        reply: Some("TransitionPage"),
    },
    RouteDoc {
        method: "get",
        path: "/v1/model",
        scope: Some("read"),
        summary: "The current model, its text and the version history.",
        body: None,
        query: &[],
        reply: Some("ModelView"),
    },
    RouteDoc {
        method: "put",
        path: "/v1/model",
        scope: Some("admin"),
        summary: "Set a new model (validated; ?dry_run=true shows what would move).",
        body: Some("toml"),
        query: &["dry_run"],
        reply: Some("ModelChange"),
    },
    RouteDoc {
        method: "post",
        path: "/v1/track",
        scope: Some("ingest"),
        summary: "A Segment-style track call.",
        body: Some("json:SegmentCall"),
        query: &[],
        reply: Some("CallsResult"),
    },
    RouteDoc {
        method: "post",
        path: "/v1/page",
        scope: Some("ingest"),
        summary: "A Segment-style page call (a page_view event).",
        body: Some("json:SegmentCall"),
        query: &[],
        reply: Some("CallsResult"),
    },
    RouteDoc {
        method: "post",
        path: "/v1/identify",
        scope: Some("ingest"),
        summary: "A Segment-style identify call: traits to attributes; joins an anonymous visitor.",
        body: Some("json:SegmentCall"),
        query: &[],
        reply: Some("CallsResult"),
    },
    RouteDoc {
        method: "post",
        path: "/v1/batch",
        scope: Some("ingest"),
        summary: "Segment-style calls in a batch.",
        body: Some("json:SegmentBatch"),
        query: &[],
        reply: Some("CallsResult"),
    },
    RouteDoc {
        method: "post",
        path: "/v1/t",
        scope: Some("ingest"),
        summary: "/v1/track under the short path Segment's analytics.js sends to.",
        body: Some("json:SegmentCall"),
        query: &[],
        reply: Some("CallsResult"),
    },
    RouteDoc {
        method: "post",
        path: "/v1/p",
        scope: Some("ingest"),
        summary: "/v1/page under the short path Segment's analytics.js sends to.",
        body: Some("json:SegmentCall"),
        query: &[],
        reply: Some("CallsResult"),
    },
    RouteDoc {
        method: "post",
        path: "/v1/i",
        scope: Some("ingest"),
        summary: "/v1/identify under the short path Segment's analytics.js sends to.",
        body: Some("json:SegmentCall"),
        query: &[],
        reply: Some("CallsResult"),
    },
    RouteDoc {
        method: "post",
        path: "/v1/b",
        scope: Some("ingest"),
        summary: "/v1/batch under the short path Segment's analytics.js sends to.",
        body: Some("json:SegmentBatch"),
        query: &[],
        reply: Some("CallsResult"),
    },
    RouteDoc {
        method: "get",
        path: "/v1/webhooks",
        scope: Some("admin"),
        summary: "List webhook subscriptions.",
        body: None,
        query: &[],
        reply: Some("WebhookList"),
    },
    RouteDoc {
        method: "post",
        path: "/v1/webhooks",
        scope: Some("admin"),
        summary: "Subscribe a URL to transitions; the answer holds the signing secret.",
        body: Some("json:NewWebhook"),
        query: &[],
        reply: Some("WebhookCreated"),
    },
    RouteDoc {
        method: "delete",
        path: "/v1/webhooks/{id}",
        scope: Some("admin"),
        summary: "Remove a subscription.",
        body: None,
        query: &[],
        reply: None,
    },
    RouteDoc {
        method: "get",
        path: "/v1/webhooks/{id}/deliveries",
        scope: Some("admin"),
        summary: "A subscription's delivery log.",
        body: None,
        query: &[],
        reply: Some("DeliveryLog"),
    },
    RouteDoc {
        method: "get",
        path: "/v1/segments",
        scope: Some("read"),
        summary: "List segments.",
        body: None,
        query: &[],
        reply: Some("SegmentList"),
    },
    RouteDoc {
        method: "post",
        path: "/v1/segments",
        scope: Some("write"),
        summary: "Save a segment: band, stage, where, had_event.",
        body: Some("json:Segment"),
        query: &[],
        reply: Some("SegmentSaved"),
    },
    RouteDoc {
        method: "get",
        path: "/v1/segments/{name}",
        scope: Some("read"),
        summary: "A segment and how many it holds now.",
        body: None,
        query: &[],
        reply: Some("SegmentView"),
    },
    RouteDoc {
        method: "delete",
        path: "/v1/segments/{name}",
        scope: Some("write"),
        summary: "Delete a segment.",
        body: None,
        query: &[],
        reply: None,
    },
    RouteDoc {
        method: "get",
        path: "/v1/segments/{name}/members",
        scope: Some("read"),
        summary: "A segment's members now, by score.",
        body: None,
        query: &["limit", "cursor"],
        reply: Some("ScorePage"),
    },
    RouteDoc {
        method: "get",
        path: "/v1/segments/{name}/export",
        scope: Some("read"),
        summary: "A segment's members as CSV.",
        body: None,
        query: &[],
        reply: None,
    },
];

/// What a query parameter accepts (the handlers answer 400 otherwise).
fn query_schema(name: &str) -> Value {
    match name {
        "limit" => json!({"type": "integer", "minimum": 1, "maximum": crate::leads::MAX_LIMIT}),
        "as_of" => json!({"type": "string", "format": "date-time"}),
        "explain" | "replace" | "dry_run" => json!({"type": "boolean"}),
        "sort" => json!({"enum": ["-score", "score", "id"]}),
        "after" => json!({"type": "string", "pattern": "^t[0-9]+$",
                          "description": "A `next_cursor` of this feed."}),
        "cursor" => json!({"type": "string", "description": "A `next_cursor` of the same list."}),
        "where" => json!({"type": "string", "description": "A condition as a TOML inline table."}),
        _ => json!({"type": "string"}),
    }
}

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
            .map(|name| {
                // Subscriptions are numbered; contacts and segments named.
                let kind = if r.path.starts_with("/v1/webhooks/") {
                    "integer"
                } else {
                    "string"
                };
                json!({"name": name, "in": "path", "required": true, "schema": {"type": kind}})
            })
            .collect();
        parameters.extend(r.query.iter().map(
            |q| json!({"name": q, "in": "query", "required": false, "schema": query_schema(q)}),
        ));
        let mut responses = serde_json::Map::new();
        let created = matches!(
            (r.method, r.path),
            ("post", "/v1/webhooks" | "/v1/segments")
        );
        let ok = match (r.method, r.reply) {
            ("delete", _) => ("204", json!({"description": "Done"})),
            (_, Some(name)) => (
                if created { "201" } else { "200" },
                json!({"description": if created { "Created" } else { "OK" },
                       "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}}}),
            ),
            (_, None) if r.path.ends_with("/export") => (
                "200",
                json!({"description": "OK", "content": {"text/csv": {"schema": {"type": "string"}}}}),
            ),
            (_, None) => (
                "200",
                json!({"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}),
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
            responses.insert(
                "503".into(),
                error_response(
                    "`not_stored`: events could not be taken, or those acknowledged before could not be stored in time (the disk failing or full); try again",
                ),
            );
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
            let mut content = serde_json::Map::new();
            for media in body_types(body) {
                let schema = match body.split_once(':') {
                    Some(("batch", name)) if media.contains("json") && !media.ends_with("l") => {
                        json!({"oneOf": [reference(name), {"type": "array", "items": reference(name), "maxItems": 10000}]})
                    }
                    Some(("batch", name)) => {
                        json!({"type": "string", "description": format!("one {name} object per line")})
                    }
                    Some((_, name)) => reference(name),
                    None => json!({"type": "string"}),
                };
                content.insert((*media).to_owned(), json!({ "schema": schema }));
            }
            op["requestBody"] = json!({"required": true, "content": content});
        }
        let entry = paths.entry(r.path.to_owned()).or_insert_with(|| json!({}));
        entry[r.method] = op;
    }
    let mut schemas = request_schemas();
    if let (Some(all), Value::Object(replies)) = (schemas.as_object_mut(), reply_schemas()) {
        all.extend(replies);
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
            "schemas": schemas
        }
    })
}

/// The schemas of request bodies.
fn request_schemas() -> Value {
    json!({
                "Event": {"type": "object", "additionalProperties": false, "required": ["id", "contact_id", "type", "timestamp"],
                    "properties": {"id": {"type": "string", "minLength": 1, "maxLength": 256}, "contact_id": {"type": "string", "minLength": 1, "maxLength": 256},
                        "type": {"type": "string", "maxLength": 128}, "timestamp": {"type": "string", "format": "date-time"},
                        "properties": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean", "null"]}}}},
                "Contact": {"type": "object", "additionalProperties": false, "required": ["id"],
                    "properties": {"id": {"type": "string", "minLength": 1, "maxLength": 256},
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
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": ["string", "null"]}}}}}})
}

/// The schemas of success answers. Objects may gain fields in later
/// versions (none is renamed), so they do not forbid others.
fn reply_schemas() -> Value {
    let score = json!({"$ref": "#/components/schemas/Score"});
    let items = |item: Value| json!({"type": "array", "items": item});
    let count = json!({"type": "integer", "minimum": 0});
    let text_or_null = json!({"type": ["string", "null"]});
    let item_results = items(json!({"$ref": "#/components/schemas/ItemResult"}));
    let before_after = json!({"type": "object", "additionalProperties": {
        "type": "object", "required": ["before", "after"],
        "properties": {"before": count, "after": count}}});
    let segment_parts = json!({
        "name": {"type": "string"}, "band": {"type": "string"}, "stage": {"type": "string"},
        "where": {"type": "string"},
        "had_event": {"type": "object", "required": ["type", "within_days"],
            "properties": {"type": {"type": "string"}, "within_days": {"type": "number"}}}});
    let mut segment_view = segment_parts.clone();
    segment_view["members"] = count.clone();
    json!({
        "Health": {"type": "object", "required": ["status"],
            "description": "Without a key, only the status; with a read key, also the contacts and the model version.",
            "properties": {"status": {"const": "ok"}, "contacts": count, "model_version": {"type": "integer"}},
            "additionalProperties": false},
        "OpenApi": {"type": "object", "required": ["openapi", "paths"],
            "description": "This document."},
        "Score": {"type": "object", "description": "The object `leadscore score --format json` prints for a contact, at a time; with `explain=true`, also the explanation `leadscore explain --format json` gives.",
            "required": ["id", "dimensions", "score", "band", "stage", "disqualified"],
            "properties": {"id": {"type": "string"},
                "dimensions": {"type": "object", "description": "Each dimension's value, in points.", "additionalProperties": {"type": "number"}},
                "score": {"type": "number", "minimum": 0, "maximum": 100},
                "band": text_or_null, "stage": text_or_null, "disqualified": {"type": "boolean"},
                "explanation": {"type": "object"}}},
        "ContactView": {"type": "object", "required": ["id", "attributes", "score"],
            "properties": {"id": {"type": "string"},
                "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
                "score": score}},
        "ItemResult": {"type": "object", "required": ["index", "id", "status"],
            "properties": {"index": count, "id": text_or_null,
                "status": {"enum": ["accepted", "duplicate", "created", "updated", "unchanged",
                                    "identified", "identified_and_joined", "rejected"]},
                "error": {"$ref": "#/components/schemas/ErrorBody"}}},
        "ErrorBody": {"type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": text_or_null}},
        "EventsResult": {"type": "object", "required": ["accepted", "duplicates", "rejected", "items"],
            "properties": {"accepted": count, "duplicates": count, "rejected": count, "items": item_results}},
        "ContactsResult": {"type": "object", "required": ["created", "updated", "unchanged", "rejected", "items"],
            "properties": {"created": count, "updated": count, "unchanged": count, "rejected": count, "items": item_results}},
        "CallsResult": {"type": "object", "required": ["success", "rejected", "items"],
            "properties": {"success": {"type": "boolean"}, "rejected": count, "items": item_results}},
        "ScorePage": {"type": "object", "required": ["items", "total", "next_cursor"],
            "properties": {"items": items(score), "total": count,
                "next_cursor": {"type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last."}}},
        "TransitionPage": {"type": "object", "required": ["items", "next_cursor"],
            "properties": {"next_cursor": {"type": "string", "description": "Pass as `after` to read on."},
                "items": items(json!({"type": "object",
                    "required": ["contact", "at", "kind", "from", "to", "cause", "detail", "model_version"],
                    "properties": {"contact": {"type": "string"}, "at": {"type": "string", "format": "date-time"},
                        "kind": {"enum": ["band", "stage"]}, "from": text_or_null, "to": text_or_null,
                        "cause": {"enum": ["event", "decay", "model", "data"]}, "detail": text_or_null,
                        "model_version": {"type": "integer"}}}))}},
        "ModelView": {"type": "object", "required": ["version", "name", "toml", "versions"],
            "properties": {"version": {"type": "integer"}, "name": {"type": "string"}, "toml": text_or_null,
                "versions": items(json!({"type": "object", "required": ["version", "name", "author_version", "created_at"],
                    "properties": {"version": {"type": "integer"}, "name": {"type": "string"},
                        "author_version": {"type": "integer"}, "created_at": {"type": "string", "format": "date-time"}}}))}},
        "ModelChange": {"type": "object", "required": ["dry_run", "version", "bands", "stages", "moved", "biggest_movers"],
            "properties": {"dry_run": {"type": "boolean"},
                "version": {"type": ["integer", "null"], "description": "The new version; null on a dry run."},
                "bands": before_after, "stages": before_after, "moved": count,
                "biggest_movers": items(json!({"type": "object", "required": ["id", "before", "after"],
                    "properties": {"id": {"type": "string"}, "before": {"type": "number"}, "after": {"type": "number"}}}))}},
        "WebhookCreated": {"type": "object", "required": ["id", "url", "events", "segment", "secret"],
            "properties": {"id": {"type": "integer"}, "url": {"type": "string"}, "events": items(json!({"type": "string"})),
                "segment": text_or_null, "secret": {"type": "string", "description": "Signs every body; shown once."}}},
        "WebhookList": {"type": "object", "required": ["items"],
            "properties": {"items": items(json!({"type": "object", "required": ["id", "url", "events", "created_at", "removed_at"],
                "properties": {"id": {"type": "integer"}, "url": {"type": "string"}, "events": items(json!({"type": "string"})),
                    "created_at": {"type": "string", "format": "date-time"},
                    "removed_at": {"type": ["string", "null"], "format": "date-time"}}}))}},
        "DeliveryLog": {"type": "object", "required": ["items"],
            "properties": {"items": items(json!({"type": "object", "required": ["delivery", "contact", "state", "attempts", "last_error", "body"],
                "properties": {"delivery": {"type": "integer"}, "contact": {"type": "string"},
                    "state": {"enum": ["pending", "delivered", "skipped", "dead"]}, "attempts": count,
                    "last_error": text_or_null, "body": {"type": "object"}}}))}},
        "SegmentSaved": {"type": "object", "required": ["saved", "members"],
            "properties": {"saved": {"const": true}, "members": count}},
        "SegmentList": {"type": "object", "required": ["items"],
            "properties": {"items": items(json!({"type": "object", "required": ["name"], "properties": segment_parts}))}},
        "SegmentView": {"type": "object", "required": ["name", "members"], "properties": segment_view},
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
