//! Events in: group commit into the inbox, stored in the database behind.
//!
//! Concurrent requests hand their rows to one writer thread
//! (`leadscore-writer`). It checks each event for a repeated id (within
//! the group, among the events not stored yet, then in the database),
//! appends the new ones of every waiting request to the inbox
//! ([`leadscore_store::Inbox`]) in one record, flushes it (one
//! `fdatasync` for many requests) and answers each request with its own
//! per-event outcome. A second thread (`leadscore-store`) stores the
//! inbox's groups in the database many at a time, matching and scoring
//! them, in transactions that also record the last group they hold; after
//! a crash the next open stores what is left. A large batch costs the
//! database writer a fraction of what a small group does (see
//! `docs/performance.md`), and a request waits only for the inbox's flush.
//!
//! What a read sees does not change: a request that reads a contact waits
//! until the events acknowledged for that contact are stored
//! ([`Backlog::wait_contact`]), and every other read or write waits for all
//! events acknowledged before it ([`Backlog::wait_all`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use leadscore_batch::rows::EventRow;
use leadscore_core::Timestamp;
use leadscore_store::{
    Checkpointer, Inbox, InboxGroup, LOG_LIMIT_BYTES, PARALLEL_FROM, RESTART_BYTES, Store,
    StoreError, StoreReader, WRITER_BACKSTOP_BYTES, record_bytes,
};
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::state::not_stored;

/// Most events appended to the inbox in one group.
pub const MAX_GROUP: usize = 20_000;

/// Bytes of events (as the inbox writes them, [`record_bytes`]) past which
/// the writer takes no more requests into a group: 64 MiB. With one
/// request of at most 32 MiB over it, a group stays well inside one inbox
/// record (`MAX_RECORD_BYTES`, 512 MiB) however many large requests wait.
pub const MAX_GROUP_BYTES: usize = 64 << 20;

/// Most events stored in the database in one transaction.
pub const MAX_STORE: usize = 20_000;

/// Inbox size, in bytes, past which the writer rewrites it with only the
/// groups not stored yet (or empties it when all are).
pub const INBOX_REWRITE_BYTES: u64 = 64 << 20;

/// Most events acknowledged and not stored yet: past it the writer waits
/// for the storing thread before it takes more, so a sustained flood of
/// batches is answered at the rate the database stores them, and a read
/// never waits for more than about this many events.
pub const MAX_BACKLOG: usize = 40_000;

/// Least time between two transactions storing inbox events, unless a
/// request waits for them: more events per transaction cost the database
/// writer less each, and nobody waits for them in the meantime.
pub const STORE_EVERY: Duration = Duration::from_millis(100);

/// Longest a request waits for acknowledged events to be stored before it
/// is answered 503.
pub const STORE_WAIT: Duration = Duration::from_secs(30);

/// Requests waiting for the writer, at most.
const QUEUE: usize = 1024;

struct Job {
    rows: Vec<EventRow>,
    now: Timestamp,
    reply: oneshot::Sender<Result<Vec<bool>, String>>,
}

/// What the writer has acknowledged and the storing thread has not stored
/// yet; reads and writes wait on it.
#[derive(Default)]
pub struct Backlog {
    state: Mutex<BacklogState>,
    stored: Condvar,
    /// Wakes the storing thread early: a request waits.
    hurry: Condvar,
}

#[derive(Default)]
struct BacklogState {
    /// Ids of the events acknowledged and not stored yet.
    ids: HashSet<String>,
    /// Contacts with events not stored yet: the last group holding one.
    contacts: HashMap<String, u64>,
    /// The last group acknowledged.
    acked: u64,
    /// The last group stored in the database.
    stored: u64,
    /// Why storing fails, while it does (it is tried again).
    failing: Option<String>,
    /// A request waits for events not stored yet.
    waited: bool,
    /// Events acknowledged and not stored yet.
    events: usize,
}

impl Backlog {
    /// Waits until every event acknowledged before this call is stored in
    /// the database (at most [`STORE_WAIT`]).
    pub fn wait_all(&self) -> Result<(), String> {
        let target = self.state.lock().map_err(|_| poisoned())?.acked;
        self.wait_for(target)
    }

    /// Waits until the events acknowledged for contact `id` before this
    /// call are stored (none waiting: at once).
    pub fn wait_contact(&self, id: &str) -> Result<(), String> {
        let target = {
            let st = self.state.lock().map_err(|_| poisoned())?;
            st.contacts.get(id).copied().unwrap_or(0)
        };
        self.wait_for(target)
    }

    /// The writer's brake: waits while more than [`MAX_BACKLOG`] events
    /// are not stored yet (the storing thread is told to hurry).
    fn wait_below(&self, limit: usize) -> Result<(), String> {
        let mut st = self.state.lock().map_err(|_| poisoned())?;
        while st.events > limit {
            st.waited = true;
            self.hurry.notify_one();
            st = self
                .stored
                .wait_timeout(st, Duration::from_secs(1))
                .map_err(|_| poisoned())?
                .0;
        }
        Ok(())
    }

    fn wait_for(&self, target: u64) -> Result<(), String> {
        let deadline = Instant::now() + STORE_WAIT;
        let mut st = self.state.lock().map_err(|_| poisoned())?;
        if st.stored < target {
            st.waited = true;
            self.hurry.notify_one();
        }
        while st.stored < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(match &st.failing {
                    Some(e) => format!("acknowledged events are not stored yet: {e}"),
                    None => "acknowledged events are not stored yet (the database is busy)".into(),
                });
            }
            st = self
                .stored
                .wait_timeout(st, left)
                .map_err(|_| poisoned())?
                .0;
        }
        Ok(())
    }

    /// The storing thread's pause: returns at `until`, or at once when a
    /// request waits for events not stored yet.
    fn pause_until(&self, until: Instant) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        while !st.waited {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.hurry.wait_timeout(st, left) {
                Ok((g, _)) => st = g,
                Err(_) => return,
            }
        }
        st.waited = false;
    }
}

fn poisoned() -> String {
    "event backlog lock poisoned".to_owned()
}

/// The handle requests use to reach the writer.
#[derive(Clone)]
pub struct Ingest {
    jobs: mpsc::Sender<Job>,
    /// Events acknowledged and not stored yet.
    pub backlog: Arc<Backlog>,
}

impl Ingest {
    /// Takes the database's inbox (stored already by `Store::open`) and
    /// starts the writer and the storing thread on the shared database.
    /// Fails if another process owns the inbox (a service on the same
    /// database).
    pub fn start(store: Arc<Mutex<Store>>, metrics: Arc<Metrics>) -> Result<Ingest, StoreError> {
        Ingest::start_with(store, metrics, INBOX_REWRITE_BYTES)
    }

    /// [`Ingest::start`] rewriting the inbox past `rewrite_bytes`.
    fn start_with(
        store: Arc<Mutex<Store>>,
        metrics: Arc<Metrics>,
        rewrite_bytes: u64,
    ) -> Result<Ingest, StoreError> {
        let (inbox, reader) = {
            let mut guard = store
                .lock()
                .map_err(|_| StoreError::Corrupt("database lock poisoned".into()))?;
            // Many small commits of other writes (webhooks, ticks): a small
            // page cache. Failing to set it only costs speed.
            let _ = guard.set_service_cache();
            let applied = guard.inbox_applied()?;
            let Some((inbox, left)) = Inbox::open(guard.path(), applied)? else {
                return Err(StoreError::Io {
                    path: leadscore_store::inbox_path(guard.path()),
                    source: std::io::Error::other(
                        "another process owns this database's inbox: is a service already running on it?",
                    ),
                });
            };
            if left.iter().any(|g| g.seq > applied) {
                return Err(StoreError::Corrupt(
                    "the inbox holds events the database does not (open the database again)".into(),
                ));
            }
            (inbox, StoreReader::open(guard.path())?)
        };
        start_checkpointer(&store);
        let backlog = Arc::new(Backlog::default());
        let (tx, rx) = mpsc::channel::<Job>(QUEUE);
        let (groups_tx, groups_rx) = std::sync::mpsc::channel::<Arc<InboxGroup>>();
        let writer = Writer {
            inbox,
            rewrite_bytes,
            reader,
            backlog: Arc::clone(&backlog),
            metrics: Arc::clone(&metrics),
            unstored: VecDeque::new(),
            groups: groups_tx,
        };
        std::thread::Builder::new()
            .name("leadscore-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Io {
                path: "leadscore-writer thread".into(),
                source: e,
            })?;
        let storer_backlog = Arc::clone(&backlog);
        std::thread::Builder::new()
            .name("leadscore-store".into())
            .spawn(move || store_groups(store, groups_rx, storer_backlog, metrics))
            .map_err(|e| StoreError::Io {
                path: "leadscore-store thread".into(),
                source: e,
            })?;
        Ok(Ingest { jobs: tx, backlog })
    }

    /// Takes events; returns, per event, whether it was new, once the new
    /// ones are in the inbox, flushed to the disk.
    pub async fn store(&self, rows: Vec<EventRow>, now: Timestamp) -> Result<Vec<bool>, ApiError> {
        let stopped = || not_stored("the events writer has stopped".into());
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { rows, now, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?.map_err(not_stored)
    }
}

/// The writer thread's state.
struct Writer {
    inbox: Inbox,
    /// Inbox size past which it is rewritten ([`INBOX_REWRITE_BYTES`]).
    rewrite_bytes: u64,
    /// A reading handle, for the duplicate check against the database.
    reader: StoreReader,
    backlog: Arc<Backlog>,
    metrics: Arc<Metrics>,
    /// The groups appended and not known to be stored yet (kept for an
    /// inbox rewrite).
    unstored: VecDeque<Arc<InboxGroup>>,
    groups: std::sync::mpsc::Sender<Arc<InboxGroup>>,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        while let Some(first) = rx.blocking_recv() {
            let (jobs, total) = gather_jobs(first, &mut rx, MAX_GROUP_BYTES);
            self.metrics.group(jobs.len() as u64, total as u64);
            let now = jobs.iter().map(|j| j.now).max().unwrap_or(Timestamp(0));
            let sizes: Vec<usize> = jobs.iter().map(|j| j.rows.len()).collect();
            let mut rows = Vec::with_capacity(total);
            let mut replies = Vec::with_capacity(jobs.len());
            for j in jobs {
                rows.extend(j.rows);
                replies.push(j.reply);
            }
            let started = Instant::now();
            let result = self.take(rows, now);
            self.metrics.commit_time(started.elapsed().as_secs_f64());
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
    }

    /// Checks `rows` for repeated ids, appends the new ones to the inbox
    /// as one group, and hands it to the storing thread. Per row: new.
    fn take(&mut self, rows: Vec<EventRow>, now: Timestamp) -> Result<Vec<bool>, String> {
        let mut new = vec![true; rows.len()];
        {
            // Within the group: the first of two events with one id stays.
            let mut seen = HashSet::with_capacity(rows.len());
            for (i, r) in rows.iter().enumerate() {
                new[i] = seen.insert(r.id.as_str());
            }
        }
        {
            // Acknowledged, not stored yet. An id stored and let go since
            // is in the database, read below (after this check).
            let st = self.backlog.state.lock().map_err(|_| poisoned())?;
            for (i, r) in rows.iter().enumerate() {
                if new[i] && st.ids.contains(&r.id) {
                    new[i] = false;
                }
            }
        }
        let ask: Vec<usize> = (0..rows.len()).filter(|&i| new[i]).collect();
        let ids: Vec<&str> = ask.iter().map(|&i| rows[i].id.as_str()).collect();
        let stored = if ids.is_empty() {
            Vec::new()
        } else {
            self.reader
                .snapshot(|s| s.stored_event_ids(&ids))
                .map_err(|e: StoreError| e.to_string())?
        };
        for (&i, stored) in ask.iter().zip(stored) {
            if stored {
                new[i] = false;
            }
        }
        let fresh: Vec<EventRow> = rows
            .into_iter()
            .zip(&new)
            .filter_map(|(r, &n)| n.then_some(r))
            .collect();
        if fresh.is_empty() {
            return Ok(new);
        }
        self.backlog.wait_below(MAX_BACKLOG)?;
        self.keep_inbox_small()?;
        let seq = self.inbox.append(now, &fresh).map_err(|e| e.to_string())?;
        {
            let mut st = self.backlog.state.lock().map_err(|_| poisoned())?;
            st.events += fresh.len();
            for r in &fresh {
                st.ids.insert(r.id.clone());
                st.contacts.insert(r.contact_id.clone(), seq);
            }
            st.acked = seq;
        }
        self.metrics.inbox(fresh.len() as i64);
        let group = Arc::new(InboxGroup {
            seq,
            now,
            rows: fresh,
        });
        self.unstored.push_back(Arc::clone(&group));
        // The storing thread only stops when this one does.
        let _ = self.groups.send(group);
        Ok(new)
    }

    /// Past `rewrite_bytes`, empties the inbox if every group in it
    /// is stored, or rewrites it with the groups that are not.
    /// Also lets go of the groups stored since the last call.
    fn keep_inbox_small(&mut self) -> Result<(), String> {
        let stored = self.backlog.state.lock().map_err(|_| poisoned())?.stored;
        while self.unstored.front().is_some_and(|g| g.seq <= stored) {
            self.unstored.pop_front();
        }
        if self.inbox.len() < self.rewrite_bytes {
            return Ok(());
        }
        if self.unstored.is_empty() {
            self.inbox.clear()
        } else {
            self.inbox.rewrite(self.unstored.iter().map(|g| g.as_ref()))
        }
        .map_err(|e| e.to_string())
    }
}

/// `first` and the requests waiting behind it, until [`MAX_GROUP`] events
/// or `max_bytes` bytes of them; returns them and their event count.
fn gather_jobs(first: Job, rx: &mut mpsc::Receiver<Job>, max_bytes: usize) -> (Vec<Job>, usize) {
    let mut bytes = record_bytes(&first.rows);
    let next = || {
        if bytes >= max_bytes {
            return None;
        }
        let job = rx.try_recv().ok()?;
        bytes += record_bytes(&job.rows);
        Some(job)
    };
    gather(first, next, |j| j.rows.len(), MAX_GROUP)
}

/// `first` and whatever else is waiting (`next`), until `max` events;
/// returns them and their event count.
fn gather<T>(
    first: T,
    mut next: impl FnMut() -> Option<T>,
    events: impl Fn(&T) -> usize,
    max: usize,
) -> (Vec<T>, usize) {
    let mut total = events(&first);
    let mut items = vec![first];
    while total < max {
        let Some(item) = next() else { break };
        total += events(&item);
        items.push(item);
    }
    (items, total)
}

/// The storing thread: stores the inbox's groups in the database, as many
/// at a time as are waiting (up to [`MAX_STORE`] events), then lets the
/// requests waiting for them go. A failed transaction is tried again a
/// second later (the groups are safe in the inbox meanwhile).
fn store_groups(
    store: Arc<Mutex<Store>>,
    groups: std::sync::mpsc::Receiver<Arc<InboxGroup>>,
    backlog: Arc<Backlog>,
    metrics: Arc<Metrics>,
) {
    // The parallel parts (matching, scoring) get threads of their own: in
    // the shared pool they would queue behind a long read (a leaderboard
    // scoring a million contacts).
    let pool = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("leadscore-store-{i}"))
        .build();
    let mut last_start = Instant::now();
    while let Ok(first) = groups.recv() {
        backlog.pause_until(last_start + STORE_EVERY);
        last_start = Instant::now();
        let (batch, total) = gather(
            first,
            || groups.try_recv().ok(),
            |g| g.rows.len(),
            MAX_STORE,
        );
        let now = batch.iter().map(|g| g.now).max().unwrap_or(Timestamp(0));
        let through = batch.last().map_or(0, |g| g.seq);
        loop {
            let rows: Vec<EventRow> = batch.iter().flat_map(|g| g.rows.iter().cloned()).collect();
            let started = Instant::now();
            let result = match store.lock() {
                Ok(mut guard) => {
                    let s: &mut Store = &mut guard;
                    match &pool {
                        Ok(pool) if total >= PARALLEL_FROM => {
                            pool.install(move || s.ingest_inbox(rows, now, through))
                        }
                        _ => s.ingest_inbox(rows, now, through),
                    }
                    .map_err(|e| e.to_string())
                }
                Err(_) => Err("database lock poisoned".to_owned()),
            };
            match result {
                Ok(_) => {
                    metrics.store_time(total as u64, started.elapsed().as_secs_f64());
                    metrics.inbox(-(total as i64));
                    if let Ok(mut st) = backlog.state.lock() {
                        for g in &batch {
                            for r in &g.rows {
                                st.ids.remove(&r.id);
                                if st
                                    .contacts
                                    .get(&r.contact_id)
                                    .is_some_and(|&s| s <= through)
                                {
                                    st.contacts.remove(&r.contact_id);
                                }
                            }
                        }
                        st.stored = through;
                        st.events = st.events.saturating_sub(total);
                        st.failing = None;
                    }
                    backlog.stored.notify_all();
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, "storing acknowledged events failed (tried again in 1 s)");
                    if let Ok(mut st) = backlog.state.lock() {
                        st.failing = Some(e);
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
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
    let Ok(mut guard) = store.lock() else { return };
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

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = include_str!("../../../examples/starter-model.toml");

    fn event(i: usize) -> EventRow {
        EventRow {
            id: format!("e{i}"),
            contact_id: format!("c{}", i % 7),
            event_type: "page_view".into(),
            at: Timestamp(1_780_000_000_000_000_000 + i as i64),
            properties: vec![("url".into(), "/pricing".into())],
        }
    }

    /// Events the writer cannot take are answered 503 `not_stored` (a
    /// sender tries again), whether it stopped or failed on the disk.
    #[test]
    fn events_not_taken_are_answered_503() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (tx, mut rx) = mpsc::channel::<Job>(1);
        let ingest = Ingest {
            jobs: tx,
            backlog: Arc::new(Backlog::default()),
        };
        let failing = std::thread::spawn(move || {
            if let Some(job) = rx.blocking_recv() {
                let _ = job
                    .reply
                    .send(Err("/db-inbox: No space left on device".into()));
            }
        });
        let err = rt
            .block_on(ingest.store(vec![event(1)], Timestamp(0)))
            .unwrap_err();
        failing.join().unwrap();
        assert_eq!(
            (err.status, err.code),
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, "not_stored")
        );
        assert!(err.message.contains("No space left"), "{}", err.message);
        // The writer gone (its end of the queue dropped): the same answer.
        let err = rt
            .block_on(ingest.store(vec![event(2)], Timestamp(0)))
            .unwrap_err();
        assert_eq!(
            (err.status, err.code),
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, "not_stored")
        );
    }

    /// Large requests waiting are split over groups by their bytes; small
    /// ones by their event count; every request goes whole into one group
    /// and none is skipped.
    #[test]
    fn a_group_is_bounded_by_bytes_and_by_events() {
        let job = |from: usize, n: usize| {
            let (reply, _) = oneshot::channel();
            Job {
                rows: (from..from + n).map(event).collect(),
                now: Timestamp(0),
                reply,
            }
        };
        let one = record_bytes(&[event(0)]);
        let (tx, mut rx) = mpsc::channel(QUEUE);
        // Ten requests of 100 events each; groups of at most ~250 events'
        // bytes: three requests (the third crosses the bound), three, three, one.
        for i in 0..9 {
            tx.try_send(job(100 * (i + 1), 100)).unwrap();
        }
        let mut sizes = Vec::new();
        let mut first = Some(job(0, 100));
        while let Some(f) = first.take() {
            let (jobs, total) = gather_jobs(f, &mut rx, 250 * one);
            assert_eq!(total, jobs.iter().map(|j| j.rows.len()).sum::<usize>());
            sizes.push(
                jobs.iter()
                    .map(|j| j.rows[0].id.clone())
                    .collect::<Vec<_>>(),
            );
            first = rx.try_recv().ok();
        }
        let firsts: Vec<usize> = sizes.iter().map(Vec::len).collect();
        assert_eq!(firsts, [3, 3, 3, 1]);
        let ids: Vec<String> = sizes.concat();
        let want: Vec<String> = (0..10).map(|i| format!("e{}", 100 * i)).collect();
        assert_eq!(ids, want);
        // Small requests: the event bound (MAX_GROUP) ends the group first.
        for i in 0..3 {
            tx.try_send(job(i * MAX_GROUP, MAX_GROUP / 2)).unwrap();
        }
        let f = rx.try_recv().unwrap();
        let (jobs, total) = gather_jobs(f, &mut rx, MAX_GROUP_BYTES);
        assert_eq!((jobs.len(), total), (2, MAX_GROUP));
    }

    /// Bytes of whole records at the start of an inbox file (its zeros
    /// written ahead left out).
    fn records_len(bytes: &[u8]) -> usize {
        let mut at = 0;
        while at + 8 <= bytes.len() {
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            if len == 0 {
                break;
            }
            at += 8 + len;
        }
        at
    }

    /// Past its size limit the inbox keeps only the groups not stored
    /// yet (emptied when all are), and nothing acknowledged is lost: every
    /// event is in the database once, and a new open finds nothing to add.
    #[test]
    fn the_inbox_stays_small_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let now = Timestamp(1_780_000_000_000_000_000);
        let store = Arc::new(Mutex::new(Store::create(&db, MODEL, now).unwrap()));
        let ingest = Ingest::start_with(Arc::clone(&store), Arc::default(), 2_048).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let inbox = leadscore_store::inbox_path(&db);
        let mut largest = 0;
        for i in 0..400 {
            let flags = runtime
                .block_on(ingest.store(vec![event(i), event(i)], now))
                .unwrap();
            assert_eq!(flags, [true, false]);
            if i % 3 == 0 {
                // Some groups are stored before the next append, some not.
                ingest.backlog.wait_all().unwrap();
            }
            largest = largest.max(records_len(&std::fs::read(&inbox).unwrap()));
        }
        // One group is about 120 bytes: the file never held much more than
        // the limit.
        assert!(largest < 2_048 + 1_024, "{largest}");
        ingest.backlog.wait_all().unwrap();
        assert_eq!(
            runtime.block_on(ingest.store(vec![event(5)], now)).unwrap(),
            [false]
        );
        let counts = store.lock().unwrap().counts().unwrap();
        assert_eq!(counts, (7, 400));
        drop(ingest);
        drop(store);
        // The writer thread lets the inbox go once its channel closes.
        let deadline = Instant::now() + Duration::from_secs(10);
        let reopened = loop {
            let s = Store::open(&db).unwrap();
            if Inbox::open(&db, 0).unwrap().is_some() || Instant::now() > deadline {
                break s;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(reopened.counts().unwrap(), (7, 400));
        assert_eq!(reopened.check().unwrap(), Vec::<String>::new());
    }
}
