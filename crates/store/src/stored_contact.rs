//! A contact row as stored: its ids, attributes, packed rule matches
//! (decoded through the model's [`Slots`]), live band and stage, and next
//! check time; and where its events are (`seq` = `contact << 32 | n`).

use std::collections::BTreeMap;

use leadscore_core::Hit;
use rusqlite::{Connection, OptionalExtension};

use crate::error::Result;
use crate::slots::Slots;
use crate::transitions::{After, Before};
use crate::values::parse_map;

/// A contact's stored state, as read from its row.
#[derive(Clone, Debug)]
pub struct StoredContact {
    /// Internal row id.
    pub rowid: i64,
    /// External contact id.
    pub ext_id: String,
    /// All attributes.
    pub attributes: BTreeMap<String, String>,
    /// Rule matches under the current model.
    pub hits: Vec<Hit<u64>>,
    /// Live band, if scored.
    pub band: Option<String>,
    /// Live stage.
    pub stage: Option<String>,
    /// When time alone may next change the contact.
    pub next_check_at: Option<i64>,
}

/// The raw columns of a contact row, before decoding.
pub type RawContact = (
    i64,
    String,
    String,
    Vec<u8>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

/// Columns read into [`StoredContact`], in order.
pub const CONTACT_COLUMNS: &str = "id, ext_id, attributes, hits, band, stage, next_check_at";

impl StoredContact {
    /// Reads a row selected with [`CONTACT_COLUMNS`].
    pub fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawContact> {
        Ok((
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
            row.get(5)?,
            row.get(6)?,
        ))
    }

    /// Decodes the raw columns.
    pub fn decode(raw: RawContact, slots: &Slots) -> Result<StoredContact> {
        let (rowid, ext_id, attributes, hits, band, stage, next_check_at) = raw;
        Ok(StoredContact {
            rowid,
            attributes: parse_map(&attributes)?,
            hits: slots.unpack(&hits)?,
            ext_id,
            band,
            stage,
            next_check_at,
        })
    }

    /// Its stored live state, as the next write finds it.
    pub fn before(&self) -> Before<'_> {
        Before {
            band: self.band.as_deref(),
            stage: self.stage.as_deref(),
            next_check_at: self.next_check_at,
        }
    }

    /// Takes what a write left stored.
    pub fn stored(&mut self, after: After) {
        self.band = after.band;
        self.stage = after.stage;
        self.next_check_at = after.next_check_at;
    }

    /// Loads a contact by external id.
    pub fn load(conn: &Connection, ext_id: &str, slots: &Slots) -> Result<Option<StoredContact>> {
        let raw = conn
            .prepare_cached(&format!(
                "SELECT {CONTACT_COLUMNS} FROM contacts WHERE ext_id = ?1"
            ))?
            .query_row([ext_id], StoredContact::from_row)
            .optional()?;
        raw.map(|raw| StoredContact::decode(raw, slots)).transpose()
    }

    /// Loads a contact by row id.
    pub fn load_rowid(conn: &Connection, rowid: i64, slots: &Slots) -> Result<StoredContact> {
        let raw = conn
            .prepare_cached(&format!(
                "SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = ?1"
            ))?
            .query_row([rowid], StoredContact::from_row)?;
        StoredContact::decode(raw, slots)
    }
}

/// The `seq` range of a contact's events: `contact << 32 | n`.
pub fn event_range(contact: i64) -> (i64, i64) {
    (contact << 32, (contact << 32) | 0xFFFF_FFFF)
}
