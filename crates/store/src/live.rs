//! Live scores: how a contact's stored state moves.
//!
//! Each contact row keeps its rule matches under the current model (`hits`,
//! 20 bytes each), and its *live score*: the score card at `scored_at`,
//! with `next_check_at`, the time at which time alone may change its band
//! or stage (see [`leadscore_core::timeline`]). Every change (an event, new
//! contact data, a model change, time passing) computes a [`LiveState`]
//! with the core's `evaluate` and writes it with [`crate::transitions`],
//! inside the caller's transaction.

use leadscore_core::scoring::{evaluate_sorted, sort_hits};
use leadscore_core::timeline::next_check_sorted;
use leadscore_core::timestamp::days_to_nanos;
use leadscore_core::{Hit, Model, ScoreCard, Timestamp};
use rusqlite::Connection;

use crate::error::Result;
use crate::slots::Slots;
use crate::stored_contact::StoredContact;
use crate::transitions::{Before, write_steps, write_update};
use crate::values::model_values;

/// How far ahead the next change is looked for, in days.
pub const HORIZON_DAYS: f64 = 730.0;
/// Breakpoints looked at per search before checking again later.
const MAX_SEGMENTS: usize = 8;

/// Why a contact's band or stage changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// An event arrived (its id).
    Event(String),
    /// Time passed: points decayed, or an event left its window or came due.
    Decay,
    /// A new model version was set.
    Model(i64),
    /// The contact's attributes changed (or it was created).
    Data,
}

impl Cause {
    pub(crate) fn parts(&self) -> (&'static str, Option<String>) {
        match self {
            Cause::Event(id) => ("event", Some(id.clone())),
            Cause::Decay => ("decay", None),
            Cause::Model(v) => ("model", Some(format!("model version {v}"))),
            Cause::Data => ("data", None),
        }
    }
}
/// A contact's new live state, computed without touching the database (so
/// many can be computed in parallel), ready for [`write_update`].
pub struct LiveState {
    /// The score card at the update time.
    pub card: ScoreCard,
    /// When time alone may next change band or stage (ns).
    pub next_check_at: Option<i64>,
    /// The hits, sorted and packed, when they changed.
    pub packed: Option<Vec<u8>>,
}

/// Evaluates a contact at `at` and finds its next check time; the hits
/// are packed for storing, under `slots` (the model's).
pub fn compute_update(
    (model, slots): (&Model, &Slots),
    attributes: &[Option<Box<str>>],
    hits: &mut Vec<Hit<u64>>,
    at: Timestamp,
) -> LiveState {
    let mut computed = compute_live(model, attributes, hits, at);
    computed.packed = Some(slots.pack(hits));
    computed
}

/// [`compute_update`] for hits that are stored already (not packed).
pub fn compute_live(
    model: &Model,
    attributes: &[Option<Box<str>>],
    hits: &mut Vec<Hit<u64>>,
    at: Timestamp,
) -> LiveState {
    // Sorted as evaluation reads them (also the order they are packed in):
    // on hits stored sorted, one pass that moves nothing.
    sort_hits(hits);
    let card = evaluate_sorted(model, attributes, None, hits, at, None);
    let until = Timestamp(at.0.saturating_add(days_to_nanos(HORIZON_DAYS)));
    let next_check_at = next_check_sorted(model, attributes, hits, at, until, MAX_SEGMENTS)
        .map(|t| t.0.max(at.0 + 1_000_000_000));
    LiveState {
        card,
        next_check_at,
        packed: None,
    }
}
/// Re-evaluates a contact at `at`, records band and stage transitions
/// against its stored live state, and writes the new live state.
#[allow(clippy::too_many_arguments)]
pub fn update_contact(
    conn: &Connection,
    (model, slots): (&Model, &Slots),
    model_version: i64,
    rowid: i64,
    attributes: &[Option<Box<str>>],
    hits: &mut Vec<Hit<u64>>,
    before: Before<'_>,
    at: Timestamp,
    cause: &Cause,
) -> Result<ScoreCard> {
    let computed = compute_update((model, slots), attributes, hits, at);
    write_update(
        conn,
        model,
        model_version,
        rowid,
        &computed,
        before,
        at,
        cause,
    )?;
    Ok(computed.card)
}

/// The live states time alone brings to a contact up to `until` (decay,
/// windows, events coming due), each at its own time; computed without the
/// database, so many contacts can be advanced in parallel.
pub fn time_steps(
    model: &Model,
    values: &[Option<Box<str>>],
    hits: &mut Vec<Hit<u64>>,
    next_check_at: Option<i64>,
    until: Timestamp,
) -> Vec<(Timestamp, LiveState)> {
    let mut steps = Vec::new();
    let mut next = next_check_at;
    while let Some(t) = next.filter(|&t| t <= until.0) {
        // Time changes no rule match: the stored matches stay as they are.
        let c = compute_live(model, values, hits, Timestamp(t));
        next = c.next_check_at;
        steps.push((Timestamp(t), c));
        if steps.len() >= 10_000 {
            break; // a pathological model flapping every second: stop here
        }
    }
    steps
}
/// Applies the changes time alone brings to a contact up to `until`,
/// recording each as a transition at its time. Returns the stored state
/// afterwards.
pub fn advance(
    conn: &Connection,
    model: &Model,
    model_version: i64,
    mut stored: StoredContact,
    until: Timestamp,
) -> Result<StoredContact> {
    if stored.next_check_at.is_none_or(|t| t > until.0) {
        return Ok(stored);
    }
    let values = model_values(&model.vocabulary, &stored.attributes);
    let steps = time_steps(
        model,
        &values,
        &mut stored.hits,
        stored.next_check_at,
        until,
    );
    let after = write_steps(
        conn,
        model,
        model_version,
        stored.rowid,
        &steps,
        stored.before(),
    )?;
    stored.stored(after);
    Ok(stored)
}
