//! What every request shares: the database (one writing handle behind a
//! mutex, and reading handles that never wait for it, all used from
//! blocking threads), the key cache, the metrics and the clock.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use leadscore_core::Timestamp;
use leadscore_store::{Scope, Store, StoreError, StoreReader};

use crate::error::ApiError;
use crate::metrics::Metrics;

/// How long a checked key is trusted before the database is asked again
/// (so a revoked key stops working within this time).
pub const KEY_CACHE: Duration = Duration::from_secs(10);

/// Checked keys by hash: their scope (`None`: unknown or revoked) and when
/// they were checked.
type KeyCache = HashMap<String, (Option<Grant>, Instant)>;

/// What a live key may do: its scope and, for an ingest key, the web
/// origins it may be used from (empty: any).
#[derive(Clone, Debug)]
pub struct Grant {
    /// The key's scope.
    pub scope: Scope,
    /// The origins an ingest key is bound to.
    pub origins: Arc<[String]>,
}

/// Reading handles on the database: requests that only read run on one of
/// them, so they never wait for the writer's transactions (an event batch,
/// a tick) and the writer never waits for them (a leaderboard of a million
/// contacts). More than the cores, so that a few long reads leave handles
/// for short ones.
pub const READERS: usize = 4;

/// The reading handles not in use; a request takes one (waiting for the
/// first to come back if none is free) and gives it back when done.
struct Readers {
    free: Mutex<Vec<StoreReader>>,
    returned: Condvar,
}

impl Readers {
    /// Runs `f` with a free handle.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut StoreReader) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut store = {
            let mut free = self.free.lock().map_err(|_| poisoned())?;
            loop {
                match free.pop() {
                    Some(s) => break s,
                    None => free = self.returned.wait(free).map_err(|_| poisoned())?,
                }
            }
        };
        // Given back even if `f` panics, so the pool never shrinks.
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut store)));
        if let Ok(mut free) = self.free.lock() {
            free.push(store);
        }
        self.returned.notify_one();
        out.unwrap_or_else(|_| Err(poisoned()))
    }
}

/// The answer when events could not be taken or stored in time (the
/// disk failing or full, the storing thread behind): 503, so a sender
/// tries again later; the message says what failed.
pub(crate) fn not_stored(message: String) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "not_stored",
        message,
    )
}

/// The error of a handle whose holder panicked.
fn poisoned() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "database lock poisoned",
    )
}

/// The service's shared state.
#[derive(Clone)]
pub struct AppState {
    store: Arc<Mutex<Store>>,
    readers: Arc<Readers>,
    keys: Arc<Mutex<KeyCache>>,
    /// Request and ingest counters.
    pub metrics: Arc<Metrics>,
    /// The events writer (group commit).
    pub ingest: crate::ingest::Ingest,
    clock: Arc<dyn Fn() -> Timestamp + Send + Sync>,
    /// Days a settled webhook delivery stays in the delivery log (0: for
    /// ever).
    pub delivery_log_days: u32,
    /// The web app's signed-in browsers.
    pub sessions: Arc<crate::app::session::Sessions>,
    /// The web app's overview figures, kept between requests.
    pub overview: Arc<crate::app::overview::OverviewCache>,
    /// Timeouts and the bound on open connections.
    pub limits: crate::ConnectionLimits,
    /// Ids of the anonymous visitors this service knows of: a superset of
    /// the database's marks (a command run beside may have made some
    /// known), so that most requests need no look-up; the database decides
    /// every join.
    visitors: Arc<Mutex<HashSet<String>>>,
}

/// Days settled webhook deliveries stay in the delivery log by default.
pub const DELIVERY_LOG_DAYS: u32 = 30;

impl AppState {
    /// State over an open database (`store` writes; [`READERS`] more
    /// handles are opened on the same file to read); `clock` gives "now"
    /// (the system clock, or a fixed time for tests and replays).
    pub fn new(
        store: Store,
        clock: Arc<dyn Fn() -> Timestamp + Send + Sync>,
    ) -> Result<AppState, StoreError> {
        let free = (0..READERS)
            .map(|_| StoreReader::open(store.path()))
            .collect::<Result<Vec<_>, _>>()?;
        let visitors: HashSet<String> = store.visitor_ids()?.into_iter().collect();
        let store = Arc::new(Mutex::new(store));
        let metrics = Arc::new(Metrics::default());
        Ok(AppState {
            ingest: crate::ingest::Ingest::start(Arc::clone(&store), Arc::clone(&metrics))?,
            store,
            readers: Arc::new(Readers {
                free: Mutex::new(free),
                returned: Condvar::new(),
            }),
            keys: Arc::new(Mutex::new(HashMap::new())),
            metrics,
            clock,
            delivery_log_days: DELIVERY_LOG_DAYS,
            sessions: Arc::default(),
            overview: Arc::default(),
            limits: crate::ConnectionLimits::default(),
            visitors: Arc::new(Mutex::new(visitors)),
        })
    }

    /// Keeps settled webhook deliveries for `days` days (0: for ever).
    pub fn with_delivery_log_days(mut self, days: u32) -> AppState {
        self.delivery_log_days = days;
        self
    }

    /// The same state with these connection limits.
    pub fn with_limits(mut self, limits: crate::ConnectionLimits) -> AppState {
        self.limits = limits;
        self
    }

    /// Records the anonymous visitors `ids`, seen by tracking calls that
    /// named only an `anonymousId`: those no contact has yet are created
    /// and marked (`Store::visit`), in one transaction.
    pub async fn visit(&self, ids: Vec<String>) -> Result<(), ApiError> {
        let unknown: Vec<String> = {
            let known = self.visitors.lock().map_err(|_| poisoned())?;
            let mut v: Vec<String> = ids.into_iter().filter(|i| !known.contains(i)).collect();
            v.sort();
            v.dedup();
            v
        };
        if unknown.is_empty() {
            return Ok(());
        }
        let missing = self
            .read_now(move |s| Ok(s.missing_contacts(&unknown)?))
            .await?;
        if missing.is_empty() {
            return Ok(());
        }
        let now = self.now();
        let created = self
            .with_store(move |s| Ok(s.visit(&missing, now)?))
            .await?;
        self.visitors
            .lock()
            .map_err(|_| poisoned())?
            .extend(created);
        Ok(())
    }

    /// Makes the contacts `ids` known, as a way in other than an anonymous
    /// tracking call names them: none can be joined into another contact
    /// any more (`Store::forget_visitors`).
    pub async fn known<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> Result<(), ApiError> {
        let marked: Vec<String> = {
            let mut visitors = self.visitors.lock().map_err(|_| poisoned())?;
            ids.into_iter()
                .filter(|id| visitors.remove(*id))
                .map(str::to_owned)
                .collect()
        };
        if marked.is_empty() {
            return Ok(());
        }
        self.with_store(move |s| Ok(s.forget_visitors(&marked)?))
            .await
    }

    /// Drops these ids from the visitors this service knows of, when the
    /// database has unmarked them itself: a visitor joined into a contact
    /// (a later anonymous call creates it afresh), or contact data stored
    /// (`Store::upsert_contacts` unmarks its contacts).
    pub fn unmarked<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        if let Ok(mut v) = self.visitors.lock() {
            for id in ids {
                v.remove(id);
            }
        }
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// Runs `f` with the writing handle on a blocking thread (SQLite calls
    /// and scoring stay off the async workers), with the database's current
    /// model (one set meanwhile by `leadscore model set` is picked up),
    /// once every event acknowledged before the call is stored.
    /// Requests that only read use [`AppState::read`] instead.
    pub async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = Arc::clone(&self.store);
        let backlog = Arc::clone(&self.ingest.backlog);
        self.blocking(move || {
            backlog.wait_all().map_err(not_stored)?;
            let mut guard = store.lock().map_err(|_| poisoned())?;
            guard.sync_model()?;
            f(&mut guard)
        })
        .await
    }

    /// Runs `read` on a reading handle, on a blocking thread, in one
    /// snapshot of the database under the model current in it: it sees
    /// every committed write and every event acknowledged before the call
    /// (it waits for them to be stored), and never waits for a
    /// transaction in progress.
    pub async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Store) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let readers = Arc::clone(&self.readers);
        let backlog = Arc::clone(&self.ingest.backlog);
        self.blocking(move || {
            backlog.wait_all().map_err(not_stored)?;
            readers.with(|s| s.snapshot(read))
        })
        .await
    }

    /// [`AppState::read`] of one contact's data: waits only for the events
    /// acknowledged for that contact (none: not at all).
    pub async fn read_contact<T: Send + 'static>(
        &self,
        id: String,
        read: impl FnOnce(&Store, &str) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let readers = Arc::clone(&self.readers);
        let backlog = Arc::clone(&self.ingest.backlog);
        self.blocking(move || {
            backlog.wait_contact(&id).map_err(not_stored)?;
            readers.with(|s| s.snapshot(|s| read(s, &id)))
        })
        .await
    }

    /// [`AppState::read`] without waiting for acknowledged events: for
    /// data events do not change (keys, the model, webhooks).
    pub async fn read_now<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Store) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let readers = Arc::clone(&self.readers);
        self.blocking(move || readers.with(|s| s.snapshot(read)))
            .await
    }

    /// Runs `f` on tokio's blocking threads, counted in the queue metric.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        self.metrics.queue_enter();
        let out = tokio::task::spawn_blocking(f).await;
        self.metrics.queue_leave();
        out.map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                e.to_string(),
            )
        })?
    }

    /// The scope of a key, from the cache or the database.
    pub async fn scope_of(&self, key: &str) -> Result<Option<Scope>, ApiError> {
        Ok(self.grant_of(key).await?.map(|g| g.scope))
    }

    /// What a key may do (`None`: unknown or revoked), from the cache (up
    /// to [`KEY_CACHE`] old) or the database.
    pub async fn grant_of(&self, key: &str) -> Result<Option<Grant>, ApiError> {
        self.grant_of_hash(&leadscore_store::key_hash(key)).await
    }

    /// The scope of the key with this SHA-256 hash (`None`: unknown or
    /// revoked), from the cache (up to [`KEY_CACHE`] old) or the database.
    pub async fn scope_of_hash(&self, hash: &str) -> Result<Option<Scope>, ApiError> {
        Ok(self.grant_of_hash(hash).await?.map(|g| g.scope))
    }

    async fn grant_of_hash(&self, hash: &str) -> Result<Option<Grant>, ApiError> {
        let hash = hash.to_owned();
        if let Ok(cache) = self.keys.lock()
            && let Some((grant, at)) = cache.get(&hash)
            && at.elapsed() < KEY_CACHE
        {
            return Ok(grant.clone());
        }
        let h = hash.clone();
        let grant = self
            .read_now(move |s| {
                Ok(s.key_by_hash(&h)?.map(|k| Grant {
                    scope: k.scope,
                    origins: k.origins.into(),
                }))
            })
            .await?;
        if let Ok(mut cache) = self.keys.lock() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(hash, (grant.clone(), Instant::now()));
        }
        Ok(grant)
    }
}
