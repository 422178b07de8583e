//! Migrations that rewrite data, run by [`Store::open`] after the additive
//! ones of [`crate::schema`], each in one transaction with the schema
//! version it reaches: a crash leaves the version before, migrated again
//! at the next open.
//!
//! Schema 10: anonymous visitors are marked (`crate::visitors`); every
//! contact of an older database is known.
//!
//! Schema 9: every scored contact gets a next check (the search horizon
//! after its `scored_at` where it had none: nothing changes before it), and
//! band and stage are indexed ([`schema::V9_CLASS_INDEXES`]).
//!
//! Schema 8: the key of each stored rule match (bytes 12..20 of its packed
//! record, see [`crate::slots`]) becomes the event id's
//! [`leadscore_core::event_key`] (XXH3-64). Up to schema 7 it was the
//! standard library's `DefaultHasher` of the id, whose output Rust does
//! not promise across releases.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use leadscore_core::event_key;
use leadscore_core::scoring::sort_hits;
use leadscore_core::timestamp::days_to_nanos;
use rusqlite::{Connection, TransactionBehavior, params};

use crate::error::Result;
use crate::live::HORIZON_DAYS;
use crate::matching::{for_each_stored_event, rematch};
use crate::schema::{self, SCHEMA_VERSION};
use crate::store::Store;
use crate::values::model_values_json;

/// Contacts read per statement while re-keying.
const CHUNK: i64 = 10_000;

/// The key schema 7 and before stored for an event id.
fn legacy_key(id: &str) -> u64 {
    let mut h = DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

impl Store {
    /// Brings a database opened at `from` (older than [`SCHEMA_VERSION`])
    /// to the current version. Returns the contacts whose matches were
    /// found again from their events rather than re-keyed.
    pub(crate) fn migrate_data(&mut self, from: i64) -> Result<u64> {
        if from >= SCHEMA_VERSION {
            return Ok(0);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let rematched = if from < 8 {
            rekey_matches(&tx, (&self.model, &self.slots))?
        } else {
            0
        };
        if from < 9 {
            tx.execute(
                "UPDATE contacts SET next_check_at = scored_at + ?1
                 WHERE next_check_at IS NULL AND scored_at IS NOT NULL",
                [days_to_nanos(HORIZON_DAYS)],
            )?;
            tx.execute_batch(schema::V9_CLASS_INDEXES)?;
        }
        if from < 10 {
            // Every contact of an older database is known.
            tx.execute_batch(crate::visitors::V10_VISITORS)?;
            crate::keys::add_key_origins(&tx)?;
        }
        schema::set_version(&tx, SCHEMA_VERSION)?;
        tx.commit()?;
        Ok(rematched)
    }
}

/// Re-keys every contact's stored matches. A match whose key names none
/// of the contact's events (a file written by a build whose hasher
/// differed) makes that contact's matches be found again from its events
/// under the current model: what `check` compares them with.
fn rekey_matches(
    conn: &Connection,
    (model, slots): (&leadscore_core::Model, &crate::slots::Slots),
) -> Result<u64> {
    let mut rematched = 0;
    let mut after = i64::MIN;
    let mut keys: HashMap<u64, u64> = HashMap::new();
    loop {
        let contacts: Vec<(i64, String, Vec<u8>)> = conn
            .prepare_cached(
                "SELECT id, attributes, hits FROM contacts WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?
            .query_map(params![after, CHUNK], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let Some(last) = contacts.last() else {
            return Ok(rematched);
        };
        after = last.0;
        for (rowid, attributes, packed) in contacts {
            if packed.is_empty() {
                continue;
            }
            keys.clear();
            for_each_stored_event(conn, rowid, None, |e| {
                keys.insert(legacy_key(e.id), event_key(e.id));
                Ok(())
            })?;
            let mut hits = slots.unpack(&packed)?;
            if hits.iter().all(|h| keys.contains_key(&h.key)) {
                for h in &mut hits {
                    h.key = keys[&h.key];
                }
            } else {
                let values = model_values_json(&model.vocabulary, &attributes)?;
                hits = rematch(conn, model, rowid, &values)?;
                rematched += 1;
            }
            sort_hits(&mut hits);
            conn.prepare_cached("UPDATE contacts SET hits = ?1 WHERE id = ?2")?
                .execute(params![slots.pack(&hits), rowid])?;
        }
    }
}
