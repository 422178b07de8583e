//! A small HTTP load generator for `leadscore serve` (keep-alive
//! connections on threads; no extra dependencies):
//!
//! ```sh
//! cargo run --release -p leadscore-server --example load -- ADDR KEY events --connections 64 --batch 1 --seconds 10
//! cargo run --release -p leadscore-server --example load -- ADDR KEY events --connections 64 --batch 1 --seconds 30 --rate 10000
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
//! (open loop), and each latency counts from the moment its request was
//! due, not from when it was sent, so a slow answer that delays the next
//! request is counted against the server (no "coordinated omission").
//!
//! Prints requests/s, events/s and latency percentiles.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!(
            "usage: load ADDR KEY events|score [--connections N] [--seconds S] [--batch B] [--contacts C] [--rate R] [--replay FILE]"
        );
        std::process::exit(2);
    }
    let (addr, key, mode) = (args[1].clone(), args[2].clone(), args[3].clone());
    let connections = arg(&args, "--connections", 16).max(1);
    let seconds = arg(&args, "--seconds", 10);
    let batch = arg(&args, "--batch", 1).max(1);
    let contacts = arg(&args, "--contacts", 10_000).max(1);
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
            Arc::new(Replay {
                lines: text
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_owned)
                    .collect(),
                next: AtomicUsize::new(0),
            })
        });
    // Time between two requests of one connection under `--rate`.
    let interval = (rate > 0).then(|| Duration::from_secs_f64(connections as f64 / rate as f64));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let run = format!(
        "{:x}",
        started.elapsed().as_nanos() ^ u128::from(std::process::id()) << 20
    );
    let threads: Vec<_> = (0..connections)
        .map(|t| {
            let (addr, key, mode, stop, run, replay) =
                (addr.clone(), key.clone(), mode.clone(), Arc::clone(&stop), run.clone(), replay.clone());
            std::thread::spawn(move || {
                let stream = TcpStream::connect(&addr).expect("connect");
                stream.set_nodelay(true).ok();
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut writer = stream;
                let mut latencies = Vec::new();
                let (mut n, mut events): (u64, u64) = (0, 0);
                let mut seed = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                // Connections start their schedules spread over one interval.
                let mut schedule = interval.map(|i| (Instant::now() + i.mul_f64(t as f64 / connections as f64), i));
                while !stop.load(Ordering::Relaxed) {
                    let request = if mode == "events" {
                        let mut body = String::from("[");
                        if let Some(replay) = &replay {
                            let Some(lines) = replay.take(batch as usize) else { break };
                            body.push_str(&lines.join(","));
                            events += lines.len() as u64;
                        } else {
                            for i in 0..batch {
                                if i > 0 {
                                    body.push(',');
                                }
                                                                body.push_str(&format!(
                                    "{{\"id\":\"{run}-{t}-{n}-{i}\",\"contact_id\":\"c{}\",\"type\":\"page_view\",\"timestamp\":\"2026-06-01T00:00:00Z\",\"properties\":{{\"url\":\"/pricing\"}}}}",
                                    next_contact(&mut seed, contacts)
                                ));
                            }
                            events += batch;
                        }
                        body.push(']');
                        format!(
                            "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        )
                    } else {
                        format!(
                            "GET /v1/contacts/c{:05}/score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n",
                            next_contact(&mut seed, contacts)
                        )
                    };
                    let sent = match schedule {
                        Some((at, step)) => {
                            std::thread::sleep(at.saturating_duration_since(Instant::now()));
                            schedule = Some((at + step, step));
                            at
                        }
                        None => Instant::now(),
                    };
                    if writer.write_all(request.as_bytes()).is_err() {
                        break;
                    }
                    let mut length = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return (latencies, n, events);
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0u8; length];
                    if reader.read_exact(&mut body).is_err() {
                        break;
                    }
                    latencies.push(sent.elapsed());
                    n += 1;
                }
                (latencies, n, events)
            })
        })
        .collect();
    // Stop at `--seconds`, or earlier once every connection is done (a
    // replayed file used up).
    while started.elapsed() < Duration::from_secs(seconds)
        && threads.iter().any(|t| !t.is_finished())
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<Duration> = Vec::new();
    let (mut requests, mut events) = (0, 0);
    for t in threads {
        if let Ok((l, n, e)) = t.join() {
            all.extend(l);
            requests += n;
            events += e;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "{mode}: {connections} connections{}, {requests} requests in {elapsed:.1} s: {:.0} requests/s{}, latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
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
}
