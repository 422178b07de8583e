//! The OpenAPI document tells the truth: a real server (in this process,
//! on a loopback port) is called on every route, and each answer's status
//! is one the document lists and each JSON body validates against the
//! schema the document gives for it.

mod common;

use common::MODEL;

use std::collections::BTreeSet;

use leadscore_server::openapi::{ROUTES, document};
use serde_json::{Value, json};

/// The document's schema for an answer of `method path` with `status`
/// (`None`: the answer has no JSON body there).
fn reply_schema(doc: &Value, method: &str, path: &str, status: u16) -> Option<Value> {
    let response = &doc["paths"][path][method]["responses"][status.to_string()];
    assert!(
        response.is_object(),
        "{method} {path} answered {status}, which the document does not list"
    );
    let schema = response["content"]["application/json"]["schema"].clone();
    (!schema.is_null()).then(|| json!({"allOf": [schema], "components": doc["components"]}))
}

/// Which documented path template `path` (query removed) falls under.
fn template(path: &str) -> &'static str {
    let path = path.split('?').next().unwrap_or(path);
    let parts: Vec<&str> = path.split('/').collect();
    ROUTES
        .iter()
        .map(|r| r.path)
        .find(|t| {
            let tp: Vec<&str> = t.split('/').collect();
            tp.len() == parts.len()
                && tp
                    .iter()
                    .zip(&parts)
                    .all(|(a, b)| a.starts_with('{') || a == b)
        })
        .unwrap_or_else(|| panic!("{path} is under no documented route"))
}

struct Tour {
    client: reqwest::Client,
    base: String,
    doc: Value,
    visited: BTreeSet<(String, String)>,
}

impl Tour {
    /// Calls `method path` with `key` and `body`, checks the answer against
    /// the document, and returns its status and JSON body (`Null` if none).
    async fn call(
        &mut self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<(&str, String)>,
    ) -> (u16, Value) {
        let mut request = self.client.request(
            method.to_uppercase().parse().expect("method"),
            format!("{}{path}", self.base),
        );
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        if let Some((content_type, text)) = body {
            request = request.header("content-type", content_type).body(text);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        let t = template(path);
        self.visited.insert((method.to_owned(), t.to_owned()));
        let value = match reply_schema(&self.doc, method, t, status) {
            Some(schema) => {
                let value: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"));
                let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
                let errors: Vec<String> = validator
                    .iter_errors(&value)
                    .map(|e| format!("{e} at {}", e.instance_path()))
                    .collect();
                assert!(
                    errors.is_empty(),
                    "{method} {path} ({status}) does not match its documented schema: {errors:?}\n{value}"
                );
                value
            }
            None => Value::Null,
        };
        (status, value)
    }
}

#[test]
fn every_answer_matches_the_document() {
    let common::Fixture {
        dir: _dir,
        state,
        admin,
        read,
    } = common::fixture();
    common::runtime().block_on(async move {
        let server = common::start(state).await;
        let mut tour = Tour {
            client: reqwest::Client::new(),
            base: server.base.clone(),
            doc: document(),
            visited: BTreeSet::new(),
        };
        let (a, r) = (Some(admin.as_str()), Some(read.as_str()));
        let json_body = |v: Value| Some(("application/json", v.to_string()));

        assert_eq!(tour.call("get", "/healthz", None, None).await.0, 200);
        assert_eq!(tour.call("get", "/metrics", r, None).await.0, 200);
        assert_eq!(tour.call("get", "/v1/openapi.json", None, None).await.0, 200);
        let contacts = json!([
            {"id": "c1", "attributes": {"job_title": "VP Sales", "company_size": 800, "industry": "Software"}},
            {"id": "c2", "attributes": {"job_title": "Student"}},
            {"id": ""}
        ]);
        let (s, v) = tour.call("post", "/v1/contacts", a, json_body(contacts)).await;
        assert_eq!((s, &v["rejected"]), (200, &json!(1)), "{v}");
        let events = json!([
            {"id": "e1", "contact_id": "c1", "type": "page_view", "timestamp": "2026-06-29T10:00:00Z", "properties": {"url": "/pricing"}},
            {"id": "e2", "contact_id": "c1", "type": "demo_request", "timestamp": "2026-06-29T11:00:00Z"},
            {"id": "e1", "contact_id": "c1", "type": "page_view", "timestamp": "2026-06-29T10:00:00Z"},
            {"id": "e3", "contact_id": "c1", "type": "page_view", "timestamp": "yesterday"}
        ]);
        let (s, v) = tour.call("post", "/v1/events", a, json_body(events)).await;
        assert_eq!((s, &v["accepted"]), (200, &json!(2)), "{v}");
        let (s, v) = tour.call("post", "/v1/events", a, json_body(json!([{"id": "e1", "contact_id": "c1", "type": "page_view", "timestamp": "2026-06-29T10:00:00Z"}]))).await;
        assert_eq!((s, &v["duplicates"]), (200, &json!(1)), "{v}");
        tour.call("get", "/v1/contacts?sort=-score&limit=1", r, None).await;
        let (s, v) = tour.call("get", "/v1/contacts/c1", r, None).await;
        assert_eq!((s, &v["id"]), (200, &json!("c1")), "{v}");
        let (_, v) = tour
            .call("get", "/v1/contacts/c1/score?explain=true&as_of=2026-06-30T00:00:00Z", r, None)
            .await;
        assert!(v["explanation"].is_object(), "{v}");
        tour.call("get", "/v1/leads?band=hot&limit=10", r, None).await;
        let (_, v) = tour.call("get", "/v1/transitions?limit=5", r, None).await;
        assert!(!v["items"].as_array().expect("items").is_empty(), "{v}");
        tour.call("get", "/v1/model", r, None).await;
        let (s, v) = tour
            .call("put", "/v1/model?dry_run=true", a, Some(("application/toml", MODEL.replace("points = 15", "points = 16"))))
            .await;
        assert_eq!((s, &v["version"]), (200, &Value::Null), "{v}");
        let track = json!({"type": "track", "messageId": "m1", "userId": "c1", "event": "webinar_attended", "timestamp": "2026-06-29T12:00:00Z"});
        tour.call("post", "/v1/track", a, json_body(track)).await;
        let page = json!({"type": "page", "messageId": "m2", "anonymousId": "anon-1", "name": "Pricing", "properties": {"url": "/pricing"}, "timestamp": "2026-06-29T12:00:00Z"});
        tour.call("post", "/v1/page", a, json_body(page)).await;
        let identify = json!({"type": "identify", "userId": "c3", "anonymousId": "anon-1", "traits": {"job_title": "Director"}});
        let (_, v) = tour.call("post", "/v1/identify", a, json_body(identify)).await;
        assert_eq!(v["items"][0]["status"], "identified_and_joined", "{v}");
        let batch = json!({"batch": [{"type": "track", "messageId": "m3", "userId": "c3", "event": "email_click", "timestamp": "2026-06-29T13:00:00Z"}, {"type": "track"}]});
        let (_, v) = tour.call("post", "/v1/batch", a, json_body(batch)).await;
        assert_eq!(v["rejected"], 1, "{v}");
        let (s, hook) = tour
            .call("post", "/v1/webhooks", a, json_body(json!({"url": "http://127.0.0.1:9/hook", "events": ["band"]})))
            .await;
        assert_eq!(s, 201, "{hook}");
        let id = hook["id"].as_i64().expect("an id");
        tour.call("get", "/v1/webhooks", a, None).await;
        tour.call("get", &format!("/v1/webhooks/{id}/deliveries"), a, None).await;
        let (s, v) = tour
            .call("post", "/v1/segments", a, json_body(json!({"name": "engaged", "had_event": {"type": "page_view", "within_days": 30}})))
            .await;
        // c1 and c3 (who inherited the anonymous visitor's page view).
        assert_eq!((s, &v["members"]), (201, &json!(2)), "{v}");
        tour.call("get", "/v1/segments", r, None).await;
        tour.call("get", "/v1/segments/engaged", r, None).await;
        tour.call("get", "/v1/segments/engaged/members?limit=5", r, None).await;
        assert_eq!(tour.call("get", "/v1/segments/engaged/export", r, None).await.0, 200);
        assert_eq!(tour.call("delete", "/v1/segments/engaged", a, None).await.0, 204);
        assert_eq!(tour.call("delete", &format!("/v1/webhooks/{id}"), a, None).await.0, 204);
        assert_eq!(tour.call("delete", "/v1/contacts/c2", a, None).await.0, 204);
        // The short paths Segment's analytics.js sends to.
        for (path, call) in [
            ("/v1/t", json!({"type": "track", "messageId": "s1", "userId": "c1", "event": "email_click", "timestamp": "2026-06-29T14:00:00Z"})),
            ("/v1/p", json!({"type": "page", "messageId": "s2", "anonymousId": "anon-2", "properties": {"url": "/"}, "timestamp": "2026-06-29T14:00:00Z"})),
            ("/v1/i", json!({"type": "identify", "userId": "c1", "traits": {"country": "US"}})),
            ("/v1/b", json!({"batch": [{"type": "track", "messageId": "s3", "userId": "c1", "event": "email_click", "timestamp": "2026-06-29T15:00:00Z"}]})),
        ] {
            let (s, v) = tour.call("post", path, a, json_body(call)).await;
            assert_eq!((s, &v["rejected"]), (200, &json!(0)), "{path}: {v}");
        }
        // Failures match the documented error shape too.
        assert_eq!(tour.call("get", "/v1/contacts/nobody", r, None).await.0, 404);
        assert_eq!(tour.call("get", "/v1/leads", None, None).await.0, 401);
        assert_eq!(tour.call("post", "/v1/events", r, json_body(json!([]))).await.0, 403);
        assert_eq!(tour.call("get", "/v1/leads?limit=minus", r, None).await.0, 400);

        let documented: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|r| (r.method.to_owned(), r.path.to_owned()))
            .collect();
        let missed: Vec<_> = documented.difference(&tour.visited).collect();
        assert!(missed.is_empty(), "routes the tour did not call: {missed:?}");
        server.stop().await;
    });
}

/// The check above can fail: an answer that breaks its schema is caught.
#[test]
fn a_wrong_answer_is_caught() {
    let doc = document();
    let schema = reply_schema(&doc, "get", "/v1/contacts/{id}/score", 200).expect("a schema");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let good = json!({"id": "c1", "dimensions": {"fit": 10.0}, "score": 42.0, "band": "warm", "stage": null, "disqualified": false});
    assert!(validator.is_valid(&good));
    let mut renamed = good.clone();
    renamed["band_name"] = renamed["band"].take();
    renamed.as_object_mut().expect("object").remove("band");
    assert!(!validator.is_valid(&renamed));
    assert!(!validator.is_valid(&json!({"id": "c1", "dimensions": {}, "score": "42", "band": null, "stage": null, "disqualified": false})));
}
