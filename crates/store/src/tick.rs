//! Time passing: `tick` records the band and stage changes that decay,
//! windows and events coming due bring, each at its own time, for the
//! contacts whose next check is due.

use leadscore_core::Timestamp;
use rayon::prelude::*;
use rusqlite::TransactionBehavior;

use crate::error::Result;
use crate::live::{LiveState, time_steps};
use crate::model_versions::check_model;
use crate::store::Store;
use crate::stored_contact::{CONTACT_COLUMNS, StoredContact};
use crate::transitions::write_steps;
use crate::values::model_values;

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
impl Store {
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

    fn tick_chunk(&mut self, until: Timestamp, limit: usize) -> Result<(TickSummary, bool)> {
        let mut summary = TickSummary::default();
        let limit = limit.max(1);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        check_model(&tx, self.model_version)?;
        let mut due: Vec<StoredContact> = {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {CONTACT_COLUMNS} FROM contacts WHERE next_check_at <= ?1 ORDER BY next_check_at, id LIMIT ?2"
            ))?;
            let rows = stmt.query_map(
                rusqlite::params![until.0, i64::try_from(limit).unwrap_or(i64::MAX)],
                StoredContact::from_row,
            )?;
            let raw = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            raw.into_iter()
                .map(|raw| StoredContact::decode(raw, &self.slots))
                .collect::<Result<_>>()?
        };
        let more = due.len() == limit;
        let model = &self.model;
        let steps: Vec<Vec<(Timestamp, LiveState)>> = due
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
                stored.before(),
            )?;
        }
        tx.commit()?;
        Ok((summary, more))
    }
}
