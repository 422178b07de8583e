//! A small HTTP load generator for `leadscore serve`: keep-alive
//! connections run as tasks on a few threads (`--threads`, default 2), so
//! the client takes little of the CPU it shares with the server, as wrk
//! does; no extra dependencies beyond tokio.
//!
//! ```sh
//! cargo run --release -p leadscore-server --example load -- ADDR KEY events --connections 64 --batch 1 --seconds 10
//! cargo run --release -p leadscore-server --example load -- ADDR KEY events --connections 64 --batch 1 --seconds 120 --rate 10000
//! cargo run --release -p leadscore-server --example load -- ADDR KEY events --connections 4 --batch 10000 --replay events.ndjson
//! cargo run --release -p leadscore-server --example load -- ADDR KEY score --connections 16 --contacts 100000
//! ```
//!
//! Events are `page_view`s of contacts drawn uniformly from `--contacts`
//! (every event of a batch lands on a random contact: the worst case for
//! the database's locality), or, with `--replay FILE`, the lines of an
//! NDJSON events file (`leadscore generate --format ndjson`) sent in file
//! order, `--batch` lines a request, until the file or `--seconds` ends.
//!
//! Without `--rate` each connection sends its next request as soon as the
//! answer to the last one arrives (closed loop: the figures are the
//! server's capacity, and latency at saturation). With `--rate R` the
//! connections together start R requests a second on a fixed schedule
//! (open loop). A request whose connection was still waiting for an answer
//! when it fell due is sent at once and its latency counts from the moment
//! it was due, so a slow answer that delays the next request is counted
//! against the server (no "coordinated omission"); a request whose
//! connection was idle counts from when it was sent, so the client's own
//! timer (1 ms grain) is not counted.
//!
//! Prints requests/s, events/s and latency percentiles.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The next of a connection's pseudo-random contacts (xorshift), below `contacts`.
fn next_contact(seed: &mut u64, contacts: u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed % contacts
}

/// Lines of an events file, handed out in file order to all connections.
struct Replay {
    lines: Vec<String>,
    next: AtomicUsize,
}

impl Replay {
    /// The next `batch` lines, or None once the file is used up.
    fn take(&self, batch: usize) -> Option<&[String]> {
        let start = self.next.fetch_add(batch, Ordering::Relaxed);
        if start >= self.lines.len() {
            return None;
        }
        Some(&self.lines[start..(start + batch).min(self.lines.len())])
    }
}

/// What every connection sends, and when to stop.
struct Plan {
    addr: String,
    key: String,
    mode: String,
    batch: u64,
    contacts: u64,
    connections: u64,
    /// Time between two requests of one connection under `--rate`.
    interval: Option<Duration>,
    replay: Option<Replay>,
    /// Distinguishes this run's event ids from an earlier run's.
    run: String,
    stop: AtomicBool,
}

/// What one connection measured.
#[derive(Default)]
struct Measured {
    /// Latency of each answered request.
    latencies: Vec<Duration>,
    /// Requests answered.
    requests: u64,
    /// Events the answered requests held.
    events: u64,
    /// Answers whose status was not 2xx (counted in the figures all the
    /// same, and reported: a run that measured errors is not a benchmark).
    failed: u64,
}

impl Plan {
    /// The next request of connection `t`, and the events it holds; None
    /// once a replayed file is used up.
    fn request(&self, t: u64, n: u64, seed: &mut u64) -> Option<(String, u64)> {
        if self.mode != "events" {
            return Some((
                format!(
                    "GET /v1/contacts/c{:05}/score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
                    next_contact(seed, self.contacts),
                    self.key
                ),
                0,
            ));
        }
        let mut body = String::from("[");
        let events = if let Some(replay) = &self.replay {
            let lines = replay.take(self.batch as usize)?;
            body.push_str(&lines.join(","));
            lines.len() as u64
        } else {
            for i in 0..self.batch {
                if i > 0 {
                    body.push(',');
                }
                body.push_str(&format!(
                    "{{\"id\":\"{}-{t}-{n}-{i}\",\"contact_id\":\"c{:05}\",\"type\":\"page_view\",\"timestamp\":\"2026-06-01T00:00:00Z\",\"properties\":{{\"url\":\"/pricing\"}}}}",
                    self.run,
                    next_contact(seed, self.contacts)
                ));
            }
            self.batch
        };
        body.push(']');
        Some((
            format!(
                "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                self.key,
                body.len()
            ),
            events,
        ))
    }
}

/// One keep-alive connection, sending until the plan stops.
async fn connection(t: u64, plan: Arc<Plan>) -> Measured {
    let stream = TcpStream::connect(&plan.addr).await.unwrap_or_else(|e| {
        eprintln!("load: cannot connect to {}: {e}", plan.addr);
        std::process::exit(2)
    });
    stream.set_nodelay(true).ok();
    let (read, mut writer) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut m = Measured::default();
    let mut seed = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    // Connections start their schedules spread over one interval.
    // Under `--rate`: when the next request is due, and the step between two.
    let mut schedule = plan.interval.map(|i| {
        (
            Instant::now() + i.mul_f64(t as f64 / plan.connections as f64),
            i,
        )
    });
    let mut line = String::new();
    let mut body = Vec::new();
    while !plan.stop.load(Ordering::Relaxed) {
        let Some((request, holds)) = plan.request(t, m.requests, &mut seed) else {
            break;
        };
        let start = match schedule {
            Some((at, step)) => {
                schedule = Some((at + step, step));
                if Instant::now() < at {
                    // Idle until due: count from the send, not the timer.
                    tokio::time::sleep_until(at.into()).await;
                    Instant::now()
                } else {
                    at
                }
            }
            None => Instant::now(),
        };
        if writer.write_all(request.as_bytes()).await.is_err() {
            break;
        }
        let mut length = 0usize;
        let mut status = true;
        loop {
            line.clear();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return m;
            }
            if status {
                status = false;
                if !line.starts_with("HTTP/1.1 2") {
                    m.failed += 1;
                }
            }
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        body.resize(length, 0);
        if reader.read_exact(&mut body).await.is_err() {
            break;
        }
        m.latencies.push(start.elapsed());
        m.requests += 1;
        m.events += holds;
    }
    m
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!(
            "usage: load ADDR KEY events|score [--connections N] [--threads T] [--seconds S] [--batch B] [--contacts C] [--rate R] [--replay FILE]"
        );
        std::process::exit(2);
    }
    let connections = arg(&args, "--connections", 16).max(1);
    let threads = arg(&args, "--threads", 2).clamp(1, connections);
    let seconds = arg(&args, "--seconds", 10);
    let rate = arg(&args, "--rate", 0);
    let replay = args
        .iter()
        .position(|a| a == "--replay")
        .and_then(|i| args.get(i + 1))
        .map(|path| {
            let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
                eprintln!("load: cannot read {path}: {e}");
                std::process::exit(2)
            });
            Replay {
                lines: text
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_owned)
                    .collect(),
                next: AtomicUsize::new(0),
            }
        });
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let plan = Arc::new(Plan {
        addr: args[1].clone(),
        key: args[2].clone(),
        mode: args[3].clone(),
        batch: arg(&args, "--batch", 1).max(1),
        contacts: arg(&args, "--contacts", 10_000).max(1),
        connections,
        interval: (rate > 0).then(|| Duration::from_secs_f64(connections as f64 / rate as f64)),
        replay,
        run: format!(
            "{:x}",
            clock.as_nanos() ^ u128::from(std::process::id()) << 20
        ),
        stop: AtomicBool::new(false),
    });
    let started = Instant::now();
    // Connection t runs on thread t % threads, each thread a runtime of its own.
    let workers: Vec<_> = (0..threads)
        .map(|th| {
            let plan = Arc::clone(&plan);
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap_or_else(|e| {
                        eprintln!("load: cannot start a runtime: {e}");
                        std::process::exit(2)
                    });
                runtime.block_on(async {
                    let tasks: Vec<_> = (th..connections)
                        .step_by(threads as usize)
                        .map(|t| tokio::spawn(connection(t, Arc::clone(&plan))))
                        .collect();
                    let mut measured = Vec::new();
                    for task in tasks {
                        if let Ok(m) = task.await {
                            measured.push(m);
                        }
                    }
                    measured
                })
            })
        })
        .collect();
    // Stop at `--seconds`, or earlier once every connection is done (a
    // replayed file used up).
    while started.elapsed() < Duration::from_secs(seconds)
        && workers.iter().any(|w| !w.is_finished())
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    plan.stop.store(true, Ordering::Relaxed);
    let mut all: Vec<Duration> = Vec::new();
    let (mut requests, mut events, mut failed) = (0, 0, 0);
    for w in workers {
        for m in w.join().unwrap_or_default() {
            all.extend(m.latencies);
            requests += m.requests;
            events += m.events;
            failed += m.failed;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    let mode = &plan.mode;
    println!(
        "{mode}: {connections} connections on {threads} threads{}, {requests} requests in {elapsed:.1} s: {:.0} requests/s{}, latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        if rate > 0 {
            format!(" at {rate} requests/s offered")
        } else {
            String::new()
        },
        requests as f64 / elapsed,
        if mode == "events" {
            format!(", {:.0} events/s", events as f64 / elapsed)
        } else {
            String::new()
        },
        pct(0.5),
        pct(0.99),
        pct(0.999),
        all.last().map_or(0.0, |d| d.as_secs_f64() * 1e3)
    );
    if failed > 0 {
        println!(
            "{failed} of the {requests} answers were not 2xx: these figures do not measure the intended work"
        );
    }
}
