//! What every request shares: the database (one writer: a mutex, used from
//! blocking threads), the key cache, the metrics and the clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use leadscore_core::Timestamp;
use leadscore_store::{Scope, Store};

use crate::error::ApiError;
use crate::metrics::Metrics;

/// How long a checked key is trusted before the database is asked again
/// (so a revoked key stops working within this time).
pub const KEY_CACHE: Duration = Duration::from_secs(10);

/// Checked keys by hash: their scope (`None`: unknown or revoked) and when
/// they were checked.
type KeyCache = HashMap<String, (Option<Scope>, Instant)>;

/// The service's shared state.
#[derive(Clone)]
pub struct AppState {
    store: Arc<Mutex<Store>>,
    keys: Arc<Mutex<KeyCache>>,
    /// Request and ingest counters.
    pub metrics: Arc<Metrics>,
    /// The events writer (group commit).
    pub ingest: crate::ingest::Ingest,
    clock: Arc<dyn Fn() -> Timestamp + Send + Sync>,
    /// Days a settled webhook delivery stays in the delivery log (0: for
    /// ever).
    pub delivery_log_days: u32,
}

/// Days settled webhook deliveries stay in the delivery log by default.
pub const DELIVERY_LOG_DAYS: u32 = 30;

impl AppState {
    /// State over an open database; `clock` gives "now" (the system clock,
    /// or a fixed time for tests and replays).
    pub fn new(store: Store, clock: Arc<dyn Fn() -> Timestamp + Send + Sync>) -> AppState {
        let store = Arc::new(Mutex::new(store));
        let metrics = Arc::new(Metrics::default());
        AppState {
            ingest: crate::ingest::Ingest::start(Arc::clone(&store), Arc::clone(&metrics)),
            store,
            keys: Arc::new(Mutex::new(HashMap::new())),
            metrics,
            clock,
            delivery_log_days: DELIVERY_LOG_DAYS,
        }
    }

    /// Keeps settled webhook deliveries for `days` days (0: for ever).
    pub fn with_delivery_log_days(mut self, days: u32) -> AppState {
        self.delivery_log_days = days;
        self
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// Runs `f` with the database on a blocking thread (SQLite calls and
    /// scoring stay off the async workers), with the database's current
    /// model (one set meanwhile by `leadscore model set` is picked up).
    pub async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = Arc::clone(&self.store);
        self.metrics.queue_enter();
        let out = tokio::task::spawn_blocking(move || {
            let mut guard = store.lock().map_err(|_| {
                ApiError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "database lock poisoned",
                )
            })?;
            guard.sync_model()?;
            f(&mut guard)
        })
        .await;
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
        let hash = leadscore_store::keys::key_hash(key);
        if let Ok(cache) = self.keys.lock()
            && let Some((scope, at)) = cache.get(&hash)
            && at.elapsed() < KEY_CACHE
        {
            return Ok(*scope);
        }
        let h = hash.clone();
        let scope = self
            .with_store(move |s| Ok(s.key_by_hash(&h)?.map(|k| k.scope)))
            .await?;
        if let Ok(mut cache) = self.keys.lock() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(hash, (scope, Instant::now()));
        }
        Ok(scope)
    }
}
