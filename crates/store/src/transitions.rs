//! Writing a contact's new live state and the band and stage transitions
//! it causes. [`record_transitions`] is the one place a transition is
//! recorded, and it owes the webhook deliveries in the same statement
//! sequence, so no path can record one and forget the other.

use leadscore_core::{Model, ScoreCard, Timestamp};
use rusqlite::{Connection, params};

use crate::error::{Result, StoreError};
use crate::live::{Cause, LiveState};

/// Records band and stage transitions against the contact's previous live
/// state and writes the new one.
#[allow(clippy::too_many_arguments)]
pub fn write_update(
    conn: &Connection,
    model: &Model,
    model_version: i64,
    rowid: i64,
    computed: &LiveState,
    previous: (Option<&str>, Option<&str>),
    at: Timestamp,
    cause: &Cause,
) -> Result<()> {
    record_transitions(
        conn,
        model,
        model_version,
        rowid,
        &computed.card,
        previous,
        at,
        cause,
    )?;
    write_live(conn, model, rowid, computed, at)
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

/// Writes a contact's live state (score card, time it is for, next check,
/// and the packed matches when they changed). Each UPDATE rewrites the
/// whole row, overflow pages included when its size changes.
fn write_live(
    conn: &Connection,
    model: &Model,
    rowid: i64,
    computed: &LiveState,
    at: Timestamp,
) -> Result<()> {
    let card = &computed.card;
    if !leadscore_batch::output::finite(card) {
        return Err(StoreError::Corrupt(format!(
            "contact row {rowid}: a score that is not a finite number is not stored"
        )));
    }
    let band = card.band_name(model);
    let stage = card.stage_name(model);
    let dims = serde_json::to_string(&card.dimensions)
        .map_err(|e| StoreError::Corrupt(format!("dimensions: {e}")))?;
    // One statement either way (see above).
    let live = params![
        dims,
        card.score,
        band,
        stage,
        card.disqualified,
        at.0,
        computed.next_check_at,
        rowid
    ];
    match &computed.packed {
        Some(packed) => conn
            .prepare_cached(
                "UPDATE contacts SET dims = ?1, score = ?2, band = ?3, stage = ?4,
                    disqualified = ?5, scored_at = ?6, next_check_at = ?7, hits = ?9 WHERE id = ?8",
            )?
            .execute([live, params![packed]].concat().as_slice())?,
        None => conn
            .prepare_cached(
                "UPDATE contacts SET dims = ?1, score = ?2, band = ?3, stage = ?4,
                    disqualified = ?5, scored_at = ?6, next_check_at = ?7 WHERE id = ?8",
            )?
            .execute(live)?,
    };
    Ok(())
}
/// Writes the steps of [`time_steps`] with cause `decay`: every step's
/// transitions, and the live state of the last step only (the row is
/// rewritten once, not once per step). Returns the band and stage after
/// them.
pub fn write_steps(
    conn: &Connection,
    model: &Model,
    model_version: i64,
    rowid: i64,
    steps: &[(Timestamp, LiveState)],
    mut band: Option<String>,
    mut stage: Option<String>,
) -> Result<(Option<String>, Option<String>)> {
    for (t, c) in steps {
        record_transitions(
            conn,
            model,
            model_version,
            rowid,
            &c.card,
            (band.as_deref(), stage.as_deref()),
            *t,
            &Cause::Decay,
        )?;
        band = c.card.band_name(model).map(str::to_string);
        stage = c.card.stage_name(model).map(str::to_string);
    }
    if let Some((t, c)) = steps.last() {
        write_live(conn, model, rowid, c, *t)?;
    }
    Ok((band, stage))
}
