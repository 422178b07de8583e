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
/// standard error (the request log) goes to a file beside the database
/// ([`serve_log`]), never to a pipe that could fill and stall it.
pub fn spawn_serve(db: &Path, now: &str) -> (std::process::Child, String) {
    spawn_serve_with(db, now, &[])
}

/// [`spawn_serve`] with more `serve` options.
pub fn spawn_serve_with(db: &Path, now: &str, options: &[&str]) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .args(options)
        .env("LEADSCORE_DB", db)
        .env("LEADSCORE_NOW", now)
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(serve_log_path(db)).unwrap())
        .spawn()
        .unwrap();
    let addr = listening_address(&mut child);
    (child, addr)
}

/// Where [`spawn_serve`] writes the service's standard error.
pub fn serve_log_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".serve.log");
    db.with_file_name(name)
}

/// What the service started by [`spawn_serve`] on `db` has logged so far.
pub fn serve_log(db: &Path) -> String {
    std::fs::read_to_string(serve_log_path(db)).unwrap_or_default()
}

/// The address a starting `leadscore serve` (its standard output piped)
/// says it listens on: its first line, `listening on http://ADDR`.
pub fn listening_address(child: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned()
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

/// The starter model with a predictive dimension `likelihood` (weight 2)
/// read from `likelihood.json` beside the model file.
pub fn starter_with_likelihood() -> String {
    let starter = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/starter-model.toml"),
    )
    .unwrap();
    let model = starter.replace(
        "[score]\nweights = { fit = 1, engagement = 1 }",
        "[[dimension]]\nid = \"likelihood\"\nkind = \"predictive\"\nmodel = \"likelihood.json\"\n\n[score]\nweights = { fit = 1, engagement = 1, likelihood = 2 }",
    );
    assert_ne!(model, starter, "the starter model's [score] table moved");
    model
}

/// A new lead database at `db` with the starter model, its clock at `now`,
/// and one API key of each scope asked for, in order.
pub fn starter_database(db: &Path, now: &str, scopes: &[&str]) -> Vec<String> {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_leadscore"))
            .args(args)
            .env("LEADSCORE_DB", db)
            .env("LEADSCORE_NOW", now)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/starter-model.toml");
    run(&["init", "--model", model.to_str().unwrap()]);
    scopes
        .iter()
        .map(|scope| {
            let out = run(&["keys", "create", "--scope", scope, "--name", scope]);
            out.lines().last().unwrap_or("").trim().to_owned()
        })
        .collect()
}

/// One HTTP/1.1 request to `addr` on its own connection: `method`, `path`,
/// a bearer `key`, extra `headers` and `body`; returns the status and the
/// body read as JSON (`Null` when it is not JSON).
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    key: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {key}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // A body refused from its head alone may not be read: a broken pipe.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or_default())
}

/// The python of `LEADSCORE_PYTHON` (else `python3`), checked to import
/// `modules` (`"duckdb"`, `"a.b, c"`); a missing one fails the test, naming
/// `what` (the pip packages) and `./test.sh`, which installs them.
pub fn python_with(modules: &str, what: &str) -> String {
    let python = std::env::var("LEADSCORE_PYTHON").unwrap_or_else(|_| "python3".into());
    let check = Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .output();
    match check {
        Ok(o) if o.status.success() => python,
        Ok(o) => panic!(
            "{python} lacks {what} (./test.sh installs it): {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("{python} cannot be run ({e}); ./test.sh sets up a python with {what}"),
    }
}
