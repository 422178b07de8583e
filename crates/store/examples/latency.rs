//! Latency of applying one event and reading one score on an existing
//! database (made by `benches/store.sh`):
//!
//! `cargo run --release -p leadscore-store --example latency -- DB [N]`
//!
//! Prints p50 / p99 for: one event per durable commit; the same without
//! waiting for the disk (what the fsync costs); events in batches of 100
//! (per event); and reading one contact's score.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use leadscore_batch::generate::Rng;
use leadscore_batch::rows::EventRow;
use leadscore_core::Timestamp;
use leadscore_store::{ScoreFilter, Store};

fn percentiles(mut v: Vec<Duration>) -> String {
    v.sort();
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    format!(
        "p50 {:>8.3} ms  p99 {:>8.3} ms  (n = {})",
        p(0.5).as_secs_f64() * 1e3,
        p(0.99).as_secs_f64() * 1e3,
        v.len()
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let db = PathBuf::from(args.next().ok_or("usage: latency DB [N]")?);
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let mut store = Store::open(&db)?;
    let now = Timestamp::parse("2026-06-30T00:00:00Z")?;
    let ids: Vec<String> = store
        .scores(now, &ScoreFilter::default())?
        .into_iter()
        .map(|s| s.id)
        .collect();
    let mut rng = Rng::new(7, std::process::id() as u64);
    let mut serial = 0u64;
    let mut event = |rng: &mut Rng| {
        serial += 1;
        EventRow {
            id: format!("latency-{}-{serial}", std::process::id()),
            contact_id: ids[rng.below(ids.len() as u64) as usize].clone(),
            event_type: "page_view".into(),
            at: now,
            properties: vec![("url".into(), "/pricing".into())],
        }
    };
    for durable in [true, false] {
        store.set_durable(durable)?;
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            let e = event(&mut rng);
            let t = Instant::now();
            store.ingest_events(vec![e], now)?;
            times.push(t.elapsed());
        }
        let label = if durable {
            "durable commit"
        } else {
            "no disk wait"
        };
        println!("one event per commit ({label}): {}", percentiles(times));
    }
    store.set_durable(true)?;
    let mut per_event = Vec::new();
    for _ in 0..(n / 100).max(5) {
        let batch: Vec<EventRow> = (0..100).map(|_| event(&mut rng)).collect();
        let t = Instant::now();
        store.ingest_events(batch, now)?;
        per_event.push(t.elapsed() / 100);
    }
    println!(
        "events in batches of 100, per event (durable): {}",
        percentiles(per_event)
    );
    let mut reads = Vec::with_capacity(n);
    for _ in 0..n {
        let id = &ids[rng.below(ids.len() as u64) as usize];
        let t = Instant::now();
        store.contact_score(id, now)?;
        reads.push(t.elapsed());
    }
    println!("read one score: {}", percentiles(reads));
    Ok(())
}
