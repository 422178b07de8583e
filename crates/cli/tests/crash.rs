//! Crash safety: an import killed with SIGKILL at random moments, many
//! times, always leaves a consistent database, and finishing the import
//! gives exactly the database of an uninterrupted run.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const NOW: &str = "2026-06-30T00:00:00Z";

fn run(db: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(args)
        .env("LEADSCORE_DB", db)
        .env("LEADSCORE_NOW", NOW)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    out
}

/// Everything a user can see in a database, in a stable order.
fn dump(db: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut out = Vec::new();
    for sql in [
        "SELECT ext_id, attributes, hex(hits), dims, score, band, stage, disqualified, scored_at, next_check_at FROM contacts ORDER BY ext_id",
        "SELECT e.id, c.ext_id, e.type, e.ts, e.properties FROM events e JOIN contacts c ON c.id = e.contact ORDER BY e.id",
        "SELECT c.ext_id, t.at, t.kind, t.from_value, t.to_value, t.cause, t.detail, t.model_version FROM transitions t JOIN contacts c ON c.id = t.contact ORDER BY c.ext_id, t.seq",
        "SELECT version, toml FROM models ORDER BY version",
    ] {
        let mut stmt = conn.prepare(sql).unwrap();
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                let cells: Vec<String> = (0..n)
                    .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                    .collect();
                Ok(cells.join("|"))
            })
            .unwrap();
        out.extend(rows.map(Result::unwrap));
    }
    out
}

#[test]
fn killed_imports_leave_a_consistent_database_and_resume_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/starter-model.toml");
    let model = model.display().to_string();
    let generated = leadscore([
        "generate",
        "--contacts",
        "3000",
        "--events",
        "60000",
        "--seed",
        "5",
        "--out",
        &data.display().to_string(),
    ]);
    assert!(generated.status.success(), "{}", stderr(&generated));
    let contacts = data.join("contacts.csv").display().to_string();
    let events = data.join("events.csv").display().to_string();
    let import = ["import", "events", events.as_str(), "--batch-size", "4000"];

    let reference = dir.path().join("reference.db");
    run(&reference, &["init", "--model", &model]);
    run(&reference, &["import", "contacts", &contacts]);
    run(&reference, &import);

    let crashed = dir.path().join("crashed.db");
    run(&crashed, &["init", "--model", &model]);
    run(&crashed, &["import", "contacts", &contacts]);
    let mut killed_mid_import = 0;
    for i in 0..10u64 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_leadscore"))
            .args(import)
            .env("LEADSCORE_DB", &crashed)
            .env("LEADSCORE_NOW", NOW)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(20 + (i * 137) % 600));
        if child.try_wait().unwrap().is_none() {
            killed_mid_import += 1;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // The database opens, and every stored score matches its events.
        let check = Command::new(env!("CARGO_BIN_EXE_leadscore"))
            .arg("check")
            .env("LEADSCORE_DB", &crashed)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "after kill {i}: {}{}",
            stdout(&check),
            stderr(&check)
        );
    }
    assert!(
        killed_mid_import >= 3,
        "only {killed_mid_import} kills hit a running import"
    );
    run(&crashed, &import);
    let (a, b) = (dump(&reference), dump(&crashed));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y);
    }
}
