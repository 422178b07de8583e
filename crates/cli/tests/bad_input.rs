//! Bad input fails with exit code 2 and a message naming file, line and
//! field; nothing panics.

mod common;

use std::path::PathBuf;

use common::*;

const MODEL: &str = r#"
[[dimension]]
id = "fit"
[[dimension]]
id = "engagement"
[[rule]]
id = "pricing"
dimension = "engagement"
on = "page_view"
points = 10
when = { property = "url", contains = "/pricing" }
"#;

/// `leadscore --db DB ARGS...`.
fn on(db: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--db", db];
    all.extend_from_slice(args);
    leadscore(all)
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        let f = Files {
            dir: tempfile::tempdir().unwrap(),
        };
        f.write("model.toml", MODEL.as_bytes());
        f.write("contacts.csv", b"id,email\nc1,a@x.io\nc2,b@y.io\n");
        f.write(
            "events.csv",
            b"id,contact_id,type,timestamp,url\ne1,c1,page_view,2026-01-01T00:00:00Z,/pricing\n",
        );
        f
    }
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
    /// A lead database `name` made with the model; its path.
    fn database(&self, name: &str) -> String {
        let db = self.path(name);
        let out = on(&db, &["init", "--model", &self.path("model.toml")]);
        assert!(out.status.success(), "{}", stderr(&out));
        db
    }
    fn score(&self, contacts: &str, events: &str) -> std::process::Output {
        leadscore([
            "score",
            "--model",
            &self.path("model.toml"),
            "--contacts",
            &self.path(contacts),
            "--events",
            &self.path(events),
            "--as-of",
            "2026-02-01T00:00:00Z",
        ])
    }
}

/// Asserts a failure with exit code 2 whose message contains every needle.
fn assert_fails(out: &std::process::Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "expected {n:?} in: {err}");
    }
}

#[test]
fn good_files_score() {
    let f = Files::new();
    let out = f.score("contacts.csv", "events.csv");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 2);
}

#[test]
fn missing_file() {
    let f = Files::new();
    assert_fails(&f.score("nope.csv", "events.csv"), &["nope.csv"]);
    assert_fails(&f.score("contacts.csv", "gone.ndjson"), &["gone.ndjson"]);
}

#[test]
fn csv_without_id_column() {
    let f = Files::new();
    f.write("c.csv", b"email,name\na@x.io,A\n");
    assert_fails(
        &f.score("c.csv", "events.csv"),
        &["c.csv:1", "no 'id' column"],
    );
    f.write(
        "e.csv",
        b"id,contact,type,timestamp\ne1,c1,x,2026-01-01T00:00:00Z\n",
    );
    assert_fails(
        &f.score("contacts.csv", "e.csv"),
        &["e.csv:1", "'contact_id'"],
    );
}

#[test]
fn wrong_column_count() {
    let f = Files::new();
    f.write("c.csv", b"id,email\nc1,a@x.io\nc2,b@y.io,extra\n");
    assert_fails(
        &f.score("c.csv", "events.csv"),
        &["c.csv:3", "3 columns where the header has 2"],
    );
    f.write(
        "e.csv",
        b"id,contact_id,type,timestamp,url\ne1,c1,page_view,2026-01-01T00:00:00Z,/\ne2,c1,page_view\n",
    );
    assert_fails(
        &f.score("contacts.csv", "e.csv"),
        &["e.csv:3", "3 columns where the header has 5"],
    );
}

#[test]
fn bad_timestamp() {
    let f = Files::new();
    f.write(
        "e.csv",
        b"id,contact_id,type,timestamp,url\ne1,c1,page_view,2026-01-01T00:00:00Z,/\ne2,c1,page_view,2026-13-01T00:00:00Z,/\n",
    );
    assert_fails(
        &f.score("contacts.csv", "e.csv"),
        &["e.csv:3", "field 'timestamp'", "month out of range"],
    );
    f.write(
        "e.ndjson",
        b"{\"id\":\"e1\",\"contact_id\":\"c1\",\"type\":\"page_view\",\"timestamp\":\"yesterday\"}\n",
    );
    assert_fails(
        &f.score("contacts.csv", "e.ndjson"),
        &["e.ndjson:1", "field 'timestamp'"],
    );
    f.write(
        "n.ndjson",
        b"{\"id\":\"e1\",\"contact_id\":\"c1\",\"type\":\"page_view\",\"timestamp\":\"2026-01-01T00:00:00\"}\n",
    );
    assert_fails(
        &f.score("contacts.csv", "n.ndjson"),
        &["n.ndjson:1", "missing offset"],
    );
}

#[test]
fn bad_utf8() {
    let f = Files::new();
    f.write("c.csv", b"id,email\nc1,a@x.io\nc2,b\xff@y.io\n");
    assert_fails(
        &f.score("c.csv", "events.csv"),
        &["c.csv:3", "field 'email'", "UTF-8"],
    );
    f.write(
        "e.csv",
        b"id,contact_id,type,timestamp,url\ne1,c1,page_view,2026-01-01T00:00:00Z,/pri\xc3\n",
    );
    assert_fails(
        &f.score("contacts.csv", "e.csv"),
        &["e.csv:2", "field 'url'", "UTF-8"],
    );
    f.write("e.ndjson", b"{\"id\":\"e\xff\"}\n");
    assert_fails(
        &f.score("contacts.csv", "e.ndjson"),
        &["e.ndjson:1", "UTF-8"],
    );
}

#[test]
fn invalid_json_line() {
    let f = Files::new();
    f.write(
        "e.ndjson",
        b"{\"id\":\"e1\",\"contact_id\":\"c1\",\"type\":\"page_view\",\"timestamp\":\"2026-01-01T00:00:00Z\"}\n\n{\"id\": \"e2\", \"contact_id\": \n",
    );
    assert_fails(
        &f.score("contacts.csv", "e.ndjson"),
        &["e.ndjson:3", "invalid JSON"],
    );
    f.write(
        "c.ndjson",
        b"{\"id\": \"c1\", \"attributes\": {\"email\": {\"x\": 1}}}\n",
    );
    assert_fails(
        &f.score("c.ndjson", "events.csv"),
        &["c.ndjson:1", "attributes.email", "object"],
    );
    f.write("d.ndjson", b"{\"id\": \"c1\", \"atributes\": {}}\n");
    assert_fails(
        &f.score("d.ndjson", "events.csv"),
        &["d.ndjson:1", "atributes"],
    );
    f.write(
        "m.ndjson",
        b"{\"id\":\"e1\",\"type\":\"page_view\",\"timestamp\":\"2026-01-01T00:00:00Z\"}\n",
    );
    assert_fails(
        &f.score("contacts.csv", "m.ndjson"),
        &["m.ndjson:1", "field 'contact_id'"],
    );
}

#[test]
fn duplicate_contact_names_both_lines() {
    let f = Files::new();
    f.write("c.csv", b"id,email\nc1,a@x.io\nc2,b@y.io\nc1,c@z.io\n");
    assert_fails(
        &f.score("c.csv", "events.csv"),
        &["c.csv:4", "c.csv:2", "\"c1\""],
    );
}

#[test]
fn errors_deep_in_a_large_file_have_the_right_line() {
    // Several chunks' worth of events; the bad one is near the end.
    let f = Files::new();
    let mut text = String::from("id,contact_id,type,timestamp,url\n");
    let n = 150_000;
    for i in 0..n {
        text.push_str(&format!(
            "e{i},c1,page_view,2026-01-01T00:00:00Z,\"/a,\"\"b\"\"\"\n"
        ));
    }
    text.push_str("bad,c1,page_view,not-a-time,/\n");
    f.write("big.csv", text.as_bytes());
    assert_fails(
        &f.score("contacts.csv", "big.csv"),
        &[&format!("big.csv:{}", n + 2), "field 'timestamp'"],
    );
}

#[test]
fn invalid_model_lists_problems() {
    let f = Files::new();
    f.write(
        "bad.toml",
        b"[[dimension]]\nid = \"fit\"\nmin = 10\nmax = 5\n[[rule]]\nid = \"r\"\ndimension = \"nope\"\npoints = 1\nwhen = { attribute = \"x\", equal = \"y\" }\n",
    );
    let out = leadscore(["validate", &f.path("bad.toml")]);
    assert_fails(
        &out,
        &[
            "bad.toml",
            "dimension 'fit': min (10) must be less than max (5)",
            "rule 'r' field 'dimension': unknown dimension 'nope'",
            "unknown operator 'equal'",
        ],
    );
    let out = leadscore([
        "score",
        "--model",
        &f.path("bad.toml"),
        "--contacts",
        &f.path("contacts.csv"),
    ]);
    assert_fails(&out, &["bad.toml", "unknown dimension 'nope'"]);
    let ok = leadscore(["validate", &f.path("model.toml")]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(stdout(&ok).contains("ok"));
}

#[test]
fn bad_as_of_and_unknown_format() {
    let f = Files::new();
    let out = leadscore([
        "score",
        "--model",
        &f.path("model.toml"),
        "--contacts",
        &f.path("contacts.csv"),
        "--as-of",
        "last tuesday",
    ]);
    assert_fails(&out, &["--as-of"]);
    f.write("c.txt", b"id\nc1\n");
    assert_fails(&f.score("c.txt", "events.csv"), &["c.txt", "extension"]);
}

#[test]
fn explain_unknown_contact() {
    let f = Files::new();
    let out = leadscore([
        "explain",
        "--model",
        &f.path("model.toml"),
        "--contacts",
        &f.path("contacts.csv"),
        "--events",
        &f.path("events.csv"),
        "--contact",
        "zz",
    ]);
    assert_fails(&out, &["--contact", "\"zz\""]);
}

/// Control characters (NUL, tab, newline...) are refused in ids and
/// types, whatever the file format, with the field named.
#[test]
fn control_characters_in_ids_and_types() {
    let f = Files::new();
    // (file written, its bytes, contacts file, events file, what the
    // message names)
    type Case<'a> = (&'a str, &'a [u8], &'a str, &'a str, [&'a str; 3]);
    let cases: [Case<'_>; 4] = [
        (
            "nul.csv",
            b"id,contact_id,type,timestamp,url\ne\x001,c1,page_view,2026-01-01T00:00:00Z,/\n",
            "contacts.csv",
            "nul.csv",
            ["nul.csv:2", "field 'id'", "control character (U+0000)"],
        ),
        (
            "tab.ndjson",
            b"{\"id\":\"e1\",\"contact_id\":\"c1\",\"type\":\"page\\tview\",\"timestamp\":\"2026-01-01T00:00:00Z\"}\n",
            "contacts.csv",
            "tab.ndjson",
            ["tab.ndjson:1", "field 'type'", "control character (U+0009)"],
        ),
        (
            "c.csv",
            b"id,email\n\"c\n1\",a@x.io\n",
            "c.csv",
            "events.csv",
            ["c.csv:2", "field 'id'", "control character (U+000A)"],
        ),
        (
            "c.ndjson",
            b"{\"id\":\"c\\u00011\",\"attributes\":{}}\n",
            "c.ndjson",
            "events.csv",
            ["c.ndjson:1", "field 'id'", "control character (U+0001)"],
        ),
    ];
    for (name, bytes, contacts, events, needles) in cases {
        f.write(name, bytes);
        assert_fails(&f.score(contacts, events), &needles);
    }
    // An import keeps the good rows and rejects the others, naming the field.
    let db = f.database("db.sqlite");
    let run = |args: &[&str]| on(&db, args);
    f.write(
        "import.csv",
        b"id,contact_id,type,timestamp\ne1,c1,page_view,2026-01-01T00:00:00Z\ne2,c\x002,page_view,2026-01-01T00:00:00Z\n",
    );
    let out = run(&["import", "events", &f.path("import.csv")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rejects = std::fs::read_to_string(f.path("import.csv.rejects.csv")).unwrap();
    assert!(
        rejects.contains("3,\"contact_id\",\"holds a control character (U+0000)\""),
        "{rejects}"
    );
}

/// A model whose numbers could run away (`1e308`) is refused by
/// `validate` and `init`, each number named, before anything is scored.
#[test]
fn a_model_with_runaway_numbers_is_refused() {
    let f = Files::new();
    f.write(
        "huge.toml",
        b"[[dimension]]\nid = \"fit\"\nmin = -1e308\nmax = 1e308\n[[rule]]\nid = \"r\"\ndimension = \"fit\"\npoints = 1e308\n",
    );
    let needles = [
        "dimension 'fit' field 'min': must be between -1000000000 and 1000000000, found -1e308",
        "dimension 'fit' field 'max'",
        "rule 'r' field 'points'",
    ];
    assert_fails(&leadscore(["validate", &f.path("huge.toml")]), &needles);
    let db = f.path("huge.db");
    assert_fails(
        &leadscore(["--db", &db, "init", "--model", &f.path("huge.toml")]),
        &needles,
    );
    assert!(!std::path::Path::new(&db).exists(), "no database made");
}

/// Bad CSV quoting is an error naming the line and field (an import's
/// reject), never repaired into other text.
#[test]
fn bad_csv_quoting_is_an_error_not_a_repair() {
    let f = Files::new();
    f.write(
        "q.csv",
        b"id,contact_id,type,timestamp,url\ne1,c1,page_view,2026-01-01T00:00:00Z,\"/pri\"cing\n",
    );
    assert_fails(
        &f.score("contacts.csv", "q.csv"),
        &["q.csv:2", "field 'url'", "text after a closing quote"],
    );
    f.write(
        "open.csv",
        b"id,contact_id,type,timestamp,url\ne1,c1,page_view,2026-01-01T00:00:00Z,/\ne2,c1,page_view,2026-01-02T00:00:00Z,\"/pricing\n",
    );
    assert_fails(
        &f.score("contacts.csv", "open.csv"),
        &["open.csv:3", "field 'url'", "a quote is not closed"],
    );
    let db = f.path("q.sqlite");
    assert!(
        leadscore(["--db", &db, "init", "--model", &f.path("model.toml")])
            .status
            .success()
    );
    let out = leadscore(["--db", &db, "import", "events", &f.path("open.csv")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rejects = std::fs::read_to_string(f.path("open.csv.rejects.csv")).unwrap();
    assert!(
        rejects.contains("3,\"url\",\"malformed CSV: a quote is not closed\""),
        "{rejects}"
    );
}

/// One set of size limits for every way in: what the API refuses, `score`
/// refuses and an import rejects, with the same message (ids of 256 bytes,
/// types of 128, names of 256, records of 1 MiB).
#[test]
fn one_set_of_size_limits_for_files_imports_and_the_api() {
    let f = Files::new();
    let long_event_id = "e".repeat(5_000);
    let long_type = "t".repeat(5_000);
    let long_contact = "c".repeat(100_000);
    let long_name = "n".repeat(300);
    let big = "x".repeat(2 << 20);
    // (events file, contacts file, what the message names)
    let events_header = "id,contact_id,type,timestamp,url\n";
    let cases: Vec<(String, String, [String; 2])> = vec![
        (
            format!("{events_header}{long_event_id},c1,page_view,2026-01-01T00:00:00Z,/\n"),
            String::new(),
            [
                "field 'id'".into(),
                "has 5000 bytes; at most 256 are taken".into(),
            ],
        ),
        (
            format!("{events_header}e1,c1,{long_type},2026-01-01T00:00:00Z,/\n"),
            String::new(),
            [
                "field 'type'".into(),
                "has 5000 bytes; at most 128 are taken".into(),
            ],
        ),
        (
            format!("{events_header}e1,{long_contact},page_view,2026-01-01T00:00:00Z,/\n"),
            String::new(),
            [
                "field 'contact_id'".into(),
                "has 100000 bytes; at most 256 are taken".into(),
            ],
        ),
        (
            format!("{events_header}e1,c1,page_view,2026-01-01T00:00:00Z,{big}\n"),
            String::new(),
            [":2".into(), "at most 1048576 are taken".into()],
        ),
        (
            String::new(),
            format!("id,email\nc1,{big}\n"),
            [
                ":2".into(),
                "the record has 2097155 bytes; at most 1048576 are taken".into(),
            ],
        ),
        (
            String::new(),
            format!("id,{long_name}\nc1,a\n"),
            [
                ":1".into(),
                "header: the name has 300 bytes; at most 256 are taken".into(),
            ],
        ),
    ];
    let db = f.database("limits.db");
    let run = |args: &[&str]| on(&db, args);
    for (k, (events, contacts, needles)) in cases.iter().enumerate() {
        let (ev, co) = (format!("ev{k}.csv"), format!("co{k}.csv"));
        f.write(
            &ev,
            if events.is_empty() {
                b"id,contact_id,type,timestamp\n"
            } else {
                events.as_bytes()
            },
        );
        f.write(
            &co,
            if contacts.is_empty() {
                b"id,email\nc1,a@x.io\n"
            } else {
                contacts.as_bytes()
            },
        );
        // `score` stops, naming the file, line and field.
        let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
        assert_fails(&f.score(&co, &ev), &needles);
        // An import rejects the row with the same reason.
        let (what, file) = if events.is_empty() {
            ("contacts", &co)
        } else {
            ("events", &ev)
        };
        let out = run(&["import", what, &f.path(file)]);
        if needles[1].starts_with("header") {
            assert_fails(&out, &needles);
            continue;
        }
        assert!(out.status.success(), "{}", stderr(&out));
        let rejects = std::fs::read_to_string(f.path(&format!("{file}.rejects.csv"))).unwrap();
        assert!(rejects.contains(needles[1]), "{k}: {rejects}");
    }
    // Nothing refused was stored: the API could not have reached it.
    let out = run(&["scores", "--format", "json"]);
    assert!(
        stdout(&out).lines().all(|l| l.len() < 1_000),
        "{}",
        stdout(&out)
    );
    // The API answers the same reasons.
    let key = stdout(&run(&["keys", "create", "--scope", "write", "--name", "w"]));
    let key = key.lines().last().unwrap().trim().to_owned();
    let (mut child, addr) = spawn_serve(std::path::Path::new(&db), "2026-02-01T00:00:00Z");
    let post = |path: &str, body: &str| -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    };
    let event = |id: &str, contact: &str, ty: &str, url: &str| {
        serde_json::json!({"id": id, "contact_id": contact, "type": ty,
            "timestamp": "2026-01-01T00:00:00Z", "properties": {"url": url}})
        .to_string()
    };
    for (body, needle) in [
        (
            event(&long_event_id, "c1", "page_view", "/"),
            "has 5000 bytes; at most 256 are taken",
        ),
        (
            event("e1", "c1", &long_type, "/"),
            "has 5000 bytes; at most 128 are taken",
        ),
        (
            event("e1", &long_contact, "page_view", "/"),
            "has 100000 bytes; at most 256 are taken",
        ),
        (
            event("e1", "c1", "page_view", &big),
            "at most 1048576 are taken",
        ),
    ] {
        let answer = post("/v1/events", &body);
        assert!(
            answer.contains(needle),
            "{}",
            &answer[..answer.len().min(400)]
        );
    }
    let contact =
        serde_json::json!({"id": "c9", "attributes": {long_name.clone(): "a"}}).to_string();
    let answer = post("/v1/contacts", &contact);
    assert!(
        answer.contains("the name has 300 bytes; at most 256 are taken"),
        "{answer}"
    );
    let _ = child.kill();
    let _ = child.wait();
}
