//! Segments: saved, named filters whose membership is computed when asked,
//! so it is always current: band, stage, a condition on attributes,
//! dimensions and the score (the `--where` language), and "had an event of
//! type X in the last N days".

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::listing::{ContactScore, Filter, Placed, Ranked, Recent, ScoreFilter, TextSearch};
use crate::store::Store;
use crate::stored_contact::event_range;
use leadscore_core::Timestamp;
use leadscore_core::timestamp::days_to_nanos;

/// Longest segment name, in bytes.
pub const MAX_NAME: usize = 64;

/// "Had an event of this type in the last N days".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HadEvent {
    /// The event type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The look-back, in days.
    pub within_days: f64,
}

/// What a segment holds; every part given must hold.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentDefinition {
    /// Only this band (`disqualified` included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub band: Option<String>,
    /// Only this stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// A condition as a TOML inline table (attributes, dimensions, score).
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// A recent event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub had_event: Option<HadEvent>,
}

fn bad(message: impl Into<String>) -> StoreError {
    StoreError::Segment(message.into())
}

impl Store {
    fn segment_filter(&self, d: &SegmentDefinition) -> Result<ScoreFilter> {
        if let Some(b) = &d.band
            && b != "disqualified"
            && !self.model.bands.iter().any(|x| &x.id == b)
        {
            return Err(bad(format!("band: the model has no band {b:?}")));
        }
        if let Some(st) = &d.stage
            && !self.model.stages.iter().any(|x| &x.id == st)
        {
            return Err(bad(format!("stage: the model has no stage {st:?}")));
        }
        if let Some(h) = &d.had_event
            && (h.event_type.trim().is_empty()
                || !(h.within_days > 0.0 && h.within_days <= 36_500.0))
        {
            return Err(bad("had_event: a type and within_days between 0 and 36500"));
        }
        let condition = match &d.condition {
            Some(w) => Some(Filter::parse(w, &self.model).map_err(|e| bad(format!("where: {e}")))?),
            None => None,
        };
        Ok(ScoreFilter {
            band: d.band.clone(),
            stage: d.stage.clone(),
            condition,
            text: None,
        })
    }

    /// Saves (or replaces) a segment, after checking it against the model.
    pub fn save_segment(
        &mut self,
        name: &str,
        definition: &SegmentDefinition,
        now: Timestamp,
    ) -> Result<()> {
        let ok = !name.is_empty()
            && name.len() <= MAX_NAME
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(bad(format!(
                "name: 1 to {MAX_NAME} letters, digits, '-' or '_'"
            )));
        }
        self.segment_filter(definition)?;
        let json =
            serde_json::to_string(definition).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.conn.execute(
            "INSERT INTO segments(name, definition, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(name) DO UPDATE SET definition = excluded.definition",
            params![name, json, now.0],
        )?;
        Ok(())
    }

    /// Every segment, by name.
    pub fn segments(&self) -> Result<Vec<(String, SegmentDefinition)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, definition FROM segments ORDER BY name")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(n, d)| {
                let def = serde_json::from_str(&d)
                    .map_err(|e| StoreError::Corrupt(format!("segment {n}: {e}")))?;
                Ok((n, def))
            })
            .collect()
    }

    /// One segment's definition.
    pub fn segment(&self, name: &str) -> Result<Option<SegmentDefinition>> {
        let d: Option<String> = self
            .conn
            .query_row(
                "SELECT definition FROM segments WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()?;
        d.map(|d| {
            serde_json::from_str(&d)
                .map_err(|e| StoreError::Corrupt(format!("segment {name}: {e}")))
        })
        .transpose()
    }

    /// Deletes a segment; false if there is none.
    pub fn delete_segment(&mut self, name: &str) -> Result<bool> {
        Ok(self
            .conn
            .execute("DELETE FROM segments WHERE name = ?1", [name])?
            > 0)
    }

    /// The contacts in segment `name` at `as_of`, in creation order.
    pub fn segment_members(&self, name: &str, as_of: Timestamp) -> Result<Vec<ContactScore>> {
        let def = self
            .segment(name)?
            .ok_or_else(|| bad(format!("no segment {name:?}")))?;
        self.members(&def, as_of)
    }

    /// Whether contact `id` is in the segment defined by `def` at `as_of`
    /// (false for an unknown contact).
    pub fn contact_in(&self, def: &SegmentDefinition, id: &str, as_of: Timestamp) -> Result<bool> {
        let filter = self.segment_filter(def)?;
        let row: Option<(i64, String, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT id, attributes, hits FROM contacts WHERE ext_id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((rowid, attrs, hits)) = row else {
            return Ok(false);
        };
        if crate::listing::score_one(
            (&self.model, &self.slots),
            id.to_owned(),
            &attrs,
            &hits,
            as_of,
            &filter,
        )?
        .is_none()
        {
            return Ok(false);
        }
        match &def.had_event {
            None => Ok(true),
            Some(h) => {
                let since = as_of.0.saturating_sub(days_to_nanos(h.within_days));
                let (lo, hi) = event_range(rowid);
                Ok(self
                    .conn
                    .query_row(
                        "SELECT 1 FROM events WHERE seq BETWEEN ?1 AND ?2 AND type = ?3 AND ts > ?4 AND ts <= ?5 LIMIT 1",
                        params![lo, hi, h.event_type, since, as_of.0],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some())
            }
        }
    }

    /// The contacts a definition holds at `as_of`.
    pub fn members(&self, def: &SegmentDefinition, as_of: Timestamp) -> Result<Vec<ContactScore>> {
        let filter = self.segment_filter(def)?;
        self.scores_with(as_of, &filter, recent(def, as_of).as_ref())
    }

    /// The first `keep` members of a segment at `as_of`, in the order
    /// `before` gives (a total order), and how many members there are, as
    /// [`Store::ranked`] gives them (a `had_event` part is checked while
    /// reading, before a contact is scored).
    pub fn ranked_members(
        &self,
        (def, text): (&SegmentDefinition, Option<TextSearch>),
        as_of: Timestamp,
        keep: usize,
        before: impl Fn(&Placed, &Placed) -> std::cmp::Ordering + Sync,
    ) -> Result<Ranked> {
        let mut filter = self.segment_filter(def)?;
        filter.text = text;
        self.ranked_with(as_of, &filter, recent(def, as_of).as_ref(), keep, before)
    }

    /// How many contacts a definition holds at `as_of` (no member is kept).
    pub fn member_count(&self, def: &SegmentDefinition, as_of: Timestamp) -> Result<usize> {
        Ok(self
            .ranked_members((def, None), as_of, 0, |_, _| std::cmp::Ordering::Equal)?
            .total)
    }
}

/// The `had_event` part of a definition at `as_of`, as listing checks it.
fn recent(def: &SegmentDefinition, as_of: Timestamp) -> Option<Recent<'_>> {
    def.had_event.as_ref().map(|h| Recent {
        event_type: &h.event_type,
        since: as_of.0.saturating_sub(days_to_nanos(h.within_days)),
    })
}
