//! Identity: when an anonymous visitor is identified, its history joins the
//! known contact; and the feed of band and stage changes.

use std::collections::BTreeMap;

use leadscore_core::Timestamp;
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use crate::contact::TransitionRow;
use crate::error::{Result, StoreError};
use crate::ingest::insert_contact;
use crate::live::{Cause, advance, update_contact};
use crate::matching::rematch;
use crate::store::Store;
use crate::stored_contact::{StoredContact, event_range};
use crate::values::model_values;

/// One entry of the transitions feed.
#[derive(Clone, Debug)]
pub struct FeedEntry {
    /// Its position in the feed (a cursor: ask for entries after it).
    pub seq: i64,
    /// The contact.
    pub contact: String,
    /// The change.
    pub transition: TransitionRow,
}

impl Store {
    /// Joins the anonymous visitor `from` into `into`: its events move to
    /// `into`, its attributes fill those `into` lacks, `into` is re-scored
    /// (changes recorded with cause `data`), and `from` is erased with its
    /// history. `into` is created if it does not exist. Returns false (and
    /// changes nothing) if `from` does not exist, is `into`, or is not an
    /// anonymous visitor (a known contact is never merged away; see
    /// `visitors`).
    pub fn merge_contacts(&mut self, from: &str, into: &str, now: Timestamp) -> Result<bool> {
        if from == into {
            return Ok(false);
        }
        self.with_current_model(|s| s.merge_in(from, into, now))
    }

    fn merge_in(&mut self, from: &str, into: &str, now: Timestamp) -> Result<bool> {
        let (model, slots, version) = (&self.model, &self.slots, self.model_version);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        crate::model_versions::check_model(&tx, version)?;
        let Some(source) = StoredContact::load(&tx, from, slots)? else {
            return Ok(false);
        };
        if !crate::visitors::is_visitor(&tx, source.rowid)? {
            return Ok(false);
        }
        let target = match StoredContact::load(&tx, into, slots)? {
            Some(t) => t,
            None => {
                let rowid = insert_contact(&tx, into, &BTreeMap::new())?;
                StoredContact::load_rowid(&tx, rowid, slots)?
            }
        };
        // Move the events: same ids, new sequence numbers in `into`'s range.
        let (lo, hi) = event_range(source.rowid);
        let moving: Vec<(String, String, i64, String)> = tx
            .prepare("SELECT id, type, ts, properties FROM events WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq")?
            .query_map([lo, hi], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<_>>()?;
        tx.execute("DELETE FROM events WHERE seq BETWEEN ?1 AND ?2", [lo, hi])?;
        let (tlo, thi) = event_range(target.rowid);
        let last: Option<i64> = tx
            .query_row(
                "SELECT max(seq) FROM events WHERE seq BETWEEN ?1 AND ?2",
                [tlo, thi],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        let first = last.map_or(tlo, |m| m + 1);
        for (seq, (id, ty, ts, props)) in (first..).zip(&moving) {
            if seq > thi {
                return Err(StoreError::Corrupt(format!(
                    "more than 2^32 events for contact {into}"
                )));
            }
            tx.execute(
                "INSERT INTO events(seq, id, contact, type, ts, properties) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![seq, id, target.rowid, ty, ts, props],
            )?;
        }
        // Attributes: the known contact's win.
        let mut attributes = source.attributes.clone();
        attributes.extend(target.attributes.clone());
        if attributes != target.attributes {
            let json = serde_json::to_string(&attributes)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            tx.execute(
                "UPDATE contacts SET attributes = ?1 WHERE id = ?2",
                params![json, target.rowid],
            )?;
        }
        let target = advance(&tx, model, version, target, now)?;
        let values = model_values(&model.vocabulary, &attributes);
        let mut hits = rematch(&tx, model, target.rowid, &values)?;
        update_contact(
            &tx,
            (model, slots),
            version,
            target.rowid,
            &values,
            &mut hits,
            target.before(),
            now,
            &Cause::Data,
        )?;
        tx.execute("DELETE FROM transitions WHERE contact = ?1", [source.rowid])?;
        tx.execute(
            "DELETE FROM outbox WHERE contact = ?1 AND state = 'pending'",
            [from],
        )?;
        tx.execute("DELETE FROM contacts WHERE id = ?1", [source.rowid])?;
        tx.commit()?;
        Ok(true)
    }

    /// The feed position of the newest band or stage change (0: none yet).
    pub fn last_transition_seq(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT coalesce(max(seq), 0) FROM transitions", [], |r| {
                r.get(0)
            })?)
    }

    /// Band and stage changes after feed position `after` (0: from the
    /// start), oldest first, at most `limit`.
    pub fn transitions_after(&self, after: i64, limit: usize) -> Result<Vec<FeedEntry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT t.seq, c.ext_id, t.at, t.kind, t.from_value, t.to_value, t.cause, t.detail, t.model_version
             FROM transitions t JOIN contacts c ON c.id = t.contact
             WHERE t.seq > ?1 ORDER BY t.seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, limit as i64], |r| {
            Ok(FeedEntry {
                seq: r.get(0)?,
                contact: r.get(1)?,
                transition: TransitionRow::from_row(r, 2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}
