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
    let db = f.path("db.sqlite");
    let run = |args: &[&str]| {
        let mut all = vec!["--db", db.as_str()];
        all.extend_from_slice(args);
        leadscore(all)
    };
    assert!(
        run(&["init", "--model", &f.path("model.toml")])
            .status
            .success()
    );
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
