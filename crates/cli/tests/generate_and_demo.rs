//! The generator, the starter model and the demo, end to end.

mod common;

use common::*;

fn starter() -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/starter-model.toml")
        .display()
        .to_string()
}

#[test]
fn the_starter_model_is_valid() {
    let out = leadscore(["validate", &starter()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("model 'starter-b2b'"));
}

#[test]
fn csv_and_ndjson_generated_data_score_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let mut outputs = Vec::new();
    for format in ["csv", "ndjson"] {
        let d = dir.path().join(format);
        let out = leadscore([
            "generate",
            "--contacts",
            "3000",
            "--events",
            "40000",
            "--seed",
            "9",
            "--format",
            format,
            "--out",
            &d.display().to_string(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let scored = leadscore([
            "score",
            "-q",
            "--model",
            &starter(),
            "--contacts",
            &d.join(format!("contacts.{format}")).display().to_string(),
            "--events",
            &d.join(format!("events.{format}")).display().to_string(),
            "--as-of",
            "2026-06-30T00:00:00Z",
        ]);
        assert!(scored.status.success(), "{}", stderr(&scored));
        outputs.push(stdout(&scored));
    }
    assert_eq!(outputs[0].lines().count(), 3000);
    assert_eq!(outputs[0], outputs[1]);
    // The generated population is skewed: mostly cold, some hot, some
    // disqualified.
    let bands: Vec<String> = outputs[0]
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["band"].to_string())
        .collect();
    let count = |b: &str| bands.iter().filter(|x| x.as_str() == b).count();
    assert!(count("\"cold\"") > 1500, "{}", count("\"cold\""));
    assert!(count("\"hot\"") > 10);
    assert!(count("\"disqualified\"") > 50);
}

#[test]
fn the_demo_runs_and_explains_the_top_lead() {
    let dir = tempfile::tempdir().unwrap();
    let out = leadscore([
        "demo",
        "--contacts",
        "2000",
        "--out",
        &dir.path().display().to_string(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for needle in [
        "Top 10 leads:",
        "Why is",
        "Band:",
        "Stage:",
        " score --model",
        "its live scores equal the ones above for 2000 of 2000 contacts",
        " serve --db",
        "sign in with this admin key: lsk_",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // Every command it suggests works as printed.
    let commands: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "Try next:")
        .filter_map(|l| l.strip_prefix("  "))
        .filter(|l| !l.starts_with("then "))
        .collect();
    assert_eq!(commands.len(), 4, "{text}");
    for command in &commands[..3] {
        let out = std::process::Command::new("sh")
            .args(["-c", command])
            .output()
            .unwrap();
        assert!(out.status.success(), "{command}: {}", stderr(&out));
        assert!(!stdout(&out).is_empty(), "{command}");
    }
    // The service it suggests serves the web app, and the key signs in.
    let serve = commands[3].replace("127.0.0.1:8080", "127.0.0.1:0");
    let (clock, serve) = serve.split_once(' ').unwrap();
    let mut child = std::process::Command::new("sh")
        .args(["-c", &format!("export {clock}; exec {serve}")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr = listening_address(&mut child);
    let key = text.split("admin key: ").nth(1).unwrap().trim();
    let body = format!("key={key}");
    let answer = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "POST /login HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(answer.starts_with("HTTP/1.1 303"), "{answer}");
    assert!(
        answer.contains("set-cookie: leadscore_session="),
        "{answer}"
    );
    // The embedded database it made answers the CLI.
    let db = dir.path().join("leadscore.db").display().to_string();
    let out = leadscore(["scores", "--db", &db, "--top", "3", "--format", "csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 4, "{}", stdout(&out));
}
