//! The write path of events and contacts: one transaction stores a batch
//! of events (a repeated id changes nothing; unknown contacts become bare
//! ones), matches them, and re-scores the contacts they touch, with their
//! transitions. File imports ([`crate::import`]) and the service (its
//! inbox groups, contact upserts) both go through it.

use std::collections::{BTreeMap, HashMap, HashSet};

use leadscore_batch::rows::{ContactRow, EventRow};
use leadscore_core::{Hit, Model, Timestamp};
use rayon::prelude::*;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::error::{Result, StoreError};
use crate::event_cache::{EventCache, Known};
use crate::import::ImportSummary;
use crate::live::{Cause, LiveState, advance, compute_update, update_contact};
use crate::matching::{event_hits, rematch};
use crate::model_versions::check_model;
use crate::slots::Slots;
use crate::store::Store;
use crate::stored_contact::{StoredContact, event_range};
use crate::transitions::{Before, write_update};
use crate::values::{EventProperties, model_values, parse_map};

/// Inserts a new contact row (no matches, no live score yet); returns its
/// row id.
pub(crate) fn insert_contact(
    conn: &Connection,
    ext_id: &str,
    attributes: &BTreeMap<String, String>,
) -> Result<i64> {
    let json = serde_json::to_string(attributes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    conn.prepare_cached("INSERT INTO contacts(ext_id, attributes, hits) VALUES (?1, ?2, x'')")?
        .execute(params![ext_id, json])?;
    let rowid = conn.last_insert_rowid();
    if rowid > i64::from(i32::MAX) {
        // Event sequence numbers are `contact << 32 | n`.
        return Err(StoreError::Corrupt(
            "more than 2^31 contacts in one database".into(),
        ));
    }
    Ok(rowid)
}

/// Stores a batch of events and re-scores the contacts they touch, in one
/// transaction. `cache` remembers contacts and event numbers from earlier
/// batches (emptied first if anything else wrote since) and gains the bare
/// contacts created for unknown ids; it is emptied if the transaction
/// fails. `inbox`: the last inbox group these events come from, recorded
/// in the same transaction (see [`crate::inbox`]). Returns, per row,
/// whether it was stored (false: its id was already there).
#[allow(clippy::too_many_arguments)]
pub(crate) fn ingest(
    conn: &mut Connection,
    (model, slots): (&Model, &Slots),
    version: i64,
    now: Timestamp,
    pending: &mut Vec<EventRow>,
    cache: &mut EventCache,
    summary: &mut ImportSummary,
    inbox: Option<u64>,
) -> Result<Vec<bool>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let stored = check_model(&tx, version)
        .and_then(|()| cache.revalidate(&tx))
        .and_then(|()| ingest_in(&tx, (model, slots, version, now), pending, cache, summary))
        .and_then(|flags| {
            if let Some(seq) = inbox {
                crate::schema::set_inbox_applied(&tx, seq)?;
            }
            tx.commit()?;
            Ok(flags)
        });
    match stored {
        Ok(flags) => {
            cache.committed(conn);
            Ok(flags)
        }
        Err(e) => {
            cache.clear();
            Err(e)
        }
    }
}

/// Fewest items worth handing to other threads: below it (the service's
/// single-event requests make groups of a few dozen), the work is done on
/// the calling thread, which costs less than waking the pool's workers
/// (they spin for a while after each task).
pub const PARALLEL_FROM: usize = 256;

/// `f` over `items`, in parallel when there are at least
/// [`PARALLEL_FROM`].
fn map_maybe_parallel<T: Sync, U: Send>(items: &[T], f: impl Fn(&T) -> U + Sync + Send) -> Vec<U> {
    if items.len() < PARALLEL_FROM {
        items.iter().map(f).collect()
    } else {
        items.par_iter().map(f).collect()
    }
}

/// [`map_maybe_parallel`] for work that changes the items.
fn map_maybe_parallel_mut<T: Send, U: Send>(
    items: &mut [T],
    f: impl Fn(&mut T) -> U + Sync + Send,
) -> Vec<U> {
    if items.len() < PARALLEL_FROM {
        items.iter_mut().map(f).collect()
    } else {
        items.par_iter_mut().map(f).collect()
    }
}

/// The work of [`ingest`] inside its transaction.
fn ingest_in(
    tx: &rusqlite::Transaction<'_>,
    (model, slots, version, now): (&Model, &Slots, i64, Timestamp),
    pending: &mut Vec<EventRow>,
    cache: &mut EventCache,
    summary: &mut ImportSummary,
) -> Result<Vec<bool>> {
    let EventCache {
        known, next_seq, ..
    } = cache;
    // Contacts not known yet are looked up inside the transaction (one
    // snapshot, no lock taken per lookup).
    load_known(tx, model, pending, known)?;
    // 1. Every event's contact, creating bare contacts for unknown ids.
    let mut created: Vec<i64> = Vec::new();
    let mut contact_of: Vec<i64> = Vec::with_capacity(pending.len());
    for row in pending.iter() {
        let rowid = match known.get(&row.contact_id) {
            Some(k) => k.rowid,
            None => {
                let rowid = insert_contact(tx, &row.contact_id, &BTreeMap::new())?;
                summary.contacts_created += 1;
                created.push(rowid);
                known.insert(
                    row.contact_id.clone(),
                    Known {
                        rowid,
                        values: model_values(&model.vocabulary, &BTreeMap::new()),
                    },
                );
                rowid
            }
        };
        contact_of.push(rowid);
    }
    // 2. Properties as JSON and rule matches, in parallel.
    let known_ref: &HashMap<String, Known> = known;
    let prepared: Vec<(String, Vec<Hit<u64>>)> = map_maybe_parallel(pending, |row| {
        let props: BTreeMap<&str, &str> = row
            .properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let json = serde_json::to_string(&props).unwrap_or_else(|_| "{}".into());
        let mut hits = Vec::new();
        if model.uses_event_type(&row.event_type)
            && let Some(k) = known_ref.get(&row.contact_id)
        {
            let p = EventProperties::new(&model.vocabulary, props.iter().map(|(k, v)| (*k, *v)));
            event_hits(
                model,
                &k.values,
                &row.id,
                &row.event_type,
                row.at,
                &p,
                &mut hits,
            );
        }
        (json, hits)
    });
    // 3. Store the events; a repeated id changes nothing. They are written
    // in contact order (file order within a contact), which is key order
    // for the events table (`contact << 32 | n`) and nearly so for the
    // event-id index (generated ids start with the contact): each B-tree
    // page is visited once per batch instead of once per event. A repeat
    // within the batch is found first, in file order, so the first of
    // two events with one id stays whatever their contacts.
    let rows: &[EventRow] = pending;
    let mut prepared = prepared;
    let mut repeated = vec![false; rows.len()];
    {
        let mut seen = HashSet::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            repeated[i] = !seen.insert(row.id.as_str());
        }
    }
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| contact_of[i]);
    let mut stored_flags = vec![false; rows.len()];
    let mut touched: HashMap<i64, (Vec<Hit<u64>>, String)> = HashMap::new();
    for rowid in created {
        touched.entry(rowid).or_default();
    }
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO events(seq, id, contact, type, ts, properties) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut last =
            tx.prepare_cached("SELECT max(seq) FROM events WHERE seq BETWEEN ?1 AND ?2")?;
        let mut exists = tx.prepare_cached("SELECT 1 FROM events WHERE id = ?1")?;
        for i in order {
            let (row, rowid) = (&rows[i], contact_of[i]);
            if repeated[i] {
                summary.unchanged += 1;
                continue;
            }
            let (json, hits) = std::mem::take(&mut prepared[i]);
            let seq = match next_seq.get(&rowid) {
                Some(&s) => s,
                None => {
                    let (lo, hi) = event_range(rowid);
                    let max: Option<i64> = last.query_row([lo, hi], |r| r.get(0))?;
                    max.map_or(lo, |m| m + 1)
                }
            };
            if seq > event_range(rowid).1 {
                return Err(StoreError::Corrupt(format!(
                    "more than 2^32 events for contact {}",
                    row.contact_id
                )));
            }
            if insert.execute(params![seq, row.id, rowid, row.event_type, row.at.0, json])? == 0 {
                // Ignored: the id is stored already (a duplicate). Make sure
                // it was not the sequence number instead.
                let known_id: Option<i64> = exists.query_row([&row.id], |r| r.get(0)).optional()?;
                if known_id.is_none() {
                    return Err(StoreError::Corrupt(format!(
                        "event sequence {seq} of contact {} is taken",
                        row.contact_id
                    )));
                }
                next_seq.insert(rowid, seq);
                summary.unchanged += 1;
                continue;
            }
            next_seq.insert(rowid, seq + 1);
            stored_flags[i] = true;
            summary.stored += 1;
            if !model.uses_event_type(&row.event_type) {
                continue;
            }
            let entry = touched.entry(rowid).or_default();
            if !hits.is_empty() || entry.1.is_empty() {
                entry.1.clone_from(&row.id);
            }
            entry.0.extend(hits);
        }
    }
    // Emptied, its room kept for the next batch.
    pending.clear();
    // 4. Re-score touched contacts: read, compute in parallel, write.
    let mut ids: Vec<i64> = touched.keys().copied().collect();
    ids.sort_unstable();
    let mut work = Vec::with_capacity(ids.len());
    for rowid in ids {
        let Some((new_hits, last_event)) = touched.remove(&rowid) else {
            continue;
        };
        let stored = StoredContact::load_rowid(tx, rowid, slots)?;
        let stored = advance(tx, model, version, stored, now)?;
        work.push((stored, new_hits, last_event));
    }
    let computed: Vec<LiveState> = map_maybe_parallel_mut(&mut work, |(stored, new_hits, _)| {
        let values = model_values(&model.vocabulary, &stored.attributes);
        let mut hits = std::mem::take(&mut stored.hits);
        hits.append(new_hits);
        compute_update((model, slots), &values, &mut hits, now)
    });
    for ((stored, _, last_event), c) in work.iter().zip(&computed) {
        let cause = if last_event.is_empty() {
            Cause::Data
        } else {
            Cause::Event(last_event.clone())
        };
        write_update(
            tx,
            model,
            version,
            stored.rowid,
            c,
            stored.before(),
            now,
            &cause,
        )?;
    }
    Ok(stored_flags)
}

/// Loads the stored contacts named by `rows` into `known`.
fn load_known(
    conn: &Connection,
    model: &Model,
    rows: &[EventRow],
    known: &mut HashMap<String, Known>,
) -> Result<()> {
    let mut stmt = conn.prepare_cached("SELECT id, attributes FROM contacts WHERE ext_id = ?1")?;
    for row in rows {
        if known.contains_key(&row.contact_id) {
            continue;
        }
        let found: Option<(i64, String)> = stmt
            .query_row([&row.contact_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((rowid, attrs)) = found {
            let map = parse_map(&attrs)?;
            known.insert(
                row.contact_id.clone(),
                Known {
                    rowid,
                    values: model_values(&model.vocabulary, &map),
                },
            );
        }
    }
    Ok(())
}

/// What an upsert did to one contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upsert {
    /// A new contact.
    Created,
    /// Its attributes changed (it was re-scored).
    Updated,
    /// Nothing changed.
    Unchanged,
}

/// Creates or updates contacts inside a transaction, re-scoring the ones
/// that change; returns what happened to each.
pub(crate) fn store_contacts(
    tx: &rusqlite::Transaction<'_>,
    (model, slots, version): (&Model, &Slots, i64),
    rows: impl Iterator<Item = ContactRow>,
    replace: bool,
    now: Timestamp,
    summary: &mut ImportSummary,
) -> Result<Vec<Upsert>> {
    let mut out = Vec::new();
    let rows: Vec<ContactRow> = rows.collect();
    // Contact data from any way in makes a contact known.
    crate::visitors::forget(tx, rows.iter().map(|r| r.id.as_str()))?;
    for row in rows {
        let Some(mut stored) = StoredContact::load(tx, &row.id, slots)? else {
            // A new contact: no events, no history yet.
            let attributes: BTreeMap<String, String> = row.attributes.into_iter().collect();
            let rowid = insert_contact(tx, &row.id, &attributes)?;
            let values = model_values(&model.vocabulary, &attributes);
            let mut computed = compute_update((model, slots), &values, &mut Vec::new(), now);
            computed.packed = None;
            write_update(
                tx,
                model,
                version,
                rowid,
                &computed,
                Before::default(),
                now,
                &Cause::Data,
            )?;
            summary.stored += 1;
            summary.contacts_created += 1;
            out.push(Upsert::Created);
            continue;
        };
        let mut attributes = if replace {
            BTreeMap::new()
        } else {
            stored.attributes.clone()
        };
        attributes.extend(row.attributes);
        if attributes == stored.attributes {
            summary.unchanged += 1;
            out.push(Upsert::Unchanged);
            continue;
        }
        summary.stored += 1;
        stored = advance(tx, model, version, stored, now)?;
        let json =
            serde_json::to_string(&attributes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        tx.prepare_cached("UPDATE contacts SET attributes = ?1 WHERE id = ?2")?
            .execute(params![json, stored.rowid])?;
        let values = model_values(&model.vocabulary, &attributes);
        let mut hits = rematch(tx, model, stored.rowid, &values)?;
        update_contact(
            tx,
            (model, slots),
            version,
            stored.rowid,
            &values,
            &mut hits,
            stored.before(),
            now,
            &Cause::Data,
        )?;
        out.push(Upsert::Updated);
    }
    Ok(out)
}

impl Store {
    /// Creates or updates contacts (as the service receives them) in one
    /// durable transaction: new contacts are created, existing ones get the
    /// given attributes (or, with `replace`, exactly these). Returns what
    /// happened to each.
    pub fn upsert_contacts(
        &mut self,
        rows: Vec<ContactRow>,
        replace: bool,
        now: Timestamp,
    ) -> Result<Vec<Upsert>> {
        let mut rows = rows;
        self.with_current_model(|s| {
            let tx = s
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            check_model(&tx, s.model_version)?;
            // Taken only once the model is known current: a retry after a
            // model change still has every row.
            let out = store_contacts(
                &tx,
                (&s.model, &s.slots, s.model_version),
                std::mem::take(&mut rows).into_iter(),
                replace,
                now,
                &mut ImportSummary::default(),
            )?;
            tx.commit()?;
            Ok(out)
        })
    }

    /// Stores events (as the service receives them) and re-scores the
    /// contacts they touch, in one durable transaction. Returns, per event,
    /// whether it was stored (`false`: an event with that id was already
    /// there, so nothing changed).
    ///
    /// Contacts and event numbers looked up are remembered for the next
    /// call (see `event_cache`): a service storing a stream of
    /// events skips two look-ups per event.
    pub fn ingest_events(&mut self, rows: Vec<EventRow>, now: Timestamp) -> Result<Vec<bool>> {
        self.ingest_rows(rows, now, None)
    }

    /// Stores one or more inbox groups' events as
    /// [`Store::ingest_events`] does, and records in the same transaction
    /// that the database now holds every group up to `through` (see
    /// the inbox). Returns, per event, whether it was stored.
    pub fn ingest_inbox(
        &mut self,
        rows: Vec<EventRow>,
        now: Timestamp,
        through: u64,
    ) -> Result<Vec<bool>> {
        self.ingest_rows(rows, now, Some(through))
    }

    /// [`Store::ingest_events`], recording the inbox group `inbox` if any.
    fn ingest_rows(
        &mut self,
        mut rows: Vec<EventRow>,
        now: Timestamp,
        inbox: Option<u64>,
    ) -> Result<Vec<bool>> {
        // A changed model is found before any row is used, so `rows` is
        // whole when the events are stored again under the new model.
        self.with_current_model(|s| {
            ingest(
                &mut s.conn,
                (&s.model, &s.slots),
                s.model_version,
                now,
                &mut rows,
                &mut s.event_cache,
                &mut ImportSummary::default(),
                inbox,
            )
        })
    }

    /// Per id, whether an event with that id is stored, read in one
    /// snapshot (the service's duplicate check before the inbox).
    pub fn stored_event_ids(&self, ids: &[&str]) -> Result<Vec<bool>> {
        let mut exists = self
            .conn
            .prepare_cached("SELECT 1 FROM events WHERE id = ?1")?;
        ids.iter().map(|id| Ok(exists.exists([id])?)).collect()
    }
}
