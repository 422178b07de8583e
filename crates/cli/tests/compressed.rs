//! Compressed request bodies: `Content-Encoding: gzip` or `deflate` on the
//! write routes, as tracking libraries send them, inflated within the body
//! limit; a bad compressed body is a clear 4xx and leaves nothing behind.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Child;

use serde_json::Value;

const NOW: &str = "2026-06-30T00:00:00Z";

struct Service {
    child: Child,
    addr: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    /// POSTs `body` to `path` with these extra headers; (status, body).
    fn post(&self, path: &str, key: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
        common::request(&self.addr, "POST", path, key, headers, body)
    }

    /// GETs `path`: its status.
    fn get_status(&self, path: &str, key: &str) -> u16 {
        common::request(&self.addr, "GET", path, key, &[], b"").0
    }
}

/// A database, a write and a read key, and the service on it.
fn service(dir: &Path) -> (Service, String, String, PathBuf) {
    let db = dir.join("gz.db");
    let keys = common::starter_database(&db, NOW, &["write", "read"]);
    let (write, read) = (keys[0].clone(), keys[1].clone());
    let (child, addr) = common::spawn_serve(&db, NOW);
    (Service { child, addr }, write, read, db)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn raw_deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn events(contact: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                r#"{{"id": "{contact}-{i}", "contact_id": "{contact}", "type": "page_view", "timestamp": "2026-06-2{}T10:00:00Z", "properties": {{"url": "/pricing"}}}}"#,
                i % 9
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const JSON: (&str, &str) = ("Content-Type", "application/x-ndjson");

#[test]
fn gzip_and_deflate_bodies_are_taken_on_every_write_route() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, write, read, _) = service(dir.path());
    for (contact, encoding, pack) in [
        ("gz", "gzip", gzip as fn(&[u8]) -> Vec<u8>),
        ("xgz", "x-gzip", gzip),
        ("zl", "deflate", zlib),
        ("raw", "deflate", raw_deflate),
    ] {
        let body = events(contact, 5);
        let (status, answer) = svc.post(
            "/v1/events",
            &write,
            &[JSON, ("Content-Encoding", encoding)],
            &pack(body.as_bytes()),
        );
        assert_eq!(status, 200, "{encoding}: {answer}");
        assert_eq!(answer["accepted"], 5, "{answer}");
    }
    // Each compressed batch scores as the same batch sent plain.
    let (status, _) = svc.post("/v1/events", &write, &[JSON], events("plain", 5).as_bytes());
    assert_eq!(status, 200);
    let score = |id: &str| {
        let mut s = TcpStream::connect(&svc.addr).unwrap();
        write!(
            s,
            "GET /v1/contacts/{id}/score HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {read}\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let v: Value = serde_json::from_str(text.split_once("\r\n\r\n").unwrap().1).unwrap();
        v["score"].clone()
    };
    for id in ["gz", "xgz", "zl", "raw"] {
        assert_eq!(score(id), score("plain"), "{id}");
    }
    // Contacts and Segment-style batches too.
    let contact = br#"{"id": "gz", "attributes": {"job_title": "VP Sales"}}"#;
    let (status, answer) = svc.post(
        "/v1/contacts",
        &write,
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        &gzip(contact),
    );
    assert_eq!(
        (status, &answer["updated"]),
        (200, &Value::from(1)),
        "{answer}"
    );
    let batch = br#"{"batch": [{"type": "track", "messageId": "m-1", "userId": "gz", "event": "webinar_attended", "timestamp": "2026-06-29T10:00:00Z"}]}"#;
    let (status, answer) = svc.post(
        "/v1/batch",
        &write,
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        &gzip(batch),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["items"][0]["status"], "accepted", "{answer}");
}

#[test]
fn bad_compressed_bodies_get_a_clear_4xx_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, write, read, _) = service(dir.path());
    let body = events("bad", 3);
    let packed = gzip(body.as_bytes());
    // A zip bomb: 64 MiB of spaces in about 64 KiB.
    let bomb = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..64 {
            e.write_all(&chunk).unwrap();
        }
        e.finish().unwrap()
    };
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let cases: Vec<(&str, Vec<u8>, &str, u16, &str)> = vec![
        (
            "truncated gzip",
            packed[..packed.len() / 2].to_vec(),
            "gzip",
            400,
            "invalid_encoding",
        ),
        (
            "plain JSON labelled gzip",
            body.clone().into_bytes(),
            "gzip",
            400,
            "invalid_encoding",
        ),
        (
            "plain JSON labelled deflate",
            b"[1, 2, 3".to_vec(),
            "deflate",
            400,
            "invalid_encoding",
        ),
        ("a zip bomb", bomb, "gzip", 413, "payload_too_large"),
        (
            "an unknown encoding",
            packed.clone(),
            "br",
            415,
            "unsupported_encoding",
        ),
        (
            "two encodings",
            packed.clone(),
            "gzip, deflate",
            415,
            "unsupported_encoding",
        ),
    ];
    for (what, bytes, encoding, status, code) in cases {
        let (got, answer) = svc.post(
            "/v1/events",
            &write,
            &[JSON, ("Content-Encoding", encoding)],
            &bytes,
        );
        assert_eq!(got, status, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{what}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.len() > 10),
            "{what}: {answer}"
        );
    }
    assert_eq!(
        svc.get_status("/v1/contacts/bad", &read),
        404,
        "nothing was stored"
    );
}
