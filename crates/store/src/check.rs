//! `check`: SQLite's own integrity check, then every contact's stored
//! matches and live score against a re-computation from its stored events.

use leadscore_core::{Timestamp, evaluate};

use crate::error::{Result, StoreError};
use crate::matching::rematch;
use crate::store::Store;
use crate::stored_contact::{CONTACT_COLUMNS, StoredContact};
use crate::values::model_values;

impl Store {
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
            "SELECT {CONTACT_COLUMNS}, scored_at, score FROM contacts ORDER BY id"
        ))?;
        let mut rows = stmt.query([])?;
        let mut bad = Vec::new();
        while let Some(r) = rows.next()? {
            let scored_at: Option<i64> = r.get(7)?;
            let score: Option<f64> = r.get(8)?;
            let s = StoredContact::decode(StoredContact::from_row(r)?, &self.slots)?;
            let values = model_values(&self.model.vocabulary, &s.attributes);
            let mut expected = rematch(&self.conn, &self.model, s.rowid, &values)?;
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
