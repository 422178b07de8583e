//! `leadscore serve` as a real child process, spoken to over TCP: keys and
//! scopes on every route, the numbers of `leadscore score`, a catalogue of
//! bad requests (never a 500), a SIGKILL mid-stream that loses no
//! acknowledged event, and a graceful SIGTERM.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use common::{fixtures, leadscore, stderr, stdout};
use serde_json::Value;

const NOW: &str = "2026-05-01T00:00:00Z";

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(db: &Path) -> Server {
        let (child, addr) = common::spawn_serve(db, NOW);
        Server { child, addr }
    }

    /// One request; (status, body).
    fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(k) = key {
            req.push_str(&format!("Authorization: Bearer {k}\r\n"));
        }
        // A body is JSON unless a Content-Type is given ("-": none).
        let typed = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        if !body.is_empty() && !typed {
            req.push_str("Content-Type: application/json\r\n");
        }
        for (k, v) in headers {
            if *v != "-" {
                req.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        // A body the server refuses from its length (over the limit) is
        // answered before it is read, and the connection closed: the rest
        // of it cannot be sent (a broken pipe), the answer is there to read.
        let _ = s.write_all(body);
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status: u16 = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("{text}"));
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    fn json(&self, method: &str, path: &str, key: &str, body: &str) -> (u16, Value) {
        let (status, text) = self.call(
            method,
            path,
            Some(key),
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn db_cmd(db: &Path, args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(args)
        .env("LEADSCORE_DB", db)
        .env("LEADSCORE_NOW", NOW)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
}

/// A database with the spec example's model and three keys.
fn setup(dir: &Path) -> (PathBuf, [String; 3]) {
    let db = dir.join("l.db");
    let model = fixtures().join("spec-example/model.toml");
    db_cmd(&db, &["init", "--model", &model.display().to_string()]);
    let key = |scope: &str| {
        db_cmd(&db, &["keys", "create", "--scope", scope])
            .lines()
            .last()
            .unwrap()
            .to_owned()
    };
    let keys = [key("read"), key("write"), key("admin")];
    (db, keys)
}

#[test]
fn every_route_wants_a_key_of_the_right_scope() {
    let dir = tempfile::tempdir().unwrap();
    let (db, [read, write, _admin]) = setup(dir.path());
    let server = Server::start(&db);
    let routes: [(&str, &str, &str); 29] = [
        ("POST", "/v1/t", "ingest"),
        ("POST", "/v1/p", "ingest"),
        ("POST", "/v1/i", "ingest"),
        ("POST", "/v1/b", "ingest"),
        ("GET", "/v1/webhooks/1/deliveries", "admin"),
        ("GET", "/v1/contacts", "read"),
        ("GET", "/v1/segments", "read"),
        ("POST", "/v1/segments", "write"),
        ("GET", "/v1/segments/s", "read"),
        ("DELETE", "/v1/segments/s", "write"),
        ("GET", "/v1/segments/s/members", "read"),
        ("GET", "/v1/segments/s/export", "read"),
        ("GET", "/v1/webhooks", "admin"),
        ("POST", "/v1/webhooks", "admin"),
        ("DELETE", "/v1/webhooks/1", "admin"),
        ("GET", "/v1/transitions", "read"),
        ("GET", "/v1/model", "read"),
        ("PUT", "/v1/model", "admin"),
        ("POST", "/v1/track", "ingest"),
        ("POST", "/v1/page", "ingest"),
        ("POST", "/v1/identify", "ingest"),
        ("POST", "/v1/batch", "ingest"),
        ("GET", "/metrics", "read"),
        ("POST", "/v1/events", "ingest"),
        ("POST", "/v1/contacts", "write"),
        ("GET", "/v1/contacts/ana", "read"),
        ("DELETE", "/v1/contacts/ana", "write"),
        ("GET", "/v1/contacts/ana/score", "read"),
        ("GET", "/v1/leads", "read"),
    ];
    // A key that lives in web pages only sends events: 403 everywhere else.
    let ingest = db_cmd(&db, &["keys", "create", "--scope", "ingest"])
        .lines()
        .last()
        .unwrap()
        .to_owned();
    for (method, path, needs) in routes {
        let (status, body) = server.call(method, path, None, &[], b"");
        assert_eq!(status, 401, "{method} {path} without a key: {body}");
        if needs != "ingest" {
            let (status, body) = server.call(method, path, Some(&ingest), &[], b"");
            assert_eq!(status, 403, "{method} {path} with an ingest key: {body}");
        }
        let (status, _) = server.call(method, path, Some("lsk_wrong"), &[], b"");
        assert_eq!(status, 401, "{method} {path} with an unknown key");
        if needs != "read" {
            let (status, body) = server.call(method, path, Some(&read), &[], b"");
            assert_eq!(status, 403, "{method} {path} with a read key: {body}");
            let e: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(e["error"]["code"], "forbidden");
        }
        if needs == "admin" {
            let (status, body) = server.call(method, path, Some(&write), &[], b"");
            assert_eq!(status, 403, "{method} {path} with a write key: {body}");
        }
    }
    // Health tells strangers only that the database answers; a read key
    // also sees the contacts and the model version.
    let (status, body) = server.call("GET", "/healthz", None, &[], b"");
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        serde_json::json!({"status": "ok"})
    );
    let (_, health) = server.json("GET", "/healthz", &read, "");
    assert_eq!(health["status"], "ok");
    assert!(
        health["contacts"].is_u64() && health["model_version"] == 1,
        "{health}"
    );
    // A revoked key stops working (within the cache's 10 s; this one was
    // never used, so at once).
    let fresh = db_cmd(
        &db,
        &["keys", "create", "--scope", "admin", "--name", "temp"],
    );
    let fresh = fresh.lines().last().unwrap();
    db_cmd(&db, &["keys", "revoke", "temp"]);
    assert_eq!(
        server.call("GET", "/v1/leads", Some(fresh), &[], b"").0,
        401
    );
    let db_keys = db_cmd(&db, &["keys", "list"]);
    assert!(
        db_keys.contains("read") && !db_keys.contains(&write),
        "keys list never shows a key"
    );
}

#[test]
fn the_service_gives_the_numbers_of_leadscore_score() {
    let dir = tempfile::tempdir().unwrap();
    let (db, [read, write, _]) = setup(dir.path());
    let server = Server::start(&db);
    let ex = fixtures().join("spec-example");
    // Contacts as NDJSON objects, events as the import files' objects.
    let contacts = "[{\"id\": \"ana\", \"attributes\": {\"email\": \"ana@gmail.com\", \"job_title\": \"VP Sales\"}}]";
    let (status, r) = server.json("POST", "/v1/contacts", &write, contacts);
    assert_eq!((status, r["created"].as_u64()), (200, Some(1)));
    let events_csv = std::fs::read_to_string(ex.join("events.csv")).unwrap();
    let mut lines = events_csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut ndjson = String::new();
    for l in lines {
        let cells: Vec<&str> = l.split(',').collect();
        let get = |name: &str| {
            header
                .iter()
                .position(|h| *h == name)
                .map(|i| cells[i])
                .unwrap_or("")
        };
        ndjson.push_str(&format!(
            "{{\"id\": \"{}\", \"contact_id\": \"{}\", \"type\": \"{}\", \"timestamp\": \"{}\", \"properties\": {{\"url\": \"{}\"}}}}\n",
            get("id"),
            get("contact_id"),
            get("type"),
            get("timestamp"),
            get("url")
        ));
    }
    let (status, body) = server.call(
        "POST",
        "/v1/events",
        Some(&write),
        &[("Content-Type", "application/x-ndjson")],
        ndjson.as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    let r: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(r["accepted"], 5, "{r}");
    assert_eq!(
        r["rejected"], 1,
        "the repeated e4 line is a duplicate within the batch: {r}"
    );
    // Sent again: all duplicates, nothing changes.
    let (_, body) = server.call(
        "POST",
        "/v1/events",
        Some(&write),
        &[("Content-Type", "application/x-ndjson")],
        ndjson.as_bytes(),
    );
    let again: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(again["duplicates"], 5, "{again}");
    let (status, score) = server.json(
        "GET",
        &format!("/v1/contacts/ana/score?as_of={NOW}&explain=true"),
        &read,
        "",
    );
    assert_eq!(status, 200);
    let batch = leadscore([
        "score",
        "-q",
        "--model",
        &ex.join("model.toml").display().to_string(),
        "--contacts",
        &ex.join("contacts.csv").display().to_string(),
        "--events",
        &ex.join("events.csv").display().to_string(),
        "--as-of",
        NOW,
    ]);
    let expected: Value = serde_json::from_str(stdout(&batch).lines().next().unwrap()).unwrap();
    for k in ["id", "dimensions", "score", "band", "stage", "disqualified"] {
        assert_eq!(score[k], expected[k], "{k}");
    }
    assert!(score["explanation"]["rules"].as_array().unwrap().len() >= 2);
    let (_, leads) = server.json("GET", "/v1/leads?sort=-score&limit=1", &read, "");
    assert_eq!(leads["items"][0]["id"], "ana");
    let (status, contact) = server.json("GET", "/v1/contacts/ana", &read, "");
    assert_eq!(
        (status, &contact["attributes"]["job_title"]),
        (200, &Value::from("VP Sales"))
    );
    let (status, _) = server.call("DELETE", "/v1/contacts/ana", Some(&write), &[], b"");
    assert_eq!(status, 204);
    let (status, e) = server.json("GET", "/v1/contacts/ana", &read, "");
    assert_eq!(
        (status, &e["error"]["code"]),
        (404, &Value::from("unknown_contact"))
    );
    let (_, metrics) = server.call("GET", "/metrics", Some(&read), &[], b"");
    assert!(
        metrics.contains("leadscore_events_total{outcome=\"accepted\"} 5"),
        "{metrics}"
    );
    // Every group commit is timed: as many timings as commits, at least one.
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing: {metrics}"))
    };
    let commits = value("leadscore_event_commits_total");
    assert!(commits >= 1);
    assert_eq!(
        value("leadscore_event_commit_duration_seconds_count"),
        commits
    );
    assert_eq!(
        value("leadscore_event_commit_duration_seconds_bucket{le=\"+Inf\"}"),
        commits
    );
}

#[test]
fn bad_requests_get_a_named_4xx_and_never_a_500() {
    let dir = tempfile::tempdir().unwrap();
    let (db, [read, write, _]) = setup(dir.path());
    let server = Server::start(&db);
    let ev = |extra: &str| {
        format!(
            "[{{\"id\": \"e1\", \"contact_id\": \"c1\", \"type\": \"page_view\", \"timestamp\": \"2026-03-01T00:00:00Z\"{extra}}}]"
        )
    };
    let huge = "x".repeat(100_000);
    let cases: Vec<(String, &[u8], u16, &str)> = vec![
        (
            "truncated JSON".into(),
            b"[{\"id\": \"e1\"",
            400,
            "invalid_json",
        ),
        ("not JSON".into(), b"hello", 400, "invalid_json"),
        (
            "bad UTF-8".into(),
            b"[{\"id\": \"\xff\"}]",
            400,
            "invalid_utf8",
        ),
        ("empty array".into(), b"[]", 400, "empty_batch"),
    ];
    for (what, body, status, code) in cases {
        let (s, text) = server.call("POST", "/v1/events", Some(&write), &[], body);
        assert_eq!(s, status, "{what}: {text}");
        let e: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(e["error"]["code"], code, "{what}");
        assert!(
            e["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // Item-level problems: the batch is answered, each item says why; a
    // batch whose every item is rejected is a 400 (with the same items).
    let items: Vec<(String, &str)> = vec![
        (ev(", \"extra\": 1"), "body[0]"),
        (ev(", \"properties\": {\"url\": {\"nested\": 1}}"), "body[0].properties.url"),
        ("[{\"id\": {\"a\": 1}, \"contact_id\": \"c1\", \"type\": \"x\", \"timestamp\": \"2026-03-01T00:00:00Z\"}]".into(), "body[0].id"),
        (ev("").replace("2026-03-01T00:00:00Z", "yesterday"), "body[0].timestamp"),
        (ev("").replace("\"e1\"", &format!("\"{huge}\"")), "body[0].id"),
        (ev("").replace(", \"type\": \"page_view\"", ""), "body[0].type"),
        (ev("").replace("\"e1\"", "\"e\\u00001\""), "body[0].id"),
        (ev("").replace("page_view", "page\\nview"), "body[0].type"),
    ];
    for (body, field) in items {
        let (s, text) = server.call("POST", "/v1/events", Some(&write), &[], body.as_bytes());
        assert_eq!(s, 400, "{text}");
        let r: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(r["rejected"], 1, "{text}");
        assert_eq!(r["items"][0]["error"]["field"], field, "{text}");
        assert_eq!(r["error"]["code"], "all_rejected", "{text}");
        assert_eq!(r["error"]["field"], field, "{text}");
    }
    let two = format!(
        "[{}, {}]",
        &ev("")[1..ev("").len() - 1],
        &ev("")[1..ev("").len() - 1]
    );
    let (s, text) = server.call("POST", "/v1/events", Some(&write), &[], two.as_bytes());
    assert_eq!(s, 200, "a batch partly taken is a 200: {text}");
    let r: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        r["items"][1]["error"]["code"], "duplicate_in_batch",
        "{text}"
    );
    assert_eq!(r["error"], Value::Null, "{text}");
    for (route, body) in [
        ("/v1/contacts", r#"[{"id": ""}, {"attributes": {}}]"#),
        (
            "/v1/batch",
            r#"{"batch": [{"type": "alias", "userId": "u"}]}"#,
        ),
    ] {
        let (s, text) = server.call("POST", route, Some(&write), &[], body.as_bytes());
        assert_eq!(s, 400, "{route}: {text}");
        let r: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(r["error"]["code"], "all_rejected", "{text}");
        assert_eq!(r["items"][0]["status"], "rejected", "{text}");
    }
    // A body of a type the route does not take: 415 naming the types it
    // takes (after the key is checked: a stranger still gets 401).
    for (route, headers) in [
        ("/v1/events", vec![("Content-Type", "-")]),
        ("/v1/events", vec![("Content-Type", "text/plain")]),
        (
            "/v1/contacts",
            vec![("Content-Type", "application/x-www-form-urlencoded")],
        ),
        (
            "/v1/segments",
            vec![("Content-Type", "application/x-ndjson")],
        ),
    ] {
        let (s, text) = server.call("POST", route, Some(&write), &headers, b"{}");
        assert_eq!(s, 415, "{route} {headers:?}: {text}");
        let e: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(e["error"]["code"], "unsupported_media_type");
        assert_eq!(e["error"]["field"], "header.content-type");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("application/json"),
            "{text}"
        );
        let (s, _) = server.call("POST", route, None, &headers, b"{}");
        assert_eq!(s, 401, "{route} without a key");
    }
    let (s, text) = server.call(
        "PUT",
        "/v1/model?dry_run=true",
        Some(&write),
        &[("Content-Type", "application/json")],
        b"{}",
    );
    assert_eq!(s, 403, "{text}");
    // Limits: too many items, too large a body.
    let many = format!("[{}]", vec!["{}"; 10_001].join(","));
    assert_eq!(
        server
            .call("POST", "/v1/events", Some(&write), &[], many.as_bytes())
            .0,
        413
    );
    let big = vec![b' '; 33 << 20];
    let (s, text) = server.call("POST", "/v1/events", Some(&write), &[], &big);
    assert_eq!(s, 413);
    let e: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{text}"));
    assert_eq!(e["error"]["code"], "payload_too_large");
    // Header limits: past 64 KiB our own 431 with the JSON shape naming the
    // largest header; past hyper's (about 400 KB) a 431 before our code
    // runs, or ours, depending on how the bytes arrive.
    let with_header = |bytes: usize| {
        let value = "a".repeat(bytes);
        server.call("GET", "/v1/leads", Some(&read), &[("X-Big", &value)], b"")
    };
    let (s, text) = with_header(70_000);
    assert_eq!(s, 431, "{text}");
    let e: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{text}"));
    assert_eq!(e["error"]["code"], "headers_too_large");
    assert_eq!(e["error"]["field"], "header.x-big");
    assert_eq!(with_header(60_000).0, 200);
    assert_eq!(with_header(500_000).0, 431);
    let (s, text) = server.call("PATCH", "/v1/leads", Some(&read), &[], b"");
    assert_eq!(s, 405);
    let e: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{text}"));
    assert_eq!(e["error"]["code"], "method_not_allowed");
    // Queries and paths.
    for (path, field) in [
        ("/v1/contacts/x/score?as_of=tomorrow", "query.as_of"),
        ("/v1/leads?limit=0", "query.limit"),
        ("/v1/leads?sort=name", "query.sort"),
        ("/v1/leads?cursor=zz", "query.cursor"),
        (
            "/v1/leads?where=%7B%20attribute%20%3D%201%20%7D",
            "query.where",
        ),
    ] {
        let (s, text) = server.call("GET", path, Some(&read), &[], b"");
        assert_eq!(s, 400, "{path}: {text}");
        let e: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(e["error"]["field"], field, "{path}");
    }
    let (s, text) = server.call("GET", "/v1/nothing", Some(&read), &[], b"");
    assert_eq!((s, text.contains("not_found")), (404, true));
    let (s, text) = server.call("GET", "/v1/leads?limit=abc", Some(&read), &[], b"");
    assert_eq!(s, 400);
    let e: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(e["error"]["field"], "query", "{text}");
    let (s, text) = server.call("GET", "/v1/webhooks/abc/deliveries", Some(&read), &[], b"");
    assert_eq!(s, 400, "{text}");
    assert!(text.contains("invalid_path"), "{text}");
    // Still healthy.
    assert_eq!(server.call("GET", "/healthz", None, &[], b"").0, 200);
}

#[test]
fn a_killed_server_keeps_every_acknowledged_event_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (db, [_, write, _]) = setup(dir.path());
    let mut acknowledged: Vec<String> = Vec::new();
    for round in 0..3 {
        let mut server = Server::start(&db);
        for batch in 0..6 {
            let body: Vec<String> = (0..200)
                .map(|i| {
                    format!(
                        "{{\"id\": \"r{round}-b{batch}-{i}\", \"contact_id\": \"c{}\", \"type\": \"page_view\", \"timestamp\": \"2026-04-01T00:00:00Z\", \"properties\": {{\"url\": \"/pricing\"}}}}",
                        i % 37
                    )
                })
                .collect();
            let (s, text) = server.call(
                "POST",
                "/v1/events",
                Some(&write),
                &[],
                format!("[{}]", body.join(",")).as_bytes(),
            );
            assert_eq!(s, 200, "{text}");
            let r: Value = serde_json::from_str(&text).unwrap();
            for item in r["items"].as_array().unwrap() {
                if item["status"] == "accepted" {
                    acknowledged.push(item["id"].as_str().unwrap().to_owned());
                }
            }
            if batch == 3 {
                // A request in flight when the process dies: its events may
                // or may not be stored, never half, never twice.
                let addr = server.addr.clone();
                let body = format!(
                    "[{}]",
                    body.join(",")
                        .replace(&format!("r{round}-b{batch}"), &format!("r{round}-x"))
                );
                let t = std::thread::spawn(move || {
                    if let Ok(mut s) = TcpStream::connect(&addr) {
                        let _ = s.write_all(
                            format!("POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes(),
                        );
                    }
                });
                let _ = t.join();
                server.child.kill().unwrap();
                let _ = server.child.wait();
                break;
            }
        }
    }
    // Events acknowledged but not yet stored when the process died are in
    // its inbox; the next command that opens the database stores them
    // (and `check` then verifies every stored score against its events).
    assert!(db_cmd(&db, &["check"]).contains("ok"));
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mut stmt = conn.prepare("SELECT id FROM events").unwrap();
    let stored: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let set: std::collections::HashSet<&String> = stored.iter().collect();
    assert_eq!(set.len(), stored.len(), "an event stored twice");
    for id in &acknowledged {
        assert!(set.contains(id), "acknowledged event {id} lost");
    }
    assert_eq!(acknowledged.len(), 3 * 4 * 200);
}

#[cfg(unix)]
#[test]
fn sigterm_stops_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = setup(dir.path());
    let mut server = Server::start(&db);
    assert_eq!(server.call("GET", "/healthz", None, &[], b"").0, 200);
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let err = common::serve_log(&db);
    assert!(err.contains("stopped"), "{err}");
}

#[test]
fn segment_calls_feed_leadscore_and_identify_joins_the_visitor() {
    let dir = tempfile::tempdir().unwrap();
    let (db, [read, write, admin]) = setup(dir.path());
    let server = Server::start(&db);
    // Segment sends its write key as the Basic user name.
    let basic = {
        let raw = format!("{write}:");
        let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in raw.as_bytes().chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(table[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        format!("Basic {out}")
    };
    let track = r#"{"type": "track", "messageId": "m1", "anonymousId": "anon-7", "event": "page_view",
        "properties": {"url": "/pricing", "plan": {"tier": "pro"}}, "timestamp": "2026-04-30T10:00:00.000Z",
        "context": {"library": {"name": "analytics.js"}}, "integrations": {}}"#;
    let (s, body) = server.call(
        "POST",
        "/v1/track",
        None,
        &[("Authorization", &basic)],
        track.as_bytes(),
    );
    assert_eq!(s, 200, "{body}");
    let r: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(r["items"][0]["status"], "accepted", "{body}");
    // A retried call is a duplicate, not a second event; browser libraries
    // send their JSON as text/plain (no CORS preflight), which is taken.
    let (_, body) = server.call(
        "POST",
        "/v1/track",
        None,
        &[
            ("Authorization", &basic),
            ("Content-Type", "text/plain;charset=UTF-8"),
        ],
        track.as_bytes(),
    );
    assert!(body.contains("duplicate"), "{body}");
    let before: Value = serde_json::from_str(
        &server
            .call("GET", "/v1/contacts/anon-7/score", Some(&read), &[], b"")
            .1,
    )
    .unwrap();
    assert!(
        before["dimensions"]["engagement"].as_f64().unwrap() > 0.0,
        "{before}"
    );
    // identify: the visitor's history joins the contact.
    let batch = r#"{"batch": [
        {"type": "identify", "userId": "ana", "anonymousId": "anon-7", "messageId": "m2",
         "traits": {"email": "ana@gmail.com", "job_title": "VP Sales", "address": {"city": "Lisbon"}}},
        {"type": "page", "userId": "ana", "messageId": "m3", "name": "Pricing", "context": {"page": {"url": "/pricing"}},
         "timestamp": "2026-04-30T11:00:00Z"},
        {"type": "alias", "userId": "ana", "previousId": "x"},
        {"type": "identify", "userId": "bad\u0000id", "messageId": "m4"}
    ]}"#;
    let (s, body) = server.call("POST", "/v1/batch", Some(&write), &[], batch.as_bytes());
    assert_eq!(s, 200, "{body}");
    let r: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(r["items"][0]["status"], "identified_and_joined", "{body}");
    assert_eq!(r["items"][1]["status"], "accepted", "{body}");
    assert_eq!(r["items"][2]["status"], "rejected", "{body}");
    assert_eq!(r["items"][2]["error"]["field"], "body[2].type", "{body}");
    assert_eq!(r["items"][3]["error"]["field"], "body[3].userId", "{body}");
    let (s, _) = server.call("GET", "/v1/contacts/anon-7", Some(&read), &[], b"");
    assert_eq!(s, 404, "the anonymous visitor is now ana");
    let (_, ana) = server.json("GET", "/v1/contacts/ana", &read, "");
    assert_eq!(ana["attributes"]["address.city"], "Lisbon");
    assert_eq!(ana["score"]["dimensions"]["fit"], 20.0, "{ana}");
    let engagement = ana["score"]["dimensions"]["engagement"].as_f64().unwrap();
    assert!(
        engagement > before["dimensions"]["engagement"].as_f64().unwrap(),
        "two pricing views now: {ana}"
    );
    // The feed of changes, with a cursor that continues it.
    let (_, feed) = server.json("GET", "/v1/transitions?limit=1", &read, "");
    assert_eq!(feed["items"].as_array().unwrap().len(), 1);
    let next = feed["next_cursor"].as_str().unwrap().to_owned();
    let (_, rest) = server.json("GET", &format!("/v1/transitions?after={next}"), &read, "");
    assert!(
        rest["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["contact"] == "ana"),
        "{rest}"
    );
    // A known contact is never merged away by a tracking call: an
    // identify naming ana (identified above), or a contact made by the
    // events API, as its anonymousId joins nothing.
    let made = r#"{"id": "k-1", "contact_id": "known-1", "type": "page_view", "timestamp": "2026-04-01T00:00:00Z", "properties": {"url": "/pricing"}}"#;
    let (s, _) = server.call("POST", "/v1/events", Some(&write), &[], made.as_bytes());
    assert_eq!(s, 200);
    for victim in ["ana", "known-1"] {
        let (_, before) = server.json("GET", &format!("/v1/contacts/{victim}"), &read, "");
        let attack = format!(
            r#"{{"type": "identify", "userId": "mallory", "anonymousId": "{victim}", "messageId": "x-{victim}"}}"#
        );
        let (s, body) = server.call("POST", "/v1/identify", Some(&write), &[], attack.as_bytes());
        assert_eq!(s, 200, "{body}");
        let r: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(r["items"][0]["status"], "identified", "{body}");
        let (_, after) = server.json("GET", &format!("/v1/contacts/{victim}"), &read, "");
        assert_eq!(before, after, "{victim} is untouched");
    }
    // The model: read it; a dry run changes nothing; bad TOML is named.
    let (_, model) = server.json("GET", "/v1/model", &read, "");
    assert_eq!(model["version"], 1);
    let text = model["toml"]
        .as_str()
        .unwrap()
        .replace("points = 30", "points = 60");
    let (s, body) = server.call(
        "PUT",
        "/v1/model?dry_run=true",
        Some(&admin),
        &[("Content-Type", "application/toml")],
        text.as_bytes(),
    );
    assert_eq!(s, 200, "{body}");
    let change: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(change["version"], Value::Null);
    assert!(
        change["moved"].is_u64() && change["bands"].is_object(),
        "{change}"
    );
    let (s, body) = server.call(
        "PUT",
        "/v1/model",
        Some(&admin),
        &[("Content-Type", "text/plain; charset=utf-8")],
        b"[[dimension]]\nid = 3",
    );
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("invalid_model"), "{body}");
    let (_, model) = server.json("GET", "/v1/model", &read, "");
    assert_eq!(model["version"], 1);
}

/// A webhook receiver: records each request's signature and body; answers
/// 500 to the first `fail_first` requests, 200 afterwards.
struct Receiver {
    addr: String,
    got: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

impl Receiver {
    fn start(fail_first: usize) -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = std::sync::Arc::clone(&got);
        std::thread::spawn(move || {
            let mut served = 0;
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let (mut length, mut signature) = (0usize, String::new());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if lower.starts_with("leadscore-signature:") {
                        signature = line["leadscore-signature:".len()..].trim().to_owned();
                    }
                }
                let mut body = vec![0u8; length];
                let _ = reader.read_exact(&mut body);
                served += 1;
                let mut stream = stream;
                if served <= fail_first {
                    let _ = stream.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                } else {
                    seen.lock()
                        .unwrap()
                        .push((signature, String::from_utf8_lossy(&body).into_owned()));
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
            }
        });
        Receiver { addr, got }
    }

    fn wait_for(&self, n: usize) -> Vec<(String, String)> {
        for _ in 0..300 {
            if self.got.lock().unwrap().len() >= n {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.got.lock().unwrap().clone()
    }
}

#[test]
fn webhooks_are_signed_ordered_retried_and_survive_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let (db, [read, write, admin]) = setup(dir.path());
    let receiver = Receiver::start(1);
    let mut server = Server::start(&db);
    let (s, hook) = server.json(
        "POST",
        "/v1/webhooks",
        &admin,
        &format!(
            "{{\"url\": \"http://{}/hook\", \"events\": [\"band\", \"stage\"]}}",
            receiver.addr
        ),
    );
    assert_eq!(s, 201, "{hook}");
    let secret = hook["secret"].as_str().unwrap().to_owned();
    assert_eq!(server.json("POST", "/v1/webhooks", &write, "{}").0, 403);
    let (s, e) = server.json("POST", "/v1/webhooks", &admin, "{\"url\": \"ftp://x\"}");
    assert_eq!((s, &e["error"]["field"]), (400, &Value::from("body.url")));
    // Three contacts; ana then gets warm through events (band cold -> warm).
    let contacts = r#"[{"id": "ana", "attributes": {"email": "ana@gmail.com", "job_title": "VP Sales"}},
        {"id": "bob"}, {"id": "cy"}]"#;
    assert_eq!(server.json("POST", "/v1/contacts", &write, contacts).0, 200);
    let events: Vec<String> = (0..3)
        .map(|i| format!("{{\"id\": \"p{i}\", \"contact_id\": \"ana\", \"type\": \"page_view\", \"timestamp\": \"2026-04-30T0{i}:00:00Z\", \"properties\": {{\"url\": \"/pricing\"}}}}"))
        .collect();
    assert_eq!(
        server
            .json(
                "POST",
                "/v1/events",
                &write,
                &format!("[{}]", events.join(","))
            )
            .0,
        200
    );
    let (_, feed) = server.json("GET", "/v1/transitions?limit=1000", &read, "");
    let expected = feed["items"].as_array().unwrap().len();
    assert!(expected >= 4, "{feed}");
    let got = receiver.wait_for(expected);
    assert_eq!(
        got.len(),
        expected,
        "every transition delivered (one after a retry)"
    );
    let mut last_per_contact: std::collections::HashMap<String, i64> =
        std::collections::HashMap::new();
    for (signature, body) in &got {
        let t: i64 = signature
            .split(',')
            .next()
            .unwrap()
            .trim_start_matches("t=")
            .parse()
            .unwrap();
        assert_eq!(
            signature,
            &leadscore_server::webhooks::sign(&secret, t, body),
            "signature"
        );
        let v: Value = serde_json::from_str(body).unwrap();
        let contact = v["contact"].as_str().unwrap().to_owned();
        let seq = v["transition"].as_i64().unwrap();
        let last = last_per_contact.insert(contact, seq);
        assert!(last.is_none_or(|l| l < seq), "in order per contact");
    }
    let id = hook["id"].as_i64().unwrap();
    // The receiver has every body; the sender records the last delivery
    // once its answer is back, a moment later.
    let states = deliveries_until(&server, &admin, id, |s| {
        s.iter().all(|state| state == "delivered")
    });
    assert!(
        states.iter().all(|state| state == "delivered"),
        "{states:?}"
    );
    let (_, log) = server.json("GET", &format!("/v1/webhooks/{id}/deliveries"), &admin, "");
    let log = log["items"].as_array().unwrap();
    assert!(
        log.iter().any(|d| d["attempts"] == 2),
        "the first try failed and was retried"
    );
    // Killed with deliveries owed: the next run makes them.
    let receiver2 = Receiver::start(0);
    let (s, _) = server.json(
        "POST",
        "/v1/webhooks",
        &admin,
        &format!(
            "{{\"url\": \"http://{}/hook\", \"events\": [\"band\"]}}",
            receiver2.addr
        ),
    );
    assert_eq!(s, 201);
    let more = r#"[{"id": "dee"}, {"id": "eve"}]"#;
    assert_eq!(server.json("POST", "/v1/contacts", &write, more).0, 200);
    server.child.kill().unwrap();
    let _ = server.child.wait();
    let server = Server::start(&db);
    let got2 = receiver2.wait_for(2);
    let contacts2: Vec<String> = got2
        .iter()
        .map(|(_, b)| {
            serde_json::from_str::<Value>(b).unwrap()["contact"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        contacts2.contains(&"dee".to_owned()) && contacts2.contains(&"eve".to_owned()),
        "{contacts2:?}"
    );
    drop(server);
}

#[test]
fn webhooks_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = setup(dir.path());
    let out = db_cmd(
        &db,
        &[
            "webhooks",
            "add",
            "--url",
            "https://crm.example/hook",
            "--events",
            "band,disqualified",
        ],
    );
    assert!(out.lines().last().unwrap().starts_with("whsec_"), "{out}");
    let list = db_cmd(&db, &["webhooks", "list"]);
    assert!(
        list.contains("https://crm.example/hook") && list.contains("band,disqualified"),
        "{list}"
    );
    assert!(!list.contains("whsec_"), "the secret is never shown again");
    let o = Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(["webhooks", "add", "--url", "https://x", "--events", "score"])
        .env("LEADSCORE_DB", &db)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("\"score\" is not band"),
        "{}",
        stderr(&o)
    );
    db_cmd(&db, &["webhooks", "remove", "1"]);
    assert!(
        db_cmd(&db, &["webhooks", "list"])
            .lines()
            .nth(1)
            .unwrap()
            .trim_end()
            .ends_with('Z')
    );
}

#[test]
fn segments_are_saved_filters_always_current() {
    let dir = tempfile::tempdir().unwrap();
    let (db, [read, write, _]) = setup(dir.path());
    let server = Server::start(&db);
    let contacts = r#"[{"id": "ana", "attributes": {"job_title": "VP Sales", "email": "ana@x.com"}},
        {"id": "bob", "attributes": {"job_title": "Intern"}}, {"id": "cy", "attributes": {"job_title": "Director"}}]"#;
    assert_eq!(server.json("POST", "/v1/contacts", &write, contacts).0, 200);
    let ev = |id: &str, who: &str, day: &str| {
        format!(
            "{{\"id\": \"{id}\", \"contact_id\": \"{who}\", \"type\": \"page_view\", \"timestamp\": \"2026-{day}T00:00:00Z\", \"properties\": {{\"url\": \"/pricing\"}}}}"
        )
    };
    let events = format!(
        "[{}, {}]",
        ev("e1", "ana", "04-25"),
        ev("e2", "cy", "01-10")
    );
    assert_eq!(server.json("POST", "/v1/events", &write, &events).0, 200);
    let seniors = r#"{"name": "seniors-on-pricing", "where": "{ attribute = \"job_title\", matches = \"(?i)vp|director\" }",
        "had_event": {"type": "page_view", "within_days": 30}}"#;
    let (s, r) = server.json("POST", "/v1/segments", &write, seniors);
    assert_eq!(s, 201, "{r}");
    assert_eq!(r["members"], 1, "cy's visit is too old: {r}");
    let (_, m) = server.json("GET", "/v1/segments/seniors-on-pricing/members", &read, "");
    assert_eq!(m["items"][0]["id"], "ana");
    // Always current: a new visit by cy puts cy in.
    assert_eq!(
        server
            .json(
                "POST",
                "/v1/events",
                &write,
                &format!("[{}]", ev("e3", "cy", "04-28"))
            )
            .0,
        200
    );
    let (_, g) = server.json("GET", "/v1/segments/seniors-on-pricing", &read, "");
    assert_eq!(g["members"], 2, "{g}");
    let (s, csv) = server.call(
        "GET",
        "/v1/segments/seniors-on-pricing/export",
        Some(&read),
        &[],
        b"",
    );
    assert_eq!(s, 200);
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.lines().next().unwrap().starts_with("id,"), "{csv}");
    let (_, leads) = server.json(
        "GET",
        "/v1/leads?segment=seniors-on-pricing&limit=1",
        &read,
        "",
    );
    assert_eq!(leads["total"], 2, "{leads}");
    let (_, none) = server.json("GET", "/v1/leads?segment=seniors-on-pricing&where=%7B%20attribute%20%3D%20%22email%22%2C%20exists%20%3D%20false%20%7D", &read, "");
    assert_eq!(none["total"], 1, "the query's condition holds too: {none}");
    // Mistakes are named.
    for (body, field) in [
        (r#"{"name": "x", "band": "scorching"}"#, "body.band"),
        (
            r#"{"name": "x", "where": "{ attribute = 3 }"}"#,
            "body.where",
        ),
        (
            r#"{"name": "no spaces allowed", "band": "hot"}"#,
            "body.name",
        ),
        (
            r#"{"name": "x", "had_event": {"type": "page_view", "within_days": -1}}"#,
            "body.had_event",
        ),
        (r#"{"name": "x", "colour": "red"}"#, "body"),
    ] {
        let (s, e) = server.json("POST", "/v1/segments", &write, body);
        assert_eq!(s, 400, "{body}: {e}");
        assert_eq!(e["error"]["field"], field, "{body}: {e}");
    }
    assert_eq!(server.json("POST", "/v1/segments", &read, seniors).0, 403);
    let (s, _) = server.call(
        "DELETE",
        "/v1/segments/seniors-on-pricing",
        Some(&write),
        &[],
        b"",
    );
    assert_eq!(s, 204);
    assert_eq!(
        server
            .json("GET", "/v1/segments/seniors-on-pricing", &read, "")
            .0,
        404
    );
}

#[test]
fn the_openapi_document_lists_every_route_with_its_scope() {
    let dir = tempfile::tempdir().unwrap();
    let (db, [read, write, _]) = setup(dir.path());
    let server = Server::start(&db);
    let (s, text) = server.call("GET", "/v1/openapi.json", None, &[], b"");
    assert_eq!(s, 200);
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let concrete = path.replace("{id}", "1").replace("{name}", "s");
            let m = method.to_uppercase();
            let (status, body) = server.call(&m, &concrete, None, &[], b"");
            match op["x-leadscore-scope"].as_str() {
                None => assert_eq!(status, 200, "{m} {path} is open: {body}"),
                Some(scope) => {
                    assert_eq!(status, 401, "{m} {path} wants a key: {body}");
                    let smaller = if scope == "admin" {
                        Some(&write)
                    } else if scope == "write" || scope == "ingest" {
                        Some(&read)
                    } else {
                        None
                    };
                    if let Some(k) = smaller {
                        assert_eq!(
                            server.call(&m, &concrete, Some(k), &[], b"").0,
                            403,
                            "{m} {path} wants {scope}"
                        );
                    }
                }
            }
        }
    }
    assert!(operations >= 27, "{operations}");
    // A route that is not in the document does not exist.
    assert_eq!(
        server
            .call("GET", "/v1/everything", Some(&read), &[], b"")
            .0,
        404
    );
}

#[test]
fn a_webhook_with_a_segment_hears_only_its_members() {
    let dir = tempfile::tempdir().unwrap();
    let (db, [_, write, admin]) = setup(dir.path());
    let receiver = Receiver::start(0);
    let server = Server::start(&db);
    let segment = r#"{"name": "vps", "where": "{ attribute = \"job_title\", matches = \"(?i)\\\\bvp\\\\b\" }"}"#;
    let (s, r) = server.json("POST", "/v1/segments", &write, segment);
    assert_eq!(s, 201, "{r}");
    let (s, e) = server.json(
        "POST",
        "/v1/webhooks",
        &admin,
        r#"{"url": "http://127.0.0.1:9/x", "segment": "nope"}"#,
    );
    assert_eq!(
        (s, &e["error"]["field"]),
        (400, &Value::from("body.segment"))
    );
    let hook = format!(
        "{{\"url\": \"http://{}/hook\", \"events\": [\"band\"], \"segment\": \"vps\"}}",
        receiver.addr
    );
    let (s, h) = server.json("POST", "/v1/webhooks", &admin, &hook);
    assert_eq!(s, 201, "{h}");
    let contacts = r#"[{"id": "vip", "attributes": {"job_title": "VP Sales"}}, {"id": "nobody", "attributes": {"job_title": "Intern"}}]"#;
    assert_eq!(server.json("POST", "/v1/contacts", &write, contacts).0, 200);
    let got = receiver.wait_for(1);
    std::thread::sleep(Duration::from_millis(600));
    let got2 = receiver.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got2.len(), 1, "nobody is not in the segment: {got2:?}");
    assert!(got2[0].1.contains("\"contact\":\"vip\""), "{got2:?}");
    let id = h["id"].as_i64().unwrap();
    let (_, log) = server.json("GET", &format!("/v1/webhooks/{id}/deliveries"), &admin, "");
    let states: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["state"].as_str().unwrap())
        .collect();
    assert!(
        states.contains(&"skipped") && states.contains(&"delivered"),
        "{states:?}"
    );
}

/// Polls `GET /v1/webhooks/{id}/deliveries` until `done` holds for its
/// deliveries' states (up to 15 s); returns the last states seen.
fn deliveries_until(
    server: &Server,
    admin: &str,
    id: i64,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let mut states = Vec::new();
    for _ in 0..300 {
        let (_, log) = server.json("GET", &format!("/v1/webhooks/{id}/deliveries"), admin, "");
        states = log["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["state"].as_str().unwrap().to_owned())
            .collect();
        if done(&states) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    states
}

#[test]
fn settled_deliveries_leave_the_log_after_its_retention() {
    let dir = tempfile::tempdir().unwrap();
    let (db, [_, write, admin]) = setup(dir.path());
    let receiver = Receiver::start(0);
    let server = Server::start(&db);
    let hook = format!(
        "{{\"url\": \"http://{}/hook\", \"events\": [\"band\"]}}",
        receiver.addr
    );
    let (s, h) = server.json("POST", "/v1/webhooks", &admin, &hook);
    assert_eq!(s, 201, "{h}");
    let id = h["id"].as_i64().unwrap();
    let contacts = r#"[{"id": "vip", "attributes": {"job_title": "VP Sales"}}, {"id": "nobody", "attributes": {"job_title": "Intern"}}]"#;
    assert_eq!(server.json("POST", "/v1/contacts", &write, contacts).0, 200);
    let both = |s: &[String]| s.len() == 2 && s.iter().all(|s| s == "delivered");
    let states = deliveries_until(&server, &admin, id, both);
    assert!(both(&states), "{states:?}");
    drop(server);
    // One delivery settled 40 days ago (the default retention is 30), one
    // dead delivery as old, and one owed.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let long_ago = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 40 * 86_400)
        * 1_000_000_000;
    conn.execute(
        "UPDATE outbox SET delivered_at = ?1 WHERE seq = (SELECT min(seq) FROM outbox)",
        [long_ago],
    )
    .unwrap();
    conn.execute_batch(
        "INSERT INTO outbox(webhook, contact, body, state, delivered_at) VALUES (1, 'x', '{}', 'dead', 1);
         INSERT INTO outbox(webhook, contact, body, next_at) VALUES (1, 'y', '{}', 9000000000000000000);",
    )
    .unwrap();
    drop(conn);
    // The first tick after a start prunes.
    let server = Server::start(&db);
    let pruned = |s: &[String]| s.len() == 3;
    let states = deliveries_until(&server, &admin, id, pruned);
    assert_eq!(states, ["pending", "dead", "delivered"]);
}

#[test]
fn a_model_set_from_the_command_line_is_used_by_the_running_service() {
    let dir = tempfile::tempdir().unwrap();
    let (db, [read, write, _]) = setup(dir.path());
    let server = Server::start(&db);
    let contacts = r#"[{"id": "vip", "attributes": {"job_title": "VP Sales"}}]"#;
    assert_eq!(server.json("POST", "/v1/contacts", &write, contacts).0, 200);
    let (_, before) = server.json("GET", "/v1/contacts/vip/score", &read, "");
    // The same model with every rule's points doubled, set by the CLI
    // while the service runs.
    let text = std::fs::read_to_string(fixtures().join("spec-example/model.toml")).unwrap();
    let doubled: String = text
        .lines()
        .map(|l| match l.strip_prefix("points = ") {
            Some(p) => format!("points = {}\n", p.trim().parse::<f64>().unwrap() * 2.0),
            None => format!("{l}\n"),
        })
        .collect();
    let path = dir.path().join("doubled.toml");
    std::fs::write(&path, doubled).unwrap();
    db_cmd(&db, &["model", "set", &path.display().to_string()]);
    let (_, health) = server.json("GET", "/healthz", &read, "");
    assert_eq!(health["model_version"], 2, "{health}");
    let (_, after) = server.json("GET", "/v1/contacts/vip/score", &read, "");
    let cli = db_cmd(&db, &["scores", "--format", "json"]);
    let cli: Value = serde_json::from_str(cli.lines().next().unwrap()).unwrap();
    assert_eq!(after, cli);
    assert_ne!(
        after["dimensions"], before["dimensions"],
        "{before} {after}"
    );
}

/// Events are acknowledged from the inbox and stored behind: a read right
/// after the answer still sees them, and a second service on the same
/// database is refused (one owner of the inbox).
#[test]
fn reads_see_acknowledged_events_at_once_and_one_service_owns_the_inbox() {
    let dir = tempfile::tempdir().unwrap();
    let (db, [read, write, _]) = setup(dir.path());
    let server = Server::start(&db);
    let second = Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("LEADSCORE_DB", &db)
        .env("LEADSCORE_NOW", NOW)
        .output()
        .unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("inbox"), "{err}");
    for i in 0..30 {
        // Each event creates its contact: before it is stored, the contact
        // does not exist (404).
        let body = format!(
            r#"{{"id": "rw-{i}", "contact_id": "new-{i}", "type": "page_view", "timestamp": "2026-04-01T00:00:00Z", "properties": {{"url": "/pricing"}}}}"#
        );
        let (s, r) = server.json("POST", "/v1/events", &write, &format!("[{body}]"));
        assert_eq!(
            (s, &r["items"][0]["status"]),
            (200, &Value::from("accepted"))
        );
        let (s, score) = server.json("GET", &format!("/v1/contacts/new-{i}/score"), &read, "");
        assert_eq!(s, 200, "{score}");
        let (s, again) = server.json("POST", "/v1/events", &write, &format!("[{body}]"));
        assert_eq!(
            (s, &again["items"][0]["status"]),
            (200, &Value::from("duplicate"))
        );
    }
    let (s, leads) = server.json("GET", "/v1/leads?limit=100", &read, "");
    assert_eq!(s, 200);
    let ids: Vec<&str> = leads["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["id"].as_str())
        .collect();
    for i in 0..30 {
        assert!(ids.contains(&format!("new-{i}").as_str()), "{leads}");
    }
}

/// Every request is one log line (method, route, status, latency, request
/// id), in JSON with `--log-format json`; the id comes back in
/// `x-request-id`; no key or cookie is ever in the log.
#[test]
fn each_request_is_one_log_line_without_keys_or_cookies() {
    let dir = tempfile::tempdir().unwrap();
    let (db, [read, write, _]) = setup(dir.path());
    let (child, addr) = common::spawn_serve_with(&db, NOW, &["--log-format", "json"]);
    let server = Server { child, addr };
    let mut s = TcpStream::connect(&server.addr).unwrap();
    write!(
        s,
        "GET /v1/contacts/ana/score?as_of=2026-04-01T00:00:00Z HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {read}\r\nCookie: leadscore_session=sekrit-cookie\r\nx-request-id: trace-42\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("x-request-id: trace-42"),
        "{answer}"
    );
    let body = r#"{"id": "log-1", "contact_id": "ana", "type": "page_view", "timestamp": "2026-04-01T00:00:00Z"}"#;
    let (status, _) = server.call("POST", "/v1/events", Some(&write), &[], body.as_bytes());
    assert_eq!(status, 200);
    let (status, _) = server.call("GET", "/v1/leads", Some("lsk_not_a_key"), &[], b"");
    assert_eq!(status, 401);
    // The lines are written as the answers go out.
    std::thread::sleep(Duration::from_millis(300));
    let log = common::serve_log(&db);
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "answered")
        .collect();
    assert_eq!(lines.len(), 3, "{log}");
    let first = &lines[0];
    assert_eq!(first["fields"]["method"], "GET");
    assert_eq!(first["fields"]["route"], "/v1/contacts/{id}/score");
    assert_eq!(first["fields"]["status"], 404);
    assert!(first["fields"]["latency_ms"].as_f64().is_some(), "{first}");
    assert_eq!(first["span"]["id"], "trace-42", "{first}");
    assert_eq!(lines[1]["fields"]["route"], "/v1/events");
    assert_eq!(lines[2]["fields"]["status"], 401);
    let made = lines[1]["span"]["id"].as_str().unwrap();
    assert_eq!(made.len(), 16, "an id is made when none is given");
    for secret in [
        read.as_str(),
        write.as_str(),
        "lsk_not_a_key",
        "sekrit-cookie",
        "as_of=",
    ] {
        assert!(!log.contains(secret), "{secret} in the log: {log}");
    }
}
