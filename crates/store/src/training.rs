//! The training table of a database: every contact's point-in-time
//! features (attributes, behaviour counts and the model's rule points,
//! all from before its cutoff) and whether it converted within the
//! horizon, as `leadscore_learn::history` defines them.

use leadscore_core::{Hit, Timestamp, Trace, evaluate};
use leadscore_learn::Table;
use leadscore_learn::history::{LeadEvent, OutcomeWindow, PointInTimeTable};

use crate::error::Result;
use crate::store::Store;

/// A training table built from the database.
pub struct TrainingTable {
    /// One row per contact kept.
    pub table: Table,
    /// 1 (converted within the horizon) or 0, per row.
    pub labels: Vec<u8>,
    /// Contacts left out: they had converted before the as-of time.
    pub left_out: usize,
}

impl Store {
    /// The training table for outcome events of type `outcome` within
    /// `horizon_days` (days) after `as_of`; `name` names the data in the
    /// table's messages. The rule points of each row are the model's as of
    /// just before the row's cutoff, from the events before it only.
    pub fn training_table(
        &self,
        outcome: &str,
        horizon_days: f64,
        as_of: Timestamp,
        name: &str,
    ) -> Result<TrainingTable> {
        let types = self.event_types()?;
        let model = self.model();
        let window = OutcomeWindow {
            outcome_type: outcome.to_owned(),
            as_of: as_of.0,
            horizon_days,
        };
        let mut builder = PointInTimeTable::new(
            window,
            &types,
            model.rules.iter().map(|r| r.id.clone()).collect(),
        );
        self.histories(|h| {
            let events: Vec<LeadEvent> = h
                .events
                .iter()
                .map(|e| LeadEvent {
                    event_type: &e.event_type,
                    at: e.at.0,
                    page: e.page.as_deref(),
                })
                .collect();
            builder.add(&h.id, &h.attributes, &events, |cut| {
                let mut hits: Vec<Hit<u64>> =
                    h.hits.iter().filter(|x| x.at.0 < cut).cloned().collect();
                let mut trace = Trace::new();
                evaluate(
                    model,
                    h.values.as_slice(),
                    &mut hits,
                    Timestamp(cut - 1),
                    Some(&mut trace),
                );
                trace.rules.iter().map(|r| r.points).collect()
            });
            Ok(())
        })?;
        let left_out = builder.left_out;
        let (table, labels) = builder.finish(name);
        Ok(TrainingTable {
            table,
            labels,
            left_out,
        })
    }
}
