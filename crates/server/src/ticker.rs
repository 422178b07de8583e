//! The clock of a running service: every few seconds, the band and stage
//! changes that time alone brings (decay, windows, events coming due) are
//! recorded, so their transitions and webhooks happen on time; every hour,
//! settled webhook deliveries past the log's retention are deleted.

use std::time::Duration;

use crate::state::AppState;
use crate::webhooks::wall_ns;

/// How often settled deliveries older than the delivery log's retention
/// are deleted.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Due contacts the ticker brings up to date per turn of the store: small
/// turns let event writes in between, so a long catch-up (decay for every
/// contact after a stop) does not hold them back (`docs/performance.md`).
pub const TICK_TURN: usize = 100;

/// Applies due time changes (decay, windows) every few seconds, so their
/// transitions, and webhooks, happen on time while the server runs; and,
/// at the first tick and then every [`PRUNE_EVERY`], deletes settled
/// deliveries older than `state.delivery_log_days` from the outbox. Due
/// contacts are taken [`TICK_TURN`] at a time, so event writes go in
/// between.
pub async fn ticker(
    state: AppState,
    mut stop: tokio::sync::watch::Receiver<bool>,
    every: Duration,
) {
    let mut pruned: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {},
            _ = stop.changed() => return,
        }
        let now = state.now();
        // In turns, each taking the store for one short transaction: events
        // wait for a turn, not for a whole catch-up after a long stop.
        while !*stop.borrow() {
            match state
                .with_store(move |s| Ok(s.tick_some(now, TICK_TURN)?))
                .await
            {
                Ok((_, true)) => tokio::task::yield_now().await,
                _ => break,
            }
        }
        let days = i64::from(state.delivery_log_days);
        if days > 0 && pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            pruned = Some(std::time::Instant::now());
            let before = wall_ns().saturating_sub(days * 86_400 * 1_000_000_000);
            if let Err(e) = state
                .with_store(move |s| Ok(s.prune_deliveries(before)?))
                .await
            {
                tracing::warn!(error = %e.message, "pruning the webhook delivery log failed");
            }
        }
    }
}
