//! One contact: its score at a time, its attributes, why it has its
//! score, its band and stage history, and erasing it.

use leadscore_core::{EventKey, Explanation, Hit, ScoreCard, Timestamp, Trace, evaluate};
use rusqlite::{OptionalExtension, TransactionBehavior};

use crate::error::{Result, StoreError};
use crate::listing::{ContactScore, ScoreFilter};
use crate::matching::{for_each_stored_event, stored_event_hits};
use crate::store::Store;
use crate::stored_contact::{StoredContact, event_range};
use crate::values::{model_values, model_values_json, parse_map};

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
/// One stored event, as a contact's timeline shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEventRow {
    /// The event id.
    pub id: String,
    /// The event type.
    pub event_type: String,
    /// When it happened.
    pub at: Timestamp,
    /// Its properties.
    pub properties: std::collections::BTreeMap<String, String>,
}

/// The row id of contact `id`, or [`StoreError::UnknownContact`].
fn rowid_of(conn: &rusqlite::Connection, id: &str) -> Result<i64> {
    conn.prepare_cached("SELECT id FROM contacts WHERE ext_id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::UnknownContact(id.into()))
}

impl TransitionRow {
    /// Reads the columns `at, kind, from_value, to_value, cause, detail,
    /// model_version` of `transitions`, starting at column `first`.
    pub(crate) fn from_row(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Self> {
        Ok(TransitionRow {
            at: Timestamp(r.get(first)?),
            kind: r.get(first + 1)?,
            from: r.get(first + 2)?,
            to: r.get(first + 3)?,
            cause: r.get(first + 4)?,
            detail: r.get(first + 5)?,
            model_version: r.get(first + 6)?,
        })
    }
}

impl Store {
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

    /// One contact's score card at each of `times`: its history as the
    /// model scores it now (decay, windows, events coming due), for a
    /// chart. The same `evaluate` as [`Store::contact_score`].
    pub fn score_series(&self, id: &str, times: &[Timestamp]) -> Result<Vec<ScoreCard>> {
        let (attrs, packed): (String, Vec<u8>) = self
            .conn
            .prepare_cached("SELECT attributes, hits FROM contacts WHERE ext_id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .ok_or_else(|| StoreError::UnknownContact(id.into()))?;
        let values = model_values_json(&self.model.vocabulary, &attrs)?;
        let hits = self.slots.unpack(&packed)?;
        let mut work = hits.clone();
        Ok(times
            .iter()
            .map(|&t| {
                work.clone_from(&hits);
                evaluate(&self.model, values.as_slice(), &mut work, t, None)
            })
            .collect())
    }

    /// A contact's stored events, newest first, at most `limit`.
    pub fn contact_events(&self, id: &str, limit: usize) -> Result<Vec<StoredEventRow>> {
        let rowid = rowid_of(&self.conn, id)?;
        let (lo, hi) = event_range(rowid);
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, type, ts, properties FROM events WHERE seq BETWEEN ?1 AND ?2
             ORDER BY ts DESC, id LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            rusqlite::params![lo, hi, i64::try_from(limit).unwrap_or(i64::MAX)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?)),
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (id, event_type, ts, props): (String, String, i64, String) = row?;
            out.push(StoredEventRow {
                id,
                event_type,
                at: Timestamp(ts),
                properties: parse_map(&props)?,
            });
        }
        Ok(out)
    }

    /// Band and stage transitions per day (UTC) from `since` to `until`:
    /// (day's first instant, band changes, stage changes), oldest first;
    /// days without any are left out.
    pub fn transitions_per_day(
        &self,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<(Timestamp, u64, u64)>> {
        const DAY: i64 = 86_400_000_000_000;
        let mut stmt = self.conn.prepare_cached(
            "SELECT at / ?3 AS day, sum(kind = 'band'), sum(kind = 'stage') FROM transitions
             WHERE at > ?1 AND at <= ?2 GROUP BY day ORDER BY day",
        )?;
        let rows = stmt.query_map(rusqlite::params![since.0, until.0, DAY], |r| {
            Ok((
                Timestamp(r.get::<_, i64>(0)? * DAY),
                r.get::<_, i64>(1)? as u64,
                r.get::<_, i64>(2)? as u64,
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// A contact's attributes, if the contact exists.
    pub fn attributes(
        &self,
        id: &str,
    ) -> Result<Option<std::collections::BTreeMap<String, String>>> {
        Ok(StoredContact::load(&self.conn, id, &self.slots)?.map(|s| s.attributes))
    }

    /// Why a contact has its score at `as_of`.
    pub fn explain(&self, id: &str, as_of: Timestamp) -> Result<Explanation> {
        let stored = StoredContact::load(&self.conn, id, &self.slots)?
            .ok_or_else(|| StoreError::UnknownContact(id.into()))?;
        let values = model_values(&self.model.vocabulary, &stored.attributes);
        let mut hits: Vec<Hit<EventKey>> = Vec::new();
        let types = self.model.event_types();
        for_each_stored_event(&self.conn, stored.rowid, Some(&types), |e| {
            let key = EventKey {
                id: e.id.to_string(),
                event_type: e.event_type.to_string(),
            };
            stored_event_hits(&self.model, &values, e, key, &mut hits)
        })?;
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
        let rowid = rowid_of(&self.conn, id)?;
        let mut stmt = self.conn.prepare(
            "SELECT at, kind, from_value, to_value, cause, detail, model_version
             FROM transitions WHERE contact = ?1 ORDER BY at, seq",
        )?;
        let rows = stmt.query_map([rowid], |r| TransitionRow::from_row(r, 0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Erases a contact: attributes, events, scores and history.
    pub fn delete_contact(&mut self, id: &str) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let rowid = rowid_of(&tx, id)?;
        let (lo, hi) = event_range(rowid);
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
}
