//! Slow, idle and too many clients: `leadscore serve` closes connections
//! that send their headers or body too slowly or sit idle, answers one
//! connection past its bound with 503, keeps answering normal requests
//! meanwhile, and stops within its deadline on SIGTERM whatever a client
//! is doing. Timeouts are set short through `serve`'s options.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{listening_address, spawn_serve_with};

const NOW: &str = "2026-06-30T00:00:00Z";

/// A service killed when dropped.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A database with the starter model and a write key.
fn database(dir: &Path) -> (PathBuf, String) {
    let db = dir.join("slow.db");
    let keys = common::starter_database(&db, NOW, &["write"]);
    (db, keys[0].clone())
}

fn start(db: &Path, options: &[&str]) -> (Service, String) {
    let (child, addr) = spawn_serve_with(db, NOW, options);
    (Service(child), addr)
}

/// Everything the server sends until it closes the connection (or
/// `wait` passes), and when that happened.
fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> (String, Option<Instant>) {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => {
                return (
                    String::from_utf8_lossy(&got).into_owned(),
                    Some(Instant::now()),
                );
            }
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (
                    String::from_utf8_lossy(&got).into_owned(),
                    Some(Instant::now()),
                );
            }
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), None),
        }
    }
}

/// A GET of /healthz on a new connection: its status line and how long
/// the answer took.
fn healthz(addr: &str) -> (String, Duration) {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (answer, _) = read_until_closed(&mut s, Duration::from_secs(10));
    let status = answer.lines().next().unwrap_or("").to_owned();
    (status, started.elapsed())
}

#[test]
fn a_body_that_never_arrives_is_answered_408_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (db, key) = database(dir.path());
    let (_service, addr) = start(&db, &["--body-timeout", "1"]);
    let mut s = TcpStream::connect(&addr).unwrap();
    let body = r#"{"id":"e1","#; // 11 of the 1000 bytes announced
    write!(
        s,
        "POST /v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{body}"
    )
    .unwrap();
    let sent = Instant::now();
    let (answer, closed) = read_until_closed(&mut s, Duration::from_secs(15));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    assert!(closed.is_some(), "the connection is closed after a 408");
    assert!(
        sent.elapsed() >= Duration::from_millis(900),
        "not before the deadline"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(["history", "c1"])
        .env("LEADSCORE_DB", &db)
        .output()
        .unwrap();
    assert!(!out.status.success(), "no contact was created");
}

#[test]
fn slow_headers_and_idle_connections_are_closed_while_others_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = database(dir.path());
    let (_service, addr) = start(&db, &["--header-timeout", "2"]);
    // 200 clients sending their headers a byte a second.
    let slow: Vec<_> = (0..200)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(&addr).unwrap();
                let opened = Instant::now();
                for b in b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n" {
                    if s.write_all(&[*b]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                    if opened.elapsed() > Duration::from_secs(12) {
                        break;
                    }
                }
                let (answer, closed) = read_until_closed(&mut s, Duration::from_secs(5));
                (answer, closed.map(|t| t - opened))
            })
        })
        .collect();
    // An idle keep-alive connection after one answered request.
    let mut idle = TcpStream::connect(&addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let idle_since = Instant::now();
    // Meanwhile, normal requests are answered at once.
    for _ in 0..10 {
        let (status, took) = healthz(&addr);
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    for t in slow {
        let (answer, closed) = t.join().unwrap();
        assert!(
            !answer.contains("200 OK"),
            "a slow client was served: {answer}"
        );
        let closed = closed.expect("a slow client's connection stays open");
        assert!(closed < Duration::from_secs(12), "{closed:?}");
    }
    let (_, closed) = read_until_closed(&mut idle, Duration::from_secs(10));
    let closed = closed.expect("an idle keep-alive connection stays open");
    assert!(
        closed - idle_since < Duration::from_secs(8),
        "{:?}",
        closed - idle_since
    );
}

#[test]
fn a_connection_past_the_bound_is_answered_503_until_others_close() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = database(dir.path());
    let (_service, addr) = start(&db, &["--max-connections", "5", "--header-timeout", "2"]);
    let held: Vec<TcpStream> = (0..5).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let (status, took) = healthz(&addr);
    assert!(status.starts_with("HTTP/1.1 503"), "{status}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // The idle ones are closed after the header timeout; then there is room.
    std::thread::sleep(Duration::from_secs(3));
    let (status, _) = healthz(&addr);
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    drop(held);
}

#[test]
fn sigterm_stops_within_the_deadline_whatever_a_client_does() {
    let dir = tempfile::tempdir().unwrap();
    let (db, key) = database(dir.path());
    let (mut service, addr) = start(
        &db,
        &[
            "--shutdown-timeout",
            "1",
            "--header-timeout",
            "60",
            "--body-timeout",
            "60",
        ],
    );
    // A body that never comes, and headers that never end.
    let mut body = TcpStream::connect(&addr).unwrap();
    write!(
        body,
        "POST /v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
    )
    .unwrap();
    let mut head = TcpStream::connect(&addr).unwrap();
    head.write_all(b"GET /healthz HTTP/1.1\r\nHo").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let asked = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &service.0.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    loop {
        if let Some(status) = service.0.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        asked.elapsed() >= Duration::from_millis(900),
        "the deadline was given"
    );
}

/// The hostile test's case: with the open-file limit at 512, 600 idle
/// connections. The default bound keeps files for the service: /healthz
/// is answered at once (503 while the bound is full, never a hang), and
/// 200 once the idle connections are closed by the header timeout.
#[test]
fn six_hundred_idle_connections_under_a_limit_of_512_files() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = database(dir.path());
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 512 && exec '{}' serve --bind 127.0.0.1:0 --header-timeout 3",
            env!("CARGO_BIN_EXE_leadscore")
        ))
        .env("LEADSCORE_DB", &db)
        .env("LEADSCORE_NOW", NOW)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr = listening_address(&mut child);
    let _service = Service(child);
    let idle: Vec<TcpStream> = (0..600)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let (status, took) = healthz(&addr);
    assert!(
        status.starts_with("HTTP/1.1 503") || status.starts_with("HTTP/1.1 200"),
        "{status}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    std::thread::sleep(Duration::from_secs(4));
    let (status, took) = healthz(&addr);
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    drop(idle);
}
