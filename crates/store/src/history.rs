//! Whole contact records for learning: every attribute, every event (type,
//! time, page) and the rule matches under the current model, read in one
//! pass (a contact's events are one key range, and contacts come in key
//! order, so the two tables are merged like sorted lists).

use std::collections::BTreeMap;

use leadscore_core::{Hit, Timestamp};

use crate::error::Result;
use crate::store::Store;
use crate::stored_contact::{CONTACT_COLUMNS, RawContact, StoredContact};
use crate::values::{model_values, parse_map};

/// One event of a contact's record.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryEvent {
    /// Event type.
    pub event_type: String,
    /// When it happened.
    pub at: Timestamp,
    /// The page (`url` property), if it has one.
    pub page: Option<String>,
}

/// One contact's whole record.
#[derive(Clone, Debug)]
pub struct ContactHistory {
    /// The contact id.
    pub id: String,
    /// Every attribute.
    pub attributes: BTreeMap<String, String>,
    /// The attributes the current model reads, by attribute id (for
    /// `leadscore_core::evaluate`).
    pub values: Vec<Option<Box<str>>>,
    /// Every event, in arrival order.
    pub events: Vec<HistoryEvent>,
    /// The events' rule matches under the current model.
    pub hits: Vec<Hit<u64>>,
}

impl Store {
    /// Calls `each` with every contact's record, in the order contacts were
    /// created.
    pub fn histories(&self, mut each: impl FnMut(ContactHistory) -> Result<()>) -> Result<()> {
        let mut contacts = self.conn.prepare(&format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts ORDER BY id"
        ))?;
        let mut events = self
            .conn
            .prepare("SELECT seq, type, ts, properties FROM events ORDER BY seq")?;
        let mut event_rows = events.query([])?;
        let mut pending: Option<(i64, HistoryEvent)> = None;
        let mut rows = contacts.query([])?;
        while let Some(r) = rows.next()? {
            let raw: RawContact = StoredContact::from_row(r)?;
            let stored = StoredContact::decode(raw, &self.slots)?;
            let mut list = Vec::new();
            loop {
                if pending.is_none() {
                    pending = match event_rows.next()? {
                        Some(e) => {
                            let seq: i64 = e.get(0)?;
                            let props = parse_map(&e.get::<_, String>(3)?)?;
                            Some((
                                seq >> 32,
                                HistoryEvent {
                                    event_type: e.get(1)?,
                                    at: Timestamp(e.get(2)?),
                                    page: props.get("url").cloned(),
                                },
                            ))
                        }
                        None => None,
                    };
                }
                match pending.take() {
                    Some((owner, e)) if owner == stored.rowid => list.push(e),
                    Some((owner, e)) if owner < stored.rowid => {
                        // An event of a contact that is gone (cannot happen:
                        // deletion removes events); skip it.
                        let _ = e;
                    }
                    other => {
                        pending = other;
                        break;
                    }
                }
            }
            each(ContactHistory {
                id: stored.ext_id.clone(),
                values: model_values(&self.model.vocabulary, &stored.attributes),
                attributes: stored.attributes,
                events: list,
                hits: stored.hits,
            })?;
        }
        Ok(())
    }
}

impl Store {
    /// Every event of type `event_type`: its contact's id and its time (ns),
    /// in no order (outcomes, for backtests).
    pub fn event_times(&self, event_type: &str) -> Result<Vec<(String, i64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT c.ext_id, e.ts FROM events e JOIN contacts c ON c.id = e.contact WHERE e.type = ?1",
        )?;
        let rows = stmt.query_map([event_type], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Every event type stored, sorted.
    pub fn event_types(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT type FROM events ORDER BY type")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
    }
}
