//! The tracking libraries people already run, pointed at `leadscore serve`
//! with their defaults: Segment's `segment-analytics-python` (also with
//! `gzip = True`) and RudderStack's `rudder-sdk-python` (which gzips its
//! batches by default). Each sends
//! identify, track and page calls (a retried `messageId`, an anonymous
//! visitor identified later, `fixtures/sdk/send.py`); every contact's
//! score over the API then equals `leadscore score` over the same events.
//!
//! The Python packages must be installed: `./test.sh` makes a virtual
//! environment with them and names its python in `LEADSCORE_PYTHON`.
//! Without them this test fails, naming what is missing.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const NOW: &str = "2026-06-30T00:00:00Z";

fn get(addr: &str, path: &str, key: &str) -> (u16, Value) {
    common::request(addr, "GET", path, key, &[], b"")
}

fn close(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9,
        _ => a == b,
    }
}

fn the_library_feeds_leadscore(library: &str) {
    let python = common::python_with(
        "segment.analytics, rudderstack.analytics",
        "the tracking libraries (pip packages segment-analytics-python and rudder-sdk-python)",
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sdk.db");
    let keys = common::starter_database(&db, NOW, &["write", "read"]);
    let (write, read) = (&keys[0], &keys[1]);
    let (child, addr) = common::spawn_serve(&db, NOW);
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _service = Killed(child);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sdk/send.py");
    let out = dir.path().join("expected");
    let sent = Command::new(&python)
        .arg(&script)
        .args([
            library,
            &format!("http://{addr}"),
            write,
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        sent.status.success(),
        "{library}: {}{}",
        String::from_utf8_lossy(&sent.stdout),
        String::from_utf8_lossy(&sent.stderr)
    );
    let ids: Vec<String> = serde_json::from_slice(&sent.stdout).unwrap();
    assert_eq!(ids.len(), 2);
    // The same events, scored from files.
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/starter-model.toml");
    let scored = common::leadscore([
        "score",
        "--model",
        model.to_str().unwrap(),
        "--contacts",
        out.join("contacts.csv").to_str().unwrap(),
        "--events",
        out.join("events.ndjson").to_str().unwrap(),
        "--as-of",
        NOW,
        "--format",
        "json",
    ]);
    assert!(scored.status.success(), "{}", common::stderr(&scored));
    let expected: Vec<Value> = common::stdout(&scored)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(expected.len(), 2);
    for want in &expected {
        let id = want["id"].as_str().unwrap();
        let (status, got) = get(&addr, &format!("/v1/contacts/{id}/score"), read);
        assert_eq!(status, 200, "{library} {id}: {got}");
        for part in ["score", "band", "stage", "disqualified"] {
            assert!(
                close(&got[part], &want[part]),
                "{library} {id} {part}: {got} vs {want}"
            );
        }
        for (dim, value) in want["dimensions"].as_object().unwrap() {
            assert!(
                close(&got["dimensions"][dim], value),
                "{library} {id} {dim}: {got} vs {want}"
            );
        }
        assert!(
            want["score"].as_f64().unwrap() > 20.0,
            "the history counts: {want}"
        );
    }
    // The visitor's history joined the contact; no visitor is left.
    let prefix = match library {
        "segment" => "seg",
        "segment-gzip" => "sgz",
        _ => "rud",
    };
    let visitor = format!("{prefix}-anon-7");
    let (status, _) = get(&addr, &format!("/v1/contacts/{visitor}/score"), read);
    assert_eq!(status, 404, "{library}: the anonymous visitor was joined");
}

#[test]
fn segments_python_library_feeds_leadscore() {
    the_library_feeds_leadscore("segment");
}

#[test]
fn segments_python_library_feeds_leadscore_gzipped() {
    the_library_feeds_leadscore("segment-gzip");
}

#[test]
fn rudderstacks_python_library_feeds_leadscore_gzipped() {
    the_library_feeds_leadscore("rudder");
}
