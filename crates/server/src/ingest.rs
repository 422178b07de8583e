//! Group commit for events: concurrent requests hand their rows to one
//! writer thread, which stores everything waiting in a single durable
//! transaction (one fsync for many requests) and answers each request with
//! its own per-event outcome. Under load, many small POSTs cost about as
//! much as one large batch; alone, a request waits for no one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use leadscore_batch::rows::EventRow;
use leadscore_core::Timestamp;
use leadscore_store::Store;
use leadscore_store::checkpoint::{
    Checkpointer, LOG_LIMIT_BYTES, RESTART_BYTES, WRITER_BACKSTOP_BYTES,
};
use leadscore_store::import::PARALLEL_FROM;
use leadscore_store::store::SERVICE_CACHE_KIB;
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;
use crate::metrics::Metrics;

/// Most events stored in one group transaction.
pub const MAX_GROUP: usize = 20_000;

/// Requests waiting for the writer, at most.
const QUEUE: usize = 1024;

struct Job {
    rows: Vec<EventRow>,
    now: Timestamp,
    reply: oneshot::Sender<Result<Vec<bool>, String>>,
}

/// The handle requests use to reach the writer.
#[derive(Clone)]
pub struct Ingest {
    jobs: mpsc::Sender<Job>,
}

impl Ingest {
    /// Starts the writer thread on the shared database.
    pub fn start(store: Arc<Mutex<Store>>, metrics: Arc<Metrics>) -> Ingest {
        // Many small commits: a small page cache (see SERVICE_CACHE_KIB).
        // Failing to set it only costs speed.
        if let Ok(guard) = store.lock() {
            let _ = guard.set_cache_kib(SERVICE_CACHE_KIB);
        }
        start_checkpointer(&store);
        let (tx, mut rx) = mpsc::channel::<Job>(QUEUE);
        // The writer's parallel parts (matching, scoring) get threads of
        // their own: in the shared pool they would queue behind a long read
        // (a leaderboard scoring a million contacts), and so would every
        // request waiting for the commit.
        let pool = rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("leadscore-writer-{i}"))
            .build();
        std::thread::Builder::new()
            .name("leadscore-writer".into())
            .spawn(move || {
                while let Some(first) = rx.blocking_recv() {
                    let mut jobs = vec![first];
                    let mut total = jobs[0].rows.len();
                    while total < MAX_GROUP {
                        match rx.try_recv() {
                            Ok(j) => {
                                total += j.rows.len();
                                jobs.push(j);
                            }
                            Err(_) => break,
                        }
                    }
                    metrics.group(jobs.len() as u64, total as u64);
                    let now = jobs.iter().map(|j| j.now).max().unwrap_or(Timestamp(0));
                    let sizes: Vec<usize> = jobs.iter().map(|j| j.rows.len()).collect();
                    let mut rows = Vec::with_capacity(total);
                    let mut replies = Vec::with_capacity(jobs.len());
                    for j in jobs {
                        rows.extend(j.rows);
                        replies.push(j.reply);
                    }
                    let started = std::time::Instant::now();
                    let result = match store.lock() {
                        Ok(mut guard) => {
                            let s: &mut Store = &mut guard;
                            match &pool {
                                // A small group is stored on this thread
                                // without the pool (see PARALLEL_FROM).
                                Ok(pool) if total >= PARALLEL_FROM => {
                                    pool.install(move || s.ingest_events(rows, now))
                                }
                                _ => s.ingest_events(rows, now),
                            }
                        }
                        .map_err(|e| e.to_string()),
                        Err(_) => Err("database lock poisoned".to_owned()),
                    };
                    metrics.commit_time(started.elapsed().as_secs_f64());
                    match result {
                        Ok(flags) => {
                            let mut at = 0;
                            for (reply, n) in replies.into_iter().zip(sizes) {
                                let _ = reply.send(Ok(flags[at..at + n].to_vec()));
                                at += n;
                            }
                        }
                        Err(e) => {
                            for reply in replies {
                                let _ = reply.send(Err(e.clone()));
                            }
                        }
                    }
                }
            })
            .ok();
        Ingest { jobs: tx }
    }

    /// Stores events; returns, per event, whether it was new, once the
    /// transaction holding them is committed.
    pub async fn store(&self, rows: Vec<EventRow>, now: Timestamp) -> Result<Vec<bool>, ApiError> {
        let internal =
            |m: String| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "internal", m);
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { rows, now, reply })
            .await
            .map_err(|_| internal("the database writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| internal("the database writer has stopped".into()))?
            .map_err(internal)
    }
}

/// Starts a thread that copies the write-ahead log into the database file
/// on its own connection, so commits (and the requests waiting on them)
/// rarely wait for a checkpoint, and every `RESTART_BYTES` of log holds
/// the writer off for one short last pass so the log starts over
/// (`Checkpointer::restart`); the writer keeps a higher automatic
/// threshold as a backstop. The thread ends with the service's database.
/// If the checkpointing connection cannot be opened, SQLite's automatic
/// checkpoints simply stay as they are.
fn start_checkpointer(store: &Arc<Mutex<Store>>) {
    let Ok(guard) = store.lock() else { return };
    let Ok(checkpointer) = Checkpointer::open(guard.path()) else {
        return;
    };
    if guard
        .set_autocheckpoint_bytes(WRITER_BACKSTOP_BYTES)
        .is_err()
    {
        return;
    }
    drop(guard);
    let weak = Arc::downgrade(store);
    std::thread::Builder::new()
        .name("leadscore-checkpoint".into())
        .spawn(move || {
            // The log size at which the next restart is tried, and the size
            // seen by the pass before (a smaller one: the log started over).
            let mut restart_at = RESTART_BYTES;
            let mut last = 0;
            while weak.strong_count() > 0 {
                let Ok(pass) = checkpointer.pass() else {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                };
                let bytes = pass.log_bytes();
                if bytes < last {
                    restart_at = RESTART_BYTES;
                }
                last = bytes;
                if bytes > LOG_LIMIT_BYTES {
                    // Reads following one another kept old pages in use:
                    // wait for them once rather than let the log grow.
                    let _ = checkpointer.reset();
                } else if bytes > restart_at {
                    let Some(store) = weak.upgrade() else { break };
                    let _ = checkpointer.restart(|| store.lock().ok());
                    // Done, the log shrinks and the mark goes back; not
                    // done (a long read), try again a step further on.
                    restart_at = bytes.saturating_add(RESTART_BYTES);
                }
                // Busy: look again soon; idle: now and then.
                let pause = if pass.log > 0 { 20 } else { 100 };
                std::thread::sleep(Duration::from_millis(pause));
            }
        })
        .ok();
}
