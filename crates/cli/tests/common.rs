//! Helpers shared by the CLI integration tests: run the real binary, find
//! fixtures, compare score lines.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's `tests/` folder (fixtures).
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests")
}

/// Runs `leadscore` with arguments.
pub fn leadscore<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(args)
        .output()
        .expect("the leadscore binary runs")
}

/// Starts `leadscore serve` on a free loopback port over `db`, its clock
/// at `now`; returns the child and its address (`127.0.0.1:PORT`). Its
/// standard error is piped (read it, or it is lost with the child).
pub fn spawn_serve(db: &Path, now: &str) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("LEADSCORE_DB", db)
        .env("LEADSCORE_NOW", now)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    (child, addr)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
}

/// Asserts two JSON-lines score outputs agree, numbers to 1e-6 relative.
pub fn assert_same_scores(got: &str, expected: &str, what: &str) {
    let got: Vec<serde_json::Value> = got
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let exp: Vec<serde_json::Value> = expected
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), exp.len(), "{what}: number of lines");
    for (g, e) in got.iter().zip(&exp) {
        assert_eq!(g["id"], e["id"], "{what}: order of contacts");
        for key in ["band", "stage", "disqualified"] {
            assert_eq!(g[key], e[key], "{what}: {key} of {}", e["id"]);
        }
        assert!(
            close(g["score"].as_f64().unwrap(), e["score"].as_f64().unwrap()),
            "{what}: score of {}: got {} expected {}",
            e["id"],
            g["score"],
            e["score"]
        );
        let (gd, ed) = (
            g["dimensions"].as_object().unwrap(),
            e["dimensions"].as_object().unwrap(),
        );
        assert_eq!(
            gd.keys().collect::<Vec<_>>(),
            ed.keys().collect::<Vec<_>>(),
            "{what}: dimensions of {}",
            e["id"]
        );
        for (k, v) in ed {
            assert!(
                close(gd[k].as_f64().unwrap(), v.as_f64().unwrap()),
                "{what}: {k} of {}: got {} expected {v}",
                e["id"],
                gd[k]
            );
        }
    }
}
