//! Writing a contact's new live state and the band and stage transitions
//! it causes. [`record_transitions`] is the one place a transition is
//! recorded, and it owes the webhook deliveries in the same statement
//! sequence, so no path can record one and forget the other.

use leadscore_core::timestamp::days_to_nanos;
use leadscore_core::{Model, ScoreCard, Timestamp};
use rusqlite::{Connection, params};

use crate::error::{Result, StoreError};
use crate::live::{Cause, HORIZON_DAYS, LiveState};

/// A contact's stored live state as a write finds it: band and stage, to
/// record transitions against, and the next check, kept while it is still
/// valid. A write rewrites only the columns that change: SQLite rewrites an
/// index entry whenever its column is set, even to the same value, and
/// band, stage and next check are indexed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Before<'a> {
    /// The stored band (`None` before the first score).
    pub band: Option<&'a str>,
    /// The stored stage.
    pub stage: Option<&'a str>,
    /// The stored next check time (ns).
    pub next_check_at: Option<i64>,
}

/// A contact's stored band, stage and next check after a write.
#[derive(Clone, Debug, Default)]
pub struct After {
    /// The band now stored.
    pub band: Option<String>,
    /// The stage now stored.
    pub stage: Option<String>,
    /// The next check now stored (ns).
    pub next_check_at: Option<i64>,
}

/// Records band and stage transitions against the contact's previous live
/// state and writes the new one.
#[allow(clippy::too_many_arguments)]
pub fn write_update(
    conn: &Connection,
    model: &Model,
    model_version: i64,
    rowid: i64,
    computed: &LiveState,
    before: Before<'_>,
    at: Timestamp,
    cause: &Cause,
) -> Result<After> {
    record_transitions(
        conn,
        model,
        model_version,
        rowid,
        &computed.card,
        (before.band, before.stage),
        at,
        cause,
    )?;
    write_live(conn, model, rowid, computed, before, at)
}

/// Records the band and stage transitions from `previous` to `card`'s, at
/// `at`, with the webhook deliveries they owe. The one place transitions
/// are written.
#[allow(clippy::too_many_arguments)]
fn record_transitions(
    conn: &Connection,
    model: &Model,
    model_version: i64,
    rowid: i64,
    card: &ScoreCard,
    previous: (Option<&str>, Option<&str>),
    at: Timestamp,
    cause: &Cause,
) -> Result<()> {
    let band = card.band_name(model);
    let stage = card.stage_name(model);
    let (cause_name, detail) = cause.parts();
    let record = |kind: &str, from: Option<&str>, to: Option<&str>| -> Result<()> {
        if from != to {
            conn.prepare_cached(
                "INSERT INTO transitions(contact, at, kind, from_value, to_value, cause, detail, model_version)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![rowid, at.0, kind, from, to, cause_name, detail, model_version])?;
            crate::webhooks::owe_deliveries(
                conn,
                conn.last_insert_rowid(),
                rowid,
                at,
                kind,
                (from, to),
                (cause_name, detail.as_deref()),
                model_version,
            )?;
        }
        Ok(())
    };
    record("band", previous.0, band)?;
    record("stage", previous.1, stage)
}

/// Writes a contact's live state at `at`: score card, the time it is for,
/// the next check, and the packed matches when they changed. Band, stage
/// and next check are written only when they differ from `before` (see
/// [`Before`]). With no change found within the search horizon, the next
/// check is the stored one if it still lies within the horizon, else the
/// horizon: every scored contact has a next check, so the
/// `contacts_next_check` index names every contact whose stored state may
/// be stale at a time. Raises `meta.scored_max`, the latest `scored_at`
/// stored. Returns what is now stored.
fn write_live(
    conn: &Connection,
    model: &Model,
    rowid: i64,
    computed: &LiveState,
    before: Before<'_>,
    at: Timestamp,
) -> Result<After> {
    let card = &computed.card;
    if !leadscore_batch::output::finite(card) {
        return Err(StoreError::Corrupt(format!(
            "contact row {rowid}: a score that is not a finite number is not stored"
        )));
    }
    let band = card.band_name(model);
    let stage = card.stage_name(model);
    let next_check_at = Some(computed.next_check_at.unwrap_or_else(|| {
        let horizon = at.0.saturating_add(days_to_nanos(HORIZON_DAYS));
        before
            .next_check_at
            .filter(|&t| t > at.0.saturating_add(1_000_000_000) && t <= horizon)
            .unwrap_or(horizon)
    }));
    let dims = serde_json::to_string(&card.dimensions)
        .map_err(|e| StoreError::Corrupt(format!("dimensions: {e}")))?;
    let class = band != before.band || stage != before.stage;
    let next = next_check_at != before.next_check_at;
    let hits = computed.packed.as_deref();
    conn.prepare_cached(live_update_sql(class, next, hits.is_some()))?
        .execute(
            rusqlite::named_params! {
                ":dims": dims,
                ":score": card.score,
                ":disqualified": card.disqualified,
                ":at": at.0,
                ":id": rowid,
                ":band": band,
                ":stage": stage,
                ":next": next_check_at,
                ":hits": hits,
            }
            .iter()
            .copied()
            .filter(|(name, _)| match *name {
                ":band" | ":stage" => class,
                ":next" => next,
                ":hits" => hits.is_some(),
                _ => true,
            })
            .collect::<Vec<_>>()
            .as_slice(),
        )?;
    conn.prepare_cached(
        "UPDATE meta SET value = ?1 WHERE key = 'scored_max' AND CAST(value AS INTEGER) < ?1",
    )?
    .execute([at.0])?;
    Ok(After {
        band: band.map(str::to_string),
        stage: stage.map(str::to_string),
        next_check_at,
    })
}

/// The statement writing a live state, setting band and stage (`class`),
/// the next check (`next`) and the matches (`hits`) only when asked.
fn live_update_sql(class: bool, next: bool, hits: bool) -> &'static str {
    macro_rules! sql {
        ($($part:literal),*) => {
            concat!("UPDATE contacts SET dims = :dims, score = :score, disqualified = :disqualified, scored_at = :at", $($part,)* " WHERE id = :id")
        };
    }
    match (class, next, hits) {
        (false, false, false) => sql!(),
        (true, false, false) => sql!(", band = :band, stage = :stage"),
        (false, true, false) => sql!(", next_check_at = :next"),
        (true, true, false) => sql!(", band = :band, stage = :stage", ", next_check_at = :next"),
        (false, false, true) => sql!(", hits = :hits"),
        (true, false, true) => sql!(", band = :band, stage = :stage", ", hits = :hits"),
        (false, true, true) => sql!(", next_check_at = :next", ", hits = :hits"),
        (true, true, true) => sql!(
            ", band = :band, stage = :stage",
            ", next_check_at = :next",
            ", hits = :hits"
        ),
    }
}
/// Writes the steps of [`time_steps`] with cause `decay`: every step's
/// transitions, and the live state of the last step only (the row is
/// rewritten once, not once per step). Returns what is stored after them
/// (`before` as it was when there are no steps).
pub fn write_steps(
    conn: &Connection,
    model: &Model,
    model_version: i64,
    rowid: i64,
    steps: &[(Timestamp, LiveState)],
    before: Before<'_>,
) -> Result<After> {
    let (mut band, mut stage) = (before.band, before.stage);
    for (t, c) in steps {
        record_transitions(
            conn,
            model,
            model_version,
            rowid,
            &c.card,
            (band, stage),
            *t,
            &Cause::Decay,
        )?;
        band = c.card.band_name(model);
        stage = c.card.stage_name(model);
    }
    match steps.last() {
        Some((t, c)) => write_live(conn, model, rowid, c, before, *t),
        None => Ok(After {
            band: before.band.map(str::to_string),
            stage: before.stage.map(str::to_string),
            next_check_at: before.next_check_at,
        }),
    }
}
