//! `model set`: a new model version and every contact re-scored under it,
//! in one transaction, a chunk of contacts at a time. While one chunk is
//! matched and scored (a thread of its own and rayon), the chunk before is
//! written and the next one's contacts are read. [`crate::model_change`]
//! says what a change needs redone.

use std::collections::BTreeMap;

use leadscore_core::scoring::sort_hits;
use leadscore_core::{Hit, Model, ScoreCard, Timestamp, evaluate, event_key};
use rayon::prelude::*;
use rusqlite::{Connection, TransactionBehavior, params};

use crate::error::Result;
use crate::live::{Cause, LiveState, compute_live, time_steps};
use crate::matching::{StoredEvent, events_query, keyed_event_hits};
use crate::model_change::{self, Matching, Rematch, Unchanged};
use crate::model_versions::{ModelFile, attach_model_files, check_model, store_model_files};
use crate::overlap::overlapped;
use crate::slots::Slots;
use crate::store::Store;
use crate::stored_contact::{CONTACT_COLUMNS, StoredContact, event_range};
use crate::transitions::{Before, write_steps, write_update};
use crate::values::{EventProperties, model_values_json};

/// What a model change moves.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelChange {
    /// The new database model version (unchanged on a dry run).
    pub version: Option<i64>,
    /// Contacts per band, before and after (at the same time).
    pub bands: BTreeMap<String, (u64, u64)>,
    /// Contacts per stage, before and after.
    pub stages: BTreeMap<String, (u64, u64)>,
    /// Contacts whose band or stage changes.
    pub moved: u64,
    /// Largest score changes, ten at most: (contact, before, after); a
    /// contact whose score stays is not listed.
    pub movers: Vec<(String, f64, f64)>,
}
/// Contacts re-scored together by `model set` (memory is one chunk's
/// contacts and matches, not the database's).
pub(crate) const MODEL_CHUNK: usize = 50_000;

/// A contact's card under the old model and new state under the new one;
/// `None` when the new model scores it as the old one did and its band and
/// stage after the steps time brought are known without evaluating it
/// (see [`score_chunk`]).
type Compared = Option<(ScoreCard, LiveState)>;

/// One contact as `model set` sees it.
struct ModelChunkRow {
    rowid: i64,
    ext_id: String,
    /// The attributes the old model reads.
    old_values: Vec<Option<Box<str>>>,
    /// The attributes the new model reads, when they differ from the old.
    new_values: Option<Vec<Option<Box<str>>>>,
    /// StoredContact matches (the old model's).
    old_hits: Vec<Hit<u64>>,
    /// Matches under the new model, when events are matched again.
    new_hits: Vec<Hit<u64>>,
    band: Option<String>,
    stage: Option<String>,
    /// When time alone may next change it under the old model.
    next_check_at: Option<i64>,
    /// The time its live state is for (ns).
    scored_at: Option<i64>,
    /// What time alone did to it under the old model, up to the model
    /// change (computed with the chunk's scores, written before them).
    steps: Vec<(Timestamp, LiveState)>,
    /// The new model scores it as the old one did at every time (see
    /// [`Unchanged`]): its live state is not rewritten.
    unchanged: bool,
}

impl ModelChunkRow {
    /// Its stored live state, as the next write finds it.
    fn before(&self) -> Before<'_> {
        Before {
            band: self.band.as_deref(),
            stage: self.stage.as_deref(),
            next_check_at: self.next_check_at,
        }
    }
}

/// Events read for matching again, in `seq` order: the text of their
/// properties is kept in one buffer (no allocation per event).
#[derive(Default)]
struct EventBatch {
    /// Contact (index in the chunk), event key, type (index in the types
    /// read), time (ns), and where its properties are in `text`.
    events: Vec<(u32, u64, u32, i64, std::ops::Range<usize>)>,
    /// The properties (JSON objects) of the events, one after the other.
    text: String,
}

impl crate::overlap::Filled for EventBatch {
    fn filled(&self) -> bool {
        !self.events.is_empty()
    }
}

/// Reads the next chunk of contacts (ids after `after_id`, at most
/// `limit`) with the attributes each model reads.
fn read_model_chunk(
    tx: &Connection,
    (old, new): (&Model, &Model),
    old_slots: &Slots,
    after_id: i64,
    limit: usize,
) -> Result<Vec<ModelChunkRow>> {
    let same_attributes = old.vocabulary.attributes == new.vocabulary.attributes;
    let mut chunk = Vec::with_capacity(limit.min(MODEL_CHUNK));
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {CONTACT_COLUMNS}, scored_at FROM contacts WHERE id > ?1 ORDER BY id LIMIT ?2"
    ))?;
    let mut rows = stmt.query(params![after_id, limit as i64])?;
    while let Some(r) = rows.next()? {
        let (rowid, ext_id, attrs, hits, band, stage, next) = StoredContact::from_row(r)?;
        let scored_at: Option<i64> = r.get(7)?;
        let old_values = model_values_json(&old.vocabulary, &attrs)?;
        let new_values = if same_attributes {
            None
        } else {
            Some(model_values_json(&new.vocabulary, &attrs)?)
        };
        chunk.push(ModelChunkRow {
            rowid,
            ext_id,
            old_values,
            new_values,
            old_hits: old_slots.unpack(&hits)?,
            new_hits: Vec::new(),
            band,
            stage,
            next_check_at: next,
            scored_at,
            steps: Vec::new(),
            unchanged: false,
        });
    }
    Ok(chunk)
}

/// Matches the events of a chunk's contacts (`seq` in `lo..=hi`) under
/// `model`, into each contact's `new_hits`. Only the events of the types
/// that can match are read (SQLite skips the others); this thread reads
/// the rows while the batch read before is matched on the other cores.
fn rematch_chunk(
    conn: &Connection,
    model: &Model,
    partial: Option<&Rematch>,
    chunk: &mut [ModelChunkRow],
    (lo, hi): (i64, i64),
) -> Result<()> {
    const BATCH: usize = 50_000;
    let types: Vec<&str> = match partial {
        Some(p) => p.types.iter().map(String::as_str).collect(),
        None => model.event_types(),
    };
    if let Some(p) = partial {
        for c in chunk.iter_mut() {
            c.new_hits.extend(p.carried(&c.old_hits));
        }
    }
    if types.is_empty() {
        return Ok(());
    }
    let rows_ref: &[ModelChunkRow] = chunk;
    let types_ref = &types;
    /// New matches of events, with their contact (index in the chunk).
    type Matched = Vec<(u32, Hit<u64>)>;
    let match_batch = |batch: EventBatch| -> Result<Vec<Matched>> {
        batch
            .events
            .par_chunks(1_024)
            .map(|events| {
                let mut out = Vec::new();
                let mut h = Vec::new();
                for (i, key, ty, ts, text) in events {
                    let props =
                        EventProperties::from_json(&model.vocabulary, &batch.text[text.clone()])?;
                    let c = &rows_ref[*i as usize];
                    let values = c.new_values.as_deref().unwrap_or(&c.old_values);
                    let ty = types_ref[*ty as usize];
                    keyed_event_hits(model, values, *key, ty, Timestamp(*ts), &props, &mut h);
                    out.extend(
                        h.drain(..)
                            .filter(|hit| partial.is_none_or(|p| p.matched_again(hit)))
                            .map(|hit| (*i, hit)),
                    );
                }
                Ok(out)
            })
            .collect()
    };
    let mut stmt = events_query(conn, Some(&types))?;
    let mut bound: Vec<&dyn rusqlite::ToSql> = vec![&lo, &hi];
    bound.extend(types.iter().map(|t| t as &dyn rusqlite::ToSql));
    let mut rows = stmt.query(bound.as_slice())?;
    // Rows come in contact order, as the chunk is: one walk finds them.
    let mut at = 0usize;
    let mut matched: Vec<Matched> = Vec::new();
    overlapped(
        |batch: &mut EventBatch| {
            batch.events.reserve(BATCH);
            while batch.events.len() < BATCH {
                let Some(r) = rows.next()? else {
                    return Ok(true);
                };
                let e = StoredEvent::from_row(r)?;
                while at < rows_ref.len() && rows_ref[at].rowid < e.contact {
                    at += 1;
                }
                if rows_ref.get(at).is_none_or(|c| c.rowid != e.contact) {
                    continue;
                }
                let Ok(ty) = types.binary_search(&e.event_type) else {
                    continue;
                };
                let key = event_key(e.id);
                let props = e.properties;
                let start = batch.text.len();
                batch.text.push_str(props);
                batch
                    .events
                    .push((at as u32, key, ty as u32, e.at.0, start..batch.text.len()));
            }
            Ok(false)
        },
        match_batch,
        |m| {
            matched.extend(m);
            Ok(())
        },
    )?;
    drop(rows);
    for (i, hit) in matched.into_iter().flatten() {
        chunk[i as usize].new_hits.push(hit);
    }
    Ok(())
}

/// Scores a chunk before (old model) and after (new model), at the same
/// time; the new matches are packed when they changed. With `unchanged`
/// (the models differ only in some rules, [`Unchanged`]), a contact those
/// rules do not touch and whose matches are the same is marked unchanged:
/// its score stays, and its band and stage at `now` are the ones stored
/// (or the last that time brought, its `steps`), so it is not evaluated.
fn score_chunk(
    old: &Model,
    (new, new_slots): (&Model, &Slots),
    (reuse, unchanged): (bool, Option<&Unchanged>),
    chunk: &mut [ModelChunkRow],
    now: Timestamp,
) -> Vec<Compared> {
    chunk
        .par_iter_mut()
        .map(|c| {
            c.steps = time_steps(old, &c.old_values, &mut c.old_hits, c.next_check_at, now);
            let left_alone = unchanged.is_some_and(|u| {
                u.holds((old, new), &c.old_hits, &c.old_values)
                    && (reuse || {
                        sort_hits(&mut c.old_hits);
                        sort_hits(&mut c.new_hits);
                        u.same_matches(&c.old_hits, &c.new_hits)
                    })
            });
            if left_alone {
                c.unchanged = true;
                // The stored state is for a time up to `now` and, with
                // the steps, holds until its next check, after `now`.
                if c.scored_at.is_some_and(|at| at <= now.0) {
                    return None;
                }
                let before = evaluate(old, c.old_values.as_slice(), &mut c.old_hits, now, None);
                let same = LiveState {
                    card: before.clone(),
                    next_check_at: c.next_check_at,
                    packed: None,
                };
                return Some((before, same));
            }
            let before = evaluate(old, c.old_values.as_slice(), &mut c.old_hits, now, None);
            let values = c.new_values.as_deref().unwrap_or(&c.old_values);
            let hits = if reuse {
                &mut c.old_hits
            } else {
                &mut c.new_hits
            };
            let mut after = compute_live(new, values, hits, now);
            if !reuse {
                after.packed = Some(new_slots.pack(hits));
            }
            Some((before, after))
        })
        .collect()
}

/// Adds a chunk's before/after counts and movers to the summary. A
/// contact whose score does not change is no mover.
fn tally_chunk(
    change: &mut ModelChange,
    (old, new): (&Model, &Model),
    chunk: &[ModelChunkRow],
    compared: &[Compared],
) {
    let name = |n: Option<&str>| n.unwrap_or("none").to_string();
    let mut movers = Vec::with_capacity(chunk.len());
    for (c, compared) in chunk.iter().zip(compared) {
        let ((b0, s0), (b1, s1)) = match compared {
            Some((before, after)) => {
                let after = &after.card;
                if before.score != after.score {
                    movers.push((c.ext_id.as_str(), before.score, after.score));
                }
                (
                    (before.band_name(old), before.stage_name(old)),
                    (after.band_name(new), after.stage_name(new)),
                )
            }
            None => {
                // Unchanged: the band and stage time left it in, under
                // both models (their bands and stages are the same).
                let held = match c.steps.last() {
                    Some((_, step)) => (step.card.band_name(old), step.card.stage_name(old)),
                    None => (c.band.as_deref(), c.stage.as_deref()),
                };
                (held, held)
            }
        };
        change.bands.entry(name(b0)).or_default().0 += 1;
        change.bands.entry(name(b1)).or_default().1 += 1;
        change.stages.entry(name(s0)).or_default().0 += 1;
        change.stages.entry(name(s1)).or_default().1 += 1;
        if b0 != b1 || s0 != s1 {
            change.moved += 1;
        }
    }
    keep_top_movers(&mut change.movers, movers);
}

/// Writes a chunk's new live states: first the changes time brought under
/// the old model (at their times), then the new model's state, caused by
/// the model.
fn write_chunk(
    tx: &Connection,
    (old, old_version): (&Model, i64),
    (new, version): (&Model, i64),
    mut chunk: Vec<ModelChunkRow>,
    computed: &[Compared],
    now: Timestamp,
) -> Result<()> {
    for c in chunk.iter_mut().filter(|c| !c.steps.is_empty()) {
        let after = write_steps(tx, old, old_version, c.rowid, &c.steps, c.before())?;
        (c.band, c.stage, c.next_check_at) = (after.band, after.stage, after.next_check_at);
    }
    for (c, compared) in chunk.iter().zip(computed) {
        let Some((_, computed)) = compared.as_ref().filter(|_| !c.unchanged) else {
            continue;
        };
        write_update(
            tx,
            new,
            version,
            c.rowid,
            computed,
            c.before(),
            now,
            &Cause::Model(version),
        )?;
    }
    Ok(())
}

/// Merges a chunk's score changes into the ten largest so far (largest
/// change first, ties by contact id).
fn keep_top_movers(top: &mut Vec<(String, f64, f64)>, chunk: Vec<(&str, f64, f64)>) {
    let order = |a: &(&str, f64, f64), b: &(&str, f64, f64)| {
        (b.2 - b.1)
            .abs()
            .total_cmp(&(a.2 - a.1).abs())
            .then(a.0.cmp(b.0))
    };
    let mut chunk = chunk;
    let n = chunk.len().min(10);
    if n < chunk.len() {
        chunk.select_nth_unstable_by(n, order);
        chunk.truncate(n);
    }
    let mut all: Vec<(&str, f64, f64)> = top
        .iter()
        .map(|(id, a, b)| (id.as_str(), *a, *b))
        .chain(chunk)
        .collect();
    all.sort_by(order);
    all.truncate(10);
    *top = all
        .into_iter()
        .map(|(id, a, b)| (id.to_string(), a, b))
        .collect();
}
impl Store {
    /// (re-matching every stored event), and, unless `dry_run`, stores it as
    /// the next version with the transitions it causes.
    pub fn set_model(&mut self, text: &str, now: Timestamp, dry_run: bool) -> Result<ModelChange> {
        self.set_model_with_files(text, &[], now, dry_run)
    }

    /// [`Store::set_model`] for a model whose predictive dimensions'
    /// learned models are `files`.
    pub fn set_model_with_files(
        &mut self,
        text: &str,
        files: &[ModelFile],
        now: Timestamp,
        dry_run: bool,
    ) -> Result<ModelChange> {
        let mut new = Model::from_toml(text)?;
        attach_model_files(&mut new, files)?;
        self.sync_model()?;
        let old = &self.model;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        check_model(&tx, self.model_version)?;
        // Only what the change needs is redone (see `model_change`): the
        // matches of rules that match as before are kept, only the events
        // of the other rules' types are matched again, and the contacts
        // no changed rule touches are left as they are.
        let matching = model_change::matching(old, &new);
        let reuse = matches!(matching, Matching::Reuse);
        let partial = match matching {
            Matching::Partial(r) => Some(r),
            Matching::Reuse => None,
        };
        let unchanged = model_change::unchanged(old, &new);
        // A rule with the same id and kind keeps the number its matches
        // are stored under (`slots`), wherever it moved.
        let old_slots = &self.slots;
        let new_slots = old_slots.follow(&model_change::pairs(old, &new), new.rules.len())?;
        let version = self.model_version + 1;
        if !dry_run {
            tx.execute(
                "INSERT INTO models(version, name, author_version, toml, created_at, slots) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![version, new.name, new.version, text, now.0, new_slots.to_stored()],
            )?;
            store_model_files(&tx, version, files, &new)?;
        }
        let mut change = ModelChange::default();
        // Contacts in id order, a chunk at a time: memory stays bounded and
        // is reused from chunk to chunk, and a chunk's events are one `seq`
        // range (`contact << 32 | n`).
        // Events to match again are read on a second connection: model set
        // changes no event, and this transaction keeps other writers out.
        let mut events = if reuse {
            None
        } else {
            let conn = Connection::open_with_flags(
                &self.path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.pragma_update(None, "mmap_size", 16_i64 << 30)?;
            Some(conn)
        };
        // While one chunk is written (SQLite, this thread), the next is
        // matched and scored (rayon): the two overlap.
        // While one chunk is matched and scored (a thread of its own and
        // rayon), this thread writes the chunk before it and reads the
        // contacts of the chunk after it (SQLite, this transaction).
        let mut pending: Option<(Vec<ModelChunkRow>, Vec<Compared>)> = None;
        let read = |after_id: i64| {
            read_model_chunk(&tx, (old, &new), old_slots, after_id, self.model_chunk)
        };
        let mut chunk = read(i64::MIN)?;
        loop {
            let range = match (chunk.first(), chunk.last()) {
                (Some(first), Some(last)) => {
                    Some((event_range(first.rowid).0, event_range(last.rowid).1))
                }
                _ => None,
            };
            let next_after = chunk.last().map(|c| c.rowid);
            let new_ref = &new;
            let partial_ref = partial.as_ref();
            let events_ref = &mut events;
            let (compared, written, next) = std::thread::scope(|s| {
                let scoring = s.spawn(|| -> Result<Vec<Compared>> {
                    if let (Some(conn), Some(range)) = (events_ref, range) {
                        rematch_chunk(conn, new_ref, partial_ref, &mut chunk, range)?;
                    }
                    Ok(score_chunk(
                        old,
                        (new_ref, &new_slots),
                        (reuse, unchanged.as_ref()),
                        &mut chunk,
                        now,
                    ))
                });
                let written = match pending.take() {
                    Some((rows, computed)) if !dry_run => write_chunk(
                        &tx,
                        (old, self.model_version),
                        (new_ref, version),
                        rows,
                        &computed,
                        now,
                    ),
                    _ => Ok(()),
                };
                let next = match next_after {
                    Some(after) if written.is_ok() => read(after),
                    _ => Ok(Vec::new()),
                };
                let compared = scoring
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                (compared, written, next)
            });
            written?;
            let compared = compared?;
            if chunk.is_empty() {
                break;
            }
            tally_chunk(&mut change, (old, new_ref), &chunk, &compared);
            pending = Some((chunk, compared));
            chunk = next?;
        }
        if dry_run {
            tx.rollback()?;
            return Ok(change);
        }
        tx.commit()?;
        self.model = new;
        self.slots = new_slots;
        self.model_version = version;
        change.version = Some(version);
        Ok(change)
    }
}
