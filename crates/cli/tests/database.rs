//! The database commands through the real binary: the same numbers as
//! `leadscore score`, explanations, history, model versions, deletion, and
//! clear errors.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

fn db_cmd(db: &Path, now: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(args)
        .env("LEADSCORE_DB", db)
        .env("LEADSCORE_NOW", now)
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

fn case(n: &str) -> PathBuf {
    fixtures().join("conformance").join(n)
}

fn file(p: PathBuf) -> String {
    p.display().to_string()
}

#[test]
fn database_scores_equal_the_batch_command_on_every_conformance_case() {
    for name in ["case-101", "case-202", "case-303"] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("l.db");
        let c = case(name);
        let as_of = std::fs::read_to_string(c.join("as_of.txt")).unwrap();
        let as_of = as_of.trim();
        ok(db_cmd(
            &db,
            as_of,
            &["init", "--model", &file(c.join("model.toml"))],
        ));
        ok(db_cmd(
            &db,
            as_of,
            &["import", "contacts", &file(c.join("contacts.csv"))],
        ));
        // Events twice, in both formats, in small batches.
        for events in ["events.ndjson", "events.csv"] {
            ok(db_cmd(
                &db,
                as_of,
                &[
                    "import",
                    "events",
                    &file(c.join(events)),
                    "--batch-size",
                    "97",
                ],
            ));
        }
        let got = ok(db_cmd(&db, as_of, &["scores", "--format", "json"]));
        let expected = std::fs::read_to_string(c.join("expected.jsonl")).unwrap();
        // Events for unknown contacts created bare contacts after the known ones.
        let n = expected.lines().count();
        let known: String = got.lines().take(n).map(|l| format!("{l}\n")).collect();
        assert_same_scores(&known, &expected, name);
        // `leadscore score` on the case's files, with `extra` arguments.
        let batch_score = |extra: &[&str]| {
            let mut args = vec![
                "score".to_owned(),
                "-q".into(),
                "--model".into(),
                file(c.join("model.toml")),
                "--contacts".into(),
                file(c.join("contacts.csv")),
                "--events".into(),
                file(c.join("events.csv")),
                "--as-of".into(),
                as_of.into(),
            ];
            args.extend(extra.iter().map(|a| a.to_string()));
            ok(leadscore(args))
        };
        let batch = batch_score(&[]);
        assert_eq!(known, batch, "{name}: byte-identical to leadscore score");
        // Sorted by score (ties in stored order, as the batch command keeps
        // input order), the known contacts come in the batch command's
        // order; the bare ones created for unknown ids fall in between.
        let sorted = ok(db_cmd(
            &db,
            as_of,
            &["scores", "--sort", "score", "--format", "json"],
        ));
        let batch_sorted = batch_score(&["--sort", "score"]);
        let known_sorted: String = sorted
            .lines()
            .filter(|l| known.lines().any(|k| k == *l))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(known_sorted, batch_sorted, "{name}: --sort score");
        // --top keeps the first of that same order.
        let top = ok(db_cmd(
            &db,
            as_of,
            &["scores", "--top", "2", "--format", "json"],
        ));
        let first: String = sorted.lines().take(2).map(|l| format!("{l}\n")).collect();
        assert_eq!(top, first, "{name}: --top 2");
        assert!(ok(db_cmd(&db, as_of, &["check"])).contains("ok"));
    }
}

#[test]
fn explain_history_model_tick_delete() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("l.db");
    let ex = fixtures().join("spec-example");
    let now = "2026-05-01T00:00:00Z";
    ok(db_cmd(
        &db,
        now,
        &["init", "--model", &file(ex.join("model.toml"))],
    ));
    ok(db_cmd(
        &db,
        now,
        &["import", "contacts", &file(ex.join("contacts.csv"))],
    ));
    ok(db_cmd(
        &db,
        now,
        &["import", "events", &file(ex.join("events.csv"))],
    ));

    // The explanation from the database is the one from the files.
    let from_db = ok(db_cmd(&db, now, &["explain", "ana"]));
    let from_files = ok(leadscore([
        "explain",
        "--model",
        &file(ex.join("model.toml")),
        "--contacts",
        &file(ex.join("contacts.csv")),
        "--events",
        &file(ex.join("events.csv")),
        "--contact",
        "ana",
        "--as-of",
        now,
    ]));
    assert_eq!(from_db, from_files);

    let history = ok(db_cmd(&db, now, &["history", "ana"]));
    assert!(
        history.contains("band  none -> cold  (contact data)"),
        "{history}"
    );
    assert!(
        history.contains("band  cold -> warm  (event e"),
        "{history}"
    );
    assert!(history.contains("stage none -> mql  (event e"), "{history}");

    // Time passes: the pricing visits fade and ana cools down.
    let tick = ok(db_cmd(
        &db,
        now,
        &["tick", "--until", "2026-09-01T00:00:00Z"],
    ));
    assert!(tick.contains("transition(s) recorded"), "{tick}");
    let history = ok(db_cmd(&db, now, &["history", "ana"]));
    assert!(
        history.contains("band  warm -> cold  (time passing"),
        "{history}"
    );

    // A new model version re-scores and is logged; the old one stays readable.
    let v2 = dir.path().join("v2.toml");
    let text = std::fs::read_to_string(ex.join("model.toml")).unwrap();
    std::fs::write(&v2, text.replace("min_score = 40", "min_score = 20")).unwrap();
    let dry = ok(db_cmd(
        &db,
        now,
        &["model", "set", &file(v2.clone()), "--dry-run"],
    ));
    assert!(dry.contains("dry run"), "{dry}");
    assert!(ok(db_cmd(&db, now, &["model", "log"])).lines().count() == 1);
    ok(db_cmd(&db, now, &["model", "set", &file(v2)]));
    let log = ok(db_cmd(&db, now, &["model", "log"]));
    assert!(log.contains("2 ") && log.contains("(current)"), "{log}");
    assert!(ok(db_cmd(&db, now, &["model", "show", "1"])).contains("min_score = 40"));

    let filtered = ok(db_cmd(
        &db,
        now,
        &[
            "scores",
            "--where",
            "{ attribute = \"job_title\", contains = \"vp\" }",
            "--format",
            "csv",
        ],
    ));
    assert_eq!(filtered.lines().count(), 2, "{filtered}");
    let none = ok(db_cmd(
        &db,
        now,
        &["scores", "--band", "hot", "--format", "json"],
    ));
    assert_eq!(none, "");

    ok(db_cmd(&db, now, &["delete", "ana"]));
    let gone = db_cmd(&db, now, &["history", "ana"]);
    assert_eq!(gone.status.code(), Some(2));
    assert!(stderr(&gone).contains("no contact with id \"ana\""));
}

#[test]
fn database_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("missing.db");
    let out = db_cmd(&db, "2026-01-01T00:00:00Z", &["scores"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no leadscore database here"),
        "{}",
        stderr(&out)
    );
    let model = dir.path().join("m.toml");
    std::fs::write(&model, "[[dimension]]\nid = \"fit\"\nmax = -1\n").unwrap();
    let out = db_cmd(
        &db,
        "2026-01-01T00:00:00Z",
        &["init", "--model", &file(model.clone())],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("min (0) must be less than max (-1)"),
        "{}",
        stderr(&out)
    );
    std::fs::write(&model, "[[dimension]]\nid = \"fit\"\n").unwrap();
    ok(db_cmd(
        &db,
        "2026-01-01T00:00:00Z",
        &["init", "--model", &file(model.clone())],
    ));
    let again = db_cmd(
        &db,
        "2026-01-01T00:00:00Z",
        &["init", "--model", &file(model)],
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("already exists"));
    let bad = db_cmd(
        &db,
        "2026-01-01T00:00:00Z",
        &["scores", "--where", "{ attribute = \"x\", equal = \"y\" }"],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("unknown operator 'equal'"),
        "{}",
        stderr(&bad)
    );
}
