//! The database handle: opening, the current model, reading scores,
//! explanations and history, model versions, time passing, deletion.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use leadscore_core::scoring::sort_hits;
use leadscore_core::{EventKey, Explanation, Hit, Model, ScoreCard, Timestamp, Trace, evaluate};
use rayon::prelude::*;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::error::{Result, StoreError};
use crate::listing::{ContactScore, ScoreFilter};
use crate::live::{
    Cause, Computed, Props, STORED_COLUMNS, Stored, compute_live, event_hits, event_range,
    keyed_event_hits, model_values, model_values_json, parse_map, time_steps, write_steps,
    write_update,
};
use crate::model_change::{self, Matching, Rematch, Unchanged};
use crate::overlap::overlapped;
use crate::schema;
use crate::slots::Slots;

/// Page cache, in KiB, for a writer that commits many small groups (the
/// service's): 32 MiB. A bigger cache is slower there, not faster: a
/// commit that follows a page split (SQLite parks a page at the lock
/// page's number while it reorders new pages) walks every bucket of the
/// cache's hash table to drop pages past the end of the file, and that
/// table grows with the pages held and never shrinks (only while the
/// database is under 1 GiB: past it the parked number is inside the file
/// and nothing is walked). With 256 MiB the walk was 17 % of the service
/// writer's time on single-event commits (`pcache1TruncateUnsafe` in
/// `perf record`); with 32 MiB batch ingest went from 188-190k to
/// 205-207k events/s (`docs/performance.md`). Pages not in the cache are
/// read from the OS page cache through the mapping.
pub const SERVICE_CACHE_KIB: i64 = 32_768;

/// An open lead database.
pub struct Store {
    pub(crate) conn: Connection,
    pub(crate) path: PathBuf,
    pub(crate) model: Model,
    /// The numbers the current model's rule matches are stored under.
    pub(crate) slots: Slots,
    pub(crate) model_version: i64,
    pub(crate) migrated_from: Option<i64>,
    /// Contacts re-scored together by `model set`.
    pub(crate) model_chunk: usize,
    /// Contacts read, then scored, together when listing scores.
    pub(crate) list_batch: usize,
    /// What the event writer remembers between calls.
    pub(crate) event_cache: crate::event_cache::EventCache,
}

pub use leadscore_learn::predictor::ModelFile;

/// Attaches each predictive dimension's learned model from `files`.
pub fn attach_model_files(model: &mut Model, files: &[ModelFile]) -> Result<()> {
    leadscore_learn::predictor::attach_model_files(model, files).map_err(|e| match e {
        leadscore_learn::LearnError::Predictive { dimension, message } => {
            StoreError::Predictive { dimension, message }
        }
        other => StoreError::Predictive {
            dimension: String::new(),
            message: other.to_string(),
        },
    })
}

fn store_model_files(
    conn: &Connection,
    version: i64,
    files: &[ModelFile],
    model: &Model,
) -> Result<()> {
    for f in files {
        if model
            .dimensions
            .iter()
            .any(|d| d.id == f.dimension && d.predictive.is_some())
        {
            conn.execute(
                "INSERT INTO model_files(version, dimension, file, content) VALUES (?1, ?2, ?3, ?4)",
                params![version, f.dimension, f.file, f.content],
            )?;
        }
    }
    Ok(())
}

fn load_model_files(conn: &Connection, version: i64) -> Result<Vec<ModelFile>> {
    let mut stmt =
        conn.prepare("SELECT dimension, file, content FROM model_files WHERE version = ?1")?;
    let rows = stmt.query_map([version], |r| {
        Ok(ModelFile {
            dimension: r.get(0)?,
            file: r.get(1)?,
            content: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// A band or stage change, as `history` lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct TransitionRow {
    /// When it happened.
    pub at: Timestamp,
    /// `band` or `stage`.
    pub kind: String,
    /// Value before (none for a new contact).
    pub from: Option<String>,
    /// Value after.
    pub to: Option<String>,
    /// `event`, `decay`, `model` or `data`.
    pub cause: String,
    /// The event id, model version, ...
    pub detail: Option<String>,
    /// Model version in force.
    pub model_version: i64,
}

/// One stored model version.
#[derive(Clone, Debug)]
pub struct ModelVersionRow {
    /// Database version number (1, 2, ...).
    pub version: i64,
    /// The model's name.
    pub name: String,
    /// `version =` inside the file.
    pub author_version: i64,
    /// When it was set.
    pub created_at: Timestamp,
}

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

/// What `tick` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickSummary {
    /// Contacts looked at.
    pub contacts: u64,
    /// Transitions recorded.
    pub transitions: u64,
}

/// Due contacts `tick` brings up to date in one transaction.
const TICK_CHUNK: usize = 10_000;

/// Contacts re-scored together by `model set` (memory is one chunk's
/// contacts and matches, not the database's).
const MODEL_CHUNK: usize = 50_000;

/// A contact's card under the old model and new state under the new one;
/// `None` when the new model scores it as the old one did and its band and
/// stage after the steps time brought are known without evaluating it
/// (see [`score_chunk`]).
type Compared = Option<(ScoreCard, Computed)>;

/// One contact as `model set` sees it.
struct ModelChunkRow {
    rowid: i64,
    ext_id: String,
    /// The attributes the old model reads.
    old_values: Vec<Option<Box<str>>>,
    /// The attributes the new model reads, when they differ from the old.
    new_values: Option<Vec<Option<Box<str>>>>,
    /// Stored matches (the old model's).
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
    steps: Vec<(Timestamp, Computed)>,
    /// The new model scores it as the old one did at every time (see
    /// [`Unchanged`]): its live state is not rewritten.
    unchanged: bool,
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
        "SELECT {STORED_COLUMNS}, scored_at FROM contacts WHERE id > ?1 ORDER BY id LIMIT ?2"
    ))?;
    let mut rows = stmt.query(params![after_id, limit as i64])?;
    while let Some(r) = rows.next()? {
        let (rowid, ext_id, attrs, hits, band, stage, next) = Stored::from_row(r)?;
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
                    let props = Props::from_json(&model.vocabulary, &batch.text[text.clone()])?;
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
    let marks = vec!["?"; types.len()].join(", ");
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT contact, id, type, ts, properties FROM events \
         WHERE seq BETWEEN ? AND ? AND type IN ({marks}) ORDER BY seq"
    ))?;
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
                let contact: i64 = r.get(0)?;
                while at < rows_ref.len() && rows_ref[at].rowid < contact {
                    at += 1;
                }
                if rows_ref.get(at).is_none_or(|c| c.rowid != contact) {
                    continue;
                }
                let ty = r.get_ref(2)?.as_str().map_err(rusqlite::Error::from)?;
                let Ok(ty) = types.binary_search(&ty) else {
                    continue;
                };
                let id = r.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
                let key = leadscore_batch::score::event_key(id);
                let props = r.get_ref(4)?.as_str().map_err(rusqlite::Error::from)?;
                let start = batch.text.len();
                batch.text.push_str(props);
                batch.events.push((
                    at as u32,
                    key,
                    ty as u32,
                    r.get(3)?,
                    start..batch.text.len(),
                ));
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
                let same = Computed {
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
        (c.band, c.stage) = write_steps(
            tx,
            old,
            old_version,
            c.rowid,
            &c.steps,
            c.band.take(),
            c.stage.take(),
        )?;
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
            (c.band.as_deref(), c.stage.as_deref()),
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

/// Fails with [`StoreError::ModelChanged`] unless `held` is the database's
/// current model version. Called inside write transactions, so no other
/// connection can change it before the commit.
pub(crate) fn check_model(conn: &Connection, held: i64) -> Result<()> {
    let found = latest_model_version(conn)?;
    if found == held {
        Ok(())
    } else {
        Err(StoreError::ModelChanged { held, found })
    }
}

/// The newest stored model version (a cached statement: it runs before
/// every service request).
fn latest_model_version(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT max(version) FROM models")?
        .query_row([], |r| r.get(0))?)
}

pub(crate) fn current_model(conn: &Connection) -> Result<(Model, Slots, i64)> {
    let (version, text, slots): (i64, String, Option<String>) = conn.query_row(
        "SELECT version, toml, slots FROM models ORDER BY version DESC LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let mut model = Model::from_toml(&text).map_err(|e| {
        StoreError::Corrupt(format!(
            "stored model version {version} no longer validates: {e}"
        ))
    })?;
    attach_model_files(&mut model, &load_model_files(conn, version)?)?;
    let slots = Slots::from_stored(slots.as_deref(), model.rules.len())?;
    Ok((model, slots, version))
}

impl Store {
    /// Creates a database at `path` with a first model version.
    pub fn create(path: &Path, model_text: &str, now: Timestamp) -> Result<Store> {
        Store::create_with_files(path, model_text, &[], now)
    }

    /// Creates a database at `path` with a first model version whose
    /// predictive dimensions' learned models are `files`.
    pub fn create_with_files(
        path: &Path,
        model_text: &str,
        files: &[ModelFile],
        now: Timestamp,
    ) -> Result<Store> {
        let mut model = Model::from_toml(model_text)?;
        attach_model_files(&mut model, files)?;
        let mut conn = schema::create(path)?;
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO models(version, name, author_version, toml, created_at) VALUES (1, ?1, ?2, ?3, ?4)",
            params![model.name, model.version, model_text, now.0],
        )?;
        store_model_files(&tx, 1, files, &model)?;
        tx.commit()?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            slots: Slots::identity(model.rules.len()),
            model,
            model_version: 1,
            migrated_from: None,
            model_chunk: MODEL_CHUNK,
            list_batch: crate::listing::LIST_BATCH,
            event_cache: Default::default(),
        })
    }

    /// Opens an existing database (migrating an older layout: see
    /// [`Store::migrated_from`]).
    pub fn open(path: &Path) -> Result<Store> {
        let (conn, migrated_from) = schema::open(path)?;
        let mut store = Store::over(conn, path, migrated_from)?;
        store.store_inbox()?;
        Ok(store)
    }

    /// Stores the events a stopped service acknowledged but had not
    /// stored yet (its inbox, [`crate::inbox`]), then empties the inbox.
    /// Nothing to do when there is no inbox or a running service owns it.
    fn store_inbox(&mut self) -> Result<()> {
        if !crate::inbox::path_for(&self.path).exists() {
            return Ok(());
        }
        let applied = schema::inbox_applied(&self.conn)?;
        let Some((mut inbox, groups)) = crate::inbox::Inbox::open(&self.path, applied)? else {
            return Ok(());
        };
        for g in groups.into_iter().filter(|g| g.seq > applied) {
            self.ingest_inbox(g.rows, g.now, g.seq)?;
        }
        if !inbox.is_empty() {
            inbox.clear()?;
        }
        Ok(())
    }

    /// The last inbox group the database holds (0: none), see
    /// [`crate::inbox`].
    pub fn inbox_applied(&self) -> Result<u64> {
        schema::inbox_applied(&self.conn)
    }

    /// A handle on an opened connection, with the database's current model.
    fn over(conn: Connection, path: &Path, migrated_from: Option<i64>) -> Result<Store> {
        let (model, slots, model_version) = current_model(&conn)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            model,
            slots,
            model_version,
            migrated_from,
            model_chunk: MODEL_CHUNK,
            list_batch: crate::listing::LIST_BATCH,
            event_cache: Default::default(),
        })
    }

    /// Opens a handle that only reads, beside the handle that writes (the
    /// service's readers): its reads never wait for the writer's
    /// transactions and see every committed one; any write through it
    /// fails. Use it through [`Store::snapshot`]. The database must be
    /// current (opened once by [`Store::open`], which migrates).
    pub fn open_reader(path: &Path) -> Result<Store> {
        Store::over(schema::open_reader(path)?, path, None)
    }

    /// Runs `read` on one consistent state of the database (one read
    /// transaction) under the model current in that state: the rows it
    /// reads agree with each other and with the model even while another
    /// connection writes.
    pub fn snapshot<T, E: From<StoreError>>(
        &mut self,
        read: impl FnOnce(&Store) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        // A snapshot left open (its reader panicked) is let go first.
        let begin = if self.conn.is_autocommit() {
            "BEGIN DEFERRED"
        } else {
            "ROLLBACK; BEGIN DEFERRED"
        };
        self.conn
            .execute_batch(begin)
            .map_err(|e| E::from(StoreError::from(e)))?;
        let out = match self.sync_model() {
            Ok(_) => read(self),
            Err(e) => Err(e.into()),
        };
        // Nothing was written: ending the transaction only lets go of the
        // snapshot.
        let end = self.conn.execute_batch("ROLLBACK");
        let out = out?;
        end.map_err(|e| E::from(StoreError::from(e)))?;
        Ok(out)
    }

    /// Loads the database's current model if another connection stored a
    /// newer version since this handle read it (a CLI `model set` beside a
    /// running service). Returns whether it did. The service calls it
    /// before every request; write methods call it themselves.
    pub fn sync_model(&mut self) -> Result<bool> {
        if latest_model_version(&self.conn)? == self.model_version {
            return Ok(false);
        }
        let (model, slots, version) = current_model(&self.conn)?;
        self.model = model;
        self.slots = slots;
        self.model_version = version;
        self.event_cache.clear();
        Ok(true)
    }

    /// Runs `write`, which checks the model version inside its transaction
    /// ([`check_model`]); if another connection changed the model, loads it
    /// and runs `write` once more.
    pub(crate) fn with_current_model<T>(
        &mut self,
        mut write: impl FnMut(&mut Store) -> Result<T>,
    ) -> Result<T> {
        self.sync_model()?;
        match write(self) {
            Err(StoreError::ModelChanged { .. }) => {
                self.sync_model()?;
                write(self)
            }
            other => other,
        }
    }

    /// The schema version the database was migrated from when it was
    /// opened, if it was.
    pub fn migrated_from(&self) -> Option<i64> {
        self.migrated_from
    }

    /// Sets the log size, in bytes, at which this connection's commits
    /// checkpoint by themselves (SQLite's default: 1 000 pages); raise it
    /// when a [`crate::checkpoint::Checkpointer`] runs beside the writer.
    pub fn set_autocheckpoint_bytes(&self, bytes: i64) -> Result<()> {
        let page_size: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let pages = bytes / page_size.max(512);
        self.conn.pragma_update(None, "wal_autocheckpoint", pages)?;
        Ok(())
    }

    /// Sets this handle's page cache, in KiB (256 MiB when opened). A
    /// service that commits many small groups wants it small
    /// ([`SERVICE_CACHE_KIB`]).
    pub fn set_cache_kib(&self, kib: i64) -> Result<()> {
        self.conn.pragma_update(None, "cache_size", -kib)?;
        Ok(())
    }

    /// Sets how many contacts `model set` re-scores at a time (default
    /// 50 000): memory holds one chunk's contacts and matches, and one chunk
    /// is scored while the one before is written. Results do not depend on
    /// it.
    pub fn set_model_chunk(&mut self, contacts: usize) {
        self.model_chunk = contacts.max(1);
    }

    /// Sets how many contacts listing reads, then scores, at a time
    /// (default 20 000; a ranked list also trims what it keeps once a
    /// batch more than twice its length is held). Results do not depend
    /// on it.
    pub fn set_list_batch(&mut self, contacts: usize) {
        self.list_batch = contacts.max(1);
    }

    /// The current model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The current model's database version number.
    pub fn model_version(&self) -> i64 {
        self.model_version
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of contacts and of events stored.
    pub fn counts(&self) -> Result<(u64, u64)> {
        let c: i64 = self
            .conn
            .query_row("SELECT count(*) FROM contacts", [], |r| r.get(0))?;
        let e: i64 = self
            .conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
        Ok((c as u64, e as u64))
    }

    /// One contact's score at `as_of`.
    pub fn contact_score(&self, id: &str, as_of: Timestamp) -> Result<ContactScore> {
        let (attrs, hits): (String, Vec<u8>) = self
            .conn
            .prepare_cached("SELECT attributes, hits FROM contacts WHERE ext_id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .ok_or_else(|| StoreError::UnknownContact(id.into()))?;
        crate::listing::score_one(
            (&self.model, &self.slots),
            id.to_string(),
            &attrs,
            &hits,
            as_of,
            &ScoreFilter::default(),
        )?
        .ok_or_else(|| StoreError::UnknownContact(id.into()))
    }

    /// Whether commits wait for the disk (`synchronous = FULL`, the
    /// default) or not (`OFF`: only for measuring what the wait costs).
    pub fn set_durable(&self, durable: bool) -> Result<()> {
        self.conn
            .pragma_update(None, "synchronous", if durable { "FULL" } else { "OFF" })?;
        Ok(())
    }

    /// A contact's attributes, if the contact exists.
    pub fn attributes(
        &self,
        id: &str,
    ) -> Result<Option<std::collections::BTreeMap<String, String>>> {
        Ok(Stored::load(&self.conn, id, &self.slots)?.map(|s| s.attributes))
    }

    /// Why a contact has its score at `as_of`.
    pub fn explain(&self, id: &str, as_of: Timestamp) -> Result<Explanation> {
        let stored = Stored::load(&self.conn, id, &self.slots)?
            .ok_or_else(|| StoreError::UnknownContact(id.into()))?;
        let values = model_values(&self.model.vocabulary, &stored.attributes);
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, type, ts, properties FROM events WHERE seq BETWEEN ?1 AND ?2",
        )?;
        let (lo, hi) = crate::live::event_range(stored.rowid);
        let mut rows = stmt.query([lo, hi])?;
        let mut hits: Vec<Hit<EventKey>> = Vec::new();
        while let Some(r) = rows.next()? {
            let event_id: String = r.get(0)?;
            let ty: String = r.get(1)?;
            let ts: i64 = r.get(2)?;
            let props = parse_map(&r.get::<_, String>(3)?)?;
            let props = Props::new(
                &self.model.vocabulary,
                props.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            );
            let mut h = Vec::new();
            event_hits(
                &self.model,
                &values,
                &event_id,
                &ty,
                Timestamp(ts),
                &props,
                &mut h,
            );
            hits.extend(h.into_iter().map(|x| Hit {
                target: x.target,
                at: x.at,
                key: EventKey {
                    id: event_id.clone(),
                    event_type: ty.clone(),
                },
            }));
        }
        let mut trace = Trace::for_explanation();
        let card = evaluate(
            &self.model,
            values.as_slice(),
            &mut hits,
            as_of,
            Some(&mut trace),
        );
        Ok(Explanation::new(&self.model, id, as_of, &card, &trace))
    }

    /// Every band and stage transition of a contact, oldest first.
    pub fn history(&self, id: &str) -> Result<Vec<TransitionRow>> {
        let rowid: i64 = self
            .conn
            .query_row("SELECT id FROM contacts WHERE ext_id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or_else(|| StoreError::UnknownContact(id.into()))?;
        let mut stmt = self.conn.prepare(
            "SELECT at, kind, from_value, to_value, cause, detail, model_version
             FROM transitions WHERE contact = ?1 ORDER BY at, seq",
        )?;
        let rows = stmt.query_map([rowid], |r| {
            Ok(TransitionRow {
                at: Timestamp(r.get(0)?),
                kind: r.get(1)?,
                from: r.get(2)?,
                to: r.get(3)?,
                cause: r.get(4)?,
                detail: r.get(5)?,
                model_version: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Erases a contact: attributes, events, scores and history.
    pub fn delete_contact(&mut self, id: &str) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let rowid: i64 = tx
            .query_row("SELECT id FROM contacts WHERE ext_id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or_else(|| StoreError::UnknownContact(id.into()))?;
        let (lo, hi) = crate::live::event_range(rowid);
        tx.execute("DELETE FROM events WHERE seq BETWEEN ?1 AND ?2", [lo, hi])?;
        tx.execute("DELETE FROM transitions WHERE contact = ?1", [rowid])?;
        // Deliveries not yet made would send the contact out again.
        tx.execute(
            "DELETE FROM outbox WHERE contact = ?1 AND state = 'pending'",
            [id],
        )?;
        tx.execute("DELETE FROM contacts WHERE id = ?1", [rowid])?;
        tx.commit()?;
        Ok(())
    }

    /// Stored model versions, oldest first.
    pub fn model_log(&self) -> Result<Vec<ModelVersionRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT version, name, author_version, created_at FROM models ORDER BY version",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ModelVersionRow {
                version: r.get(0)?,
                name: r.get(1)?,
                author_version: r.get(2)?,
                created_at: Timestamp(r.get(3)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The TOML text of a stored model version.
    pub fn model_text(&self, version: i64) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT toml FROM models WHERE version = ?1",
                [version],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Validates a new model, re-scores every contact under it at `now`
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

    /// Applies every change time alone brings up to `until` (decay, events
    /// leaving their window or coming due), recording each transition at its
    /// own time.
    pub fn tick(&mut self, until: Timestamp) -> Result<TickSummary> {
        let mut summary = TickSummary::default();
        loop {
            let (done, more) = self.tick_some(until, TICK_CHUNK)?;
            summary.contacts += done.contacts;
            summary.transitions += done.transitions;
            if !more {
                return Ok(summary);
            }
        }
    }

    /// One turn of [`Store::tick`]: brings at most `contacts` due contacts
    /// (the earliest due first) up to `until`, in one transaction, and says
    /// whether more may be due. A service that also writes events ticks in
    /// turns, letting event writes in between, so that catching up after a
    /// long stop (decay for every contact) does not hold them back for the
    /// whole catch-up.
    pub fn tick_some(&mut self, until: Timestamp, contacts: usize) -> Result<(TickSummary, bool)> {
        // Live states and history only: no contact's id, attributes or
        // events change.
        self.with_current_model(|s| s.keeping_event_cache(|s| s.tick_chunk(until, contacts)))
    }

    /// Runs `write`, which must leave every contact's id, attributes and
    /// events as they are (live states, history, outbox), without emptying
    /// the event writer's cache.
    pub(crate) fn keeping_event_cache<T>(
        &mut self,
        write: impl FnOnce(&mut Store) -> Result<T>,
    ) -> Result<T> {
        let before = self.conn.total_changes();
        let out = write(self);
        let after = self.conn.total_changes();
        self.event_cache.credit(before, after);
        out
    }

    fn tick_chunk(&mut self, until: Timestamp, limit: usize) -> Result<(TickSummary, bool)> {
        let mut summary = TickSummary::default();
        let limit = limit.max(1);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        check_model(&tx, self.model_version)?;
        let mut due: Vec<Stored> = {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {STORED_COLUMNS} FROM contacts WHERE next_check_at <= ?1 ORDER BY next_check_at, id LIMIT ?2"
            ))?;
            let rows = stmt.query_map(
                rusqlite::params![until.0, i64::try_from(limit).unwrap_or(i64::MAX)],
                Stored::from_row,
            )?;
            let raw = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            raw.into_iter()
                .map(|raw| Stored::decode(raw, &self.slots))
                .collect::<Result<_>>()?
        };
        let more = due.len() == limit;
        let model = &self.model;
        let steps: Vec<Vec<(Timestamp, Computed)>> = due
            .par_iter_mut()
            .map(|s| {
                let values = model_values(&model.vocabulary, &s.attributes);
                time_steps(model, &values, &mut s.hits, s.next_check_at, until)
            })
            .collect();
        for (stored, steps) in due.into_iter().zip(&steps) {
            summary.contacts += 1;
            let (mut b, mut st) = (stored.band.clone(), stored.stage.clone());
            for (_, c) in steps {
                let nb = c.card.band_name(model).map(str::to_string);
                let ns = c.card.stage_name(model).map(str::to_string);
                summary.transitions += u64::from(nb != b) + u64::from(ns != st);
                (b, st) = (nb, ns);
            }
            write_steps(
                &tx,
                model,
                self.model_version,
                stored.rowid,
                steps,
                stored.band,
                stored.stage,
            )?;
        }
        tx.commit()?;
        Ok((summary, more))
    }

    /// Checks that every contact's stored live state is what re-computing it
    /// from its stored events gives. Returns the ids that differ.
    pub fn check(&self) -> Result<Vec<String>> {
        let integrity: String = self
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if integrity != "ok" {
            return Err(StoreError::Corrupt(format!(
                "SQLite quick_check: {integrity}"
            )));
        }
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {STORED_COLUMNS}, scored_at, score FROM contacts ORDER BY id"
        ))?;
        let mut rows = stmt.query([])?;
        let mut bad = Vec::new();
        while let Some(r) = rows.next()? {
            let scored_at: Option<i64> = r.get(7)?;
            let score: Option<f64> = r.get(8)?;
            let s = Stored::decode(Stored::from_row(r)?, &self.slots)?;
            let values = model_values(&self.model.vocabulary, &s.attributes);
            let mut expected = crate::live::rematch(&self.conn, &self.model, s.rowid, &values)?;
            let mut stored_hits = s.hits.clone();
            let at = Timestamp(scored_at.unwrap_or(0));
            let a = evaluate(&self.model, values.as_slice(), &mut expected, at, None);
            let b = evaluate(&self.model, values.as_slice(), &mut stored_hits, at, None);
            let live_ok = scored_at.is_some()
                && score == Some(b.score)
                && s.band.as_deref() == b.band_name(&self.model)
                && s.stage.as_deref() == b.stage_name(&self.model);
            if a != b || expected != stored_hits || !live_ok {
                bad.push(s.ext_id);
            }
        }
        Ok(bad)
    }
}
