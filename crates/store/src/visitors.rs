//! Anonymous visitors: contacts first seen through a tracking call that
//! named only an `anonymousId`, and touched by no other way in since (a
//! contacts import or upsert, an events import or API call, a tracking call
//! naming the id as `userId`). Only such a contact may be joined into
//! another one ([`Store::merge_contacts`], what `identify` does): a known
//! lead is never merged away by a tracking call, whoever sends it.
//!
//! The marks are rows of `visitors` (schema 10), removed with their contact
//! and by [`forget`]; contacts of databases made before schema 10 are all
//! known.

use leadscore_batch::rows::ContactRow;
use leadscore_core::Timestamp;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::error::Result;
use crate::import::ImportSummary;
use crate::ingest::store_contacts;
use crate::model_versions::check_model;
use crate::store::Store;

/// Schema 10: the marks (see the module documentation).
pub(crate) const V10_VISITORS: &str = "
CREATE TABLE IF NOT EXISTS visitors (
    contact INTEGER PRIMARY KEY REFERENCES contacts(id) ON DELETE CASCADE
);
";

/// Whether a contact has the id `id`.
fn contact_exists(conn: &Connection, id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM contacts WHERE ext_id = ?1")?
        .query_row([id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Whether the contact of row `rowid` is an anonymous visitor.
pub(crate) fn is_visitor(conn: &Connection, rowid: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM visitors WHERE contact = ?1")?
        .query_row([rowid], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Marks the contacts with these ids known: no longer anonymous visitors.
pub(crate) fn forget<'a>(conn: &Connection, ids: impl IntoIterator<Item = &'a str>) -> Result<()> {
    let any: bool = conn.query_row("SELECT EXISTS (SELECT 1 FROM visitors)", [], |r| r.get(0))?;
    if !any {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(
        "DELETE FROM visitors WHERE contact = (SELECT id FROM contacts WHERE ext_id = ?1)",
    )?;
    for id in ids {
        stmt.execute([id])?;
    }
    Ok(())
}

impl Store {
    /// Records anonymous visitors seen by tracking calls: each id no
    /// contact has is created (no attributes, scored at `now`) and marked a
    /// visitor, all in one transaction. Returns the ids created; an
    /// existing contact is left as it is (a known one stays known).
    pub fn visit(&mut self, ids: &[String], now: Timestamp) -> Result<Vec<String>> {
        self.with_current_model(|s| {
            let tx = s
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            check_model(&tx, s.model_version)?;
            let mut created = Vec::new();
            for id in ids {
                if contact_exists(&tx, id)? || created.contains(id) {
                    continue;
                }
                let row = ContactRow {
                    id: id.clone(),
                    attributes: Vec::new(),
                };
                store_contacts(
                    &tx,
                    (&s.model, &s.slots, s.model_version),
                    std::iter::once(row),
                    false,
                    now,
                    &mut ImportSummary::default(),
                )?;
                tx.execute(
                    "INSERT INTO visitors(contact) SELECT id FROM contacts WHERE ext_id = ?1",
                    params![id],
                )?;
                created.push(id.clone());
            }
            tx.commit()?;
            Ok(created)
        })
    }

    /// The ids among `ids` that no contact has.
    pub fn missing_contacts(&self, ids: &[String]) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for id in ids {
            if !contact_exists(&self.conn, id)? {
                out.push(id.clone());
            }
        }
        Ok(out)
    }

    /// Whether contact `id` is an anonymous visitor (false for an unknown
    /// id).
    pub fn is_visitor(&self, id: &str) -> Result<bool> {
        let rowid: Option<i64> = self
            .conn
            .prepare_cached("SELECT id FROM contacts WHERE ext_id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        match rowid {
            Some(r) => is_visitor(&self.conn, r),
            None => Ok(false),
        }
    }

    /// The ids of every anonymous visitor.
    pub fn visitor_ids(&self) -> Result<Vec<String>> {
        Ok(self
            .conn
            .prepare("SELECT c.ext_id FROM visitors v JOIN contacts c ON c.id = v.contact")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?)
    }

    /// Marks these contacts known, as a way in other than an anonymous
    /// tracking call touched them: they can no longer be joined into
    /// another contact.
    pub fn forget_visitors(&mut self, ids: &[String]) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        forget(&tx, ids.iter().map(String::as_str))?;
        tx.commit()?;
        Ok(())
    }
}
