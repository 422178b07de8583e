//! Listing many contacts' scores: every contact's score at a time, with
//! band, stage and `--where` filters, and ranked lists (the leaderboard,
//! `scores --top N`) that keep only the first N of a million.
//!
//! Scores are computed from each contact's stored rule matches by the
//! core's `evaluate`, so they equal `leadscore score` on the same data. One
//! thread reads the contacts table in storage order while the batch read
//! before is scored on the other cores.

use std::cmp::Ordering;

use leadscore_core::condition::{AttrId, Condition, Facts, Vocabulary};
use leadscore_core::validate::compile_condition;
use leadscore_core::{Model, ScoreCard, Timestamp, evaluate};
use rayon::prelude::*;
use rusqlite::{OptionalExtension, params};

use crate::error::{Result, StoreError};
use crate::overlap::overlapped;
use crate::slots::Slots;
use crate::store::Store;
use crate::stored_contact::event_range;
use crate::values::{attribute_values_json, model_values_json};

/// One contact's score, as listed by [`Store::scores`].
#[derive(Clone, Debug)]
pub struct ContactScore {
    /// The contact id.
    pub id: String,
    /// Its score card at the requested time.
    pub card: ScoreCard,
}

/// A listed contact with its place in storage order, which ranked lists
/// may use to break ties.
#[derive(Clone, Debug)]
pub struct Placed {
    /// Its place in the order contacts were first stored: a contact stored
    /// earlier has a smaller one (its row number; not dense).
    pub place: usize,
    /// Its id and score.
    pub score: ContactScore,
}

/// The first contacts of a ranked list, and how many there are in all.
#[derive(Clone, Debug, Default)]
pub struct Ranked {
    /// The first ones, in order (at most the number asked for).
    pub items: Vec<ContactScore>,
    /// How many contacts passed the filter.
    pub total: usize,
}

/// "Had an event of this type after `since` (ns) and at or before the
/// as-of time": a segment's `had_event`, checked while listing.
pub(crate) struct Recent<'a> {
    /// The event type.
    pub event_type: &'a str,
    /// The start of the look-back (excluded), ns.
    pub since: i64,
}

/// What to list.
#[derive(Default)]
pub struct ScoreFilter {
    /// Only contacts in this band (`disqualified` included).
    pub band: Option<String>,
    /// Only contacts in this stage.
    pub stage: Option<String>,
    /// Only contacts for which this condition holds.
    pub condition: Option<Filter>,
    /// Only contacts whose id or an attribute's value contains this text
    /// (ignoring case).
    pub text: Option<TextSearch>,
}

/// A text searched for in contact ids and attribute values, ignoring case.
pub struct TextSearch {
    /// The text, in lower case.
    needle: String,
}

impl TextSearch {
    /// A search for `text` (trimmed); `None` for empty text.
    pub fn new(text: &str) -> Option<TextSearch> {
        let needle = text.trim().to_lowercase();
        (!needle.is_empty()).then_some(TextSearch { needle })
    }

    /// Whether the contact `id`, with its stored attributes (a JSON
    /// object of text values), holds the text.
    fn holds(&self, id: &str, attributes: &str) -> Result<bool> {
        if id.to_lowercase().contains(&self.needle) {
            return Ok(true);
        }
        // Attribute values are JSON strings: text the needle could be
        // written as without escapes is found in the raw JSON first, and
        // only those contacts are decoded.
        let plain = !self
            .needle
            .chars()
            .any(|c| c == '"' || c == '\\' || c.is_control());
        if plain && !attributes.to_lowercase().contains(&self.needle) {
            return Ok(false);
        }
        Ok(crate::values::parse_map(attributes)?
            .values()
            .any(|v| v.to_lowercase().contains(&self.needle)))
    }
}

/// A compiled `--where` condition.
pub struct Filter {
    condition: Condition,
    vocabulary: Vocabulary,
}

impl Filter {
    /// Compiles a condition written as a TOML inline table, for example
    /// `{ all = [{ attribute = "country", equals = "US" }, { score = true, gte = 50 }] }`.
    pub fn parse(text: &str, model: &Model) -> Result<Filter> {
        let dims: Vec<String> = model.dimensions.iter().map(|d| d.id.clone()).collect();
        let (condition, vocabulary) =
            compile_condition(text, &dims).map_err(|e| StoreError::Filter(e.to_string()))?;
        Ok(Filter {
            condition,
            vocabulary,
        })
    }

    /// Whether the condition holds for a contact whose stored attributes
    /// (JSON) are `attributes` and whose card is `card`.
    fn holds(&self, attributes: &str, card: &ScoreCard) -> Result<bool> {
        struct F<'a> {
            values: &'a [Option<Box<str>>],
            card: &'a ScoreCard,
        }
        impl Facts for F<'_> {
            fn attribute(&self, id: AttrId) -> Option<&str> {
                self.values.get(id.0 as usize)?.as_deref()
            }
            fn dimension(&self, index: usize) -> Option<f64> {
                self.card.dimensions.get(index).copied()
            }
            fn score(&self) -> Option<f64> {
                Some(self.card.score)
            }
        }
        let values = attribute_values_json(&self.vocabulary.attributes, attributes)?;
        Ok(self.condition.holds(&F {
            values: &values,
            card,
        }))
    }
}

/// One contact's card at `as_of` from its stored attributes (JSON) and
/// packed rule matches, if it passes `filter`.
pub(crate) fn score_one(
    (model, slots): (&Model, &Slots),
    id: String,
    attrs: &str,
    hits: &[u8],
    as_of: Timestamp,
    filter: &ScoreFilter,
) -> Result<Option<ContactScore>> {
    if let Some(t) = &filter.text
        && !t.holds(&id, attrs)?
    {
        return Ok(None);
    }
    let values = model_values_json(&model.vocabulary, attrs)?;
    let mut hits = slots.unpack(hits)?;
    let card = evaluate(model, values.as_slice(), &mut hits, as_of, None);
    if let Some(b) = &filter.band
        && card.band_name(model) != Some(b.as_str())
    {
        return Ok(None);
    }
    if let Some(s) = &filter.stage
        && card.stage_name(model) != Some(s.as_str())
    {
        return Ok(None);
    }
    if let Some(f) = &filter.condition
        && !f.holds(attrs, &card)?
    {
        return Ok(None);
    }
    Ok(Some(ContactScore { id, card }))
}

/// Whether a contact's stored band and stage are its band and stage at
/// `as_of` (ns): its live state was computed at or before `as_of`, and time
/// alone changes neither before its next check (with a second's margin:
/// next checks are set at least a second after scoring) nor, with no next
/// check, within the search horizon.
fn stored_class_holds(
    scored_at: Option<i64>,
    next_check_at: Option<i64>,
    as_of: Timestamp,
) -> bool {
    let Some(scored_at) = scored_at else {
        return false;
    };
    if as_of.0 < scored_at {
        return false;
    }
    match next_check_at {
        Some(t) => as_of.0 < t.saturating_sub(1_000_000_000),
        None => {
            as_of.0
                < scored_at.saturating_add(leadscore_core::timestamp::days_to_nanos(
                    crate::live::HORIZON_DAYS,
                ))
        }
    }
}

/// Contacts read, then scored, together while listing: memory holds two
/// such batches besides what the caller keeps.
pub(crate) const LIST_BATCH: usize = 20_000;

/// Candidates of a band or stage filter read, then scored, together.
const CANDIDATE_BATCH: usize = 2_048;

/// One contact as read for listing: its place, id, attributes (JSON) and
/// packed matches.
type Raw = (usize, String, String, Vec<u8>);

impl Store {
    /// Every contact's score at `as_of` that passes `filter`, in the order
    /// contacts were first stored, computed from the stored rule matches by
    /// the core's `evaluate` (so equal to `leadscore score` on the same
    /// data).
    pub fn scores(&self, as_of: Timestamp, filter: &ScoreFilter) -> Result<Vec<ContactScore>> {
        self.scores_with(as_of, filter, None)
    }

    /// [`Store::scores`] of the contacts that also had a `recent` event.
    pub(crate) fn scores_with(
        &self,
        as_of: Timestamp,
        filter: &ScoreFilter,
        recent: Option<&Recent>,
    ) -> Result<Vec<ContactScore>> {
        let mut out = Vec::new();
        self.scan(as_of, filter, recent, |batch| {
            out.extend(batch.into_iter().map(|p| p.score));
            Ok(())
        })?;
        Ok(out)
    }

    /// The first `keep` contacts at `as_of` that pass `filter`, in the
    /// order `before` gives (which must be a total order: break ties by
    /// id or place), and how many passed in all. Memory holds about
    /// `2 * keep` contacts, not all of them, and only the kept ones are
    /// sorted; the list equals sorting [`Store::scores`] and taking the
    /// first `keep`.
    pub fn ranked(
        &self,
        as_of: Timestamp,
        filter: &ScoreFilter,
        keep: usize,
        before: impl Fn(&Placed, &Placed) -> Ordering + Sync,
    ) -> Result<Ranked> {
        self.ranked_with(as_of, filter, None, keep, before)
    }

    /// [`Store::ranked`] of the contacts that also had a `recent` event.
    pub(crate) fn ranked_with(
        &self,
        as_of: Timestamp,
        filter: &ScoreFilter,
        recent: Option<&Recent>,
        keep: usize,
        before: impl Fn(&Placed, &Placed) -> Ordering + Sync,
    ) -> Result<Ranked> {
        let mut kept: Vec<Placed> = Vec::new();
        let mut total = 0;
        // Cut back to `keep` whenever twice that (or a batch more) is held.
        let high = keep
            .saturating_mul(2)
            .max(keep.saturating_add(self.list_batch));
        self.scan(as_of, filter, recent, |batch| {
            total += batch.len();
            if keep == 0 {
                return Ok(());
            }
            kept.extend(batch);
            if kept.len() > high {
                kept.select_nth_unstable_by(keep, &before);
                kept.truncate(keep);
            }
            Ok(())
        })?;
        kept.par_sort_unstable_by(&before);
        kept.truncate(keep);
        Ok(Ranked {
            items: kept.into_iter().map(|p| p.score).collect(),
            total,
        })
    }

    /// Reads the contacts that may pass `filter` in storage order and hands
    /// the ones that pass (and had a `recent` event) to `sink`, a batch at a
    /// time, in order. The next batch is read while the one before is
    /// scored. With a band or stage filter, only [`Store::class_candidates`]
    /// are read when they are known; otherwise every contact.
    fn scan(
        &self,
        as_of: Timestamp,
        filter: &ScoreFilter,
        recent: Option<&Recent>,
        sink: impl FnMut(Vec<Placed>) -> Result<()>,
    ) -> Result<()> {
        const COLUMNS: &str = "ext_id, attributes, hits, band, stage, scored_at, next_check_at, id";
        let candidates = self.class_candidates(as_of, filter)?;
        let mut all = self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM contacts ORDER BY id"))?;
        let mut one = self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM contacts WHERE id = ?1"))?;
        let mut source = match &candidates {
            None => Source::All(all.query([])?),
            Some(ids) => Source::Ids(ids.iter(), &mut one),
        };
        // Looked up on this connection, while reading, before scoring.
        let mut had = match recent {
            Some(_) => Some(self.conn.prepare_cached(
                "SELECT 1 FROM events WHERE seq BETWEEN ?1 AND ?2 AND type = ?3 AND ts > ?4 AND ts <= ?5 LIMIT 1",
            )?),
            None => None,
        };
        let by_class = filter.band.is_some() || filter.stage.is_some();
        // Whether a read row goes on to be scored.
        let mut wanted = |r: &rusqlite::Row| -> Result<Option<Raw>> {
            // A band or stage filter first looks at the stored live state:
            // where it is exact at `as_of` and does not match, the contact
            // is skipped unevaluated.
            let text = |i: usize| {
                r.get_ref(i)
                    .ok()
                    .and_then(|v| v.as_str_or_null().ok().flatten())
            };
            let skip = by_class
                && stored_class_holds(r.get(5)?, r.get(6)?, as_of)
                && (filter.band.as_deref().is_some_and(|b| text(3) != Some(b))
                    || filter
                        .stage
                        .as_deref()
                        .is_some_and(|st| text(4) != Some(st)));
            if skip {
                return Ok(None);
            }
            let rowid: i64 = r.get(7)?;
            if let (Some(stmt), Some(recent)) = (had.as_mut(), recent) {
                let (lo, hi) = event_range(rowid);
                let found = stmt
                    .query_row(
                        params![lo, hi, recent.event_type, recent.since, as_of.0],
                        |_| Ok(()),
                    )
                    .optional()?;
                if found.is_none() {
                    return Ok(None);
                }
            }
            let place = usize::try_from(rowid).unwrap_or_default();
            Ok(Some((place, r.get(0)?, r.get(1)?, r.get(2)?)))
        };
        let model = &self.model;
        let slots = &self.slots;
        let score_batch = |batch: Vec<Raw>| -> Result<Vec<Placed>> {
            batch
                .into_par_iter()
                .filter_map(|(place, id, attrs, hits)| {
                    score_one((model, slots), id, &attrs, &hits, as_of, filter)
                        .map(|s| s.map(|score| Placed { place, score }))
                        .transpose()
                })
                .collect()
        };
        // Candidates come in smaller batches: reading and scoring overlap
        // from the first few thousand on.
        let per_batch = match &candidates {
            None => self.list_batch,
            Some(_) => self.list_batch.min(CANDIDATE_BATCH),
        };
        overlapped(
            |batch: &mut Vec<Raw>| {
                batch.reserve(per_batch);
                while batch.len() < per_batch {
                    let raw = match &mut source {
                        Source::All(rows) => match rows.next()? {
                            Some(r) => wanted(r)?,
                            None => return Ok(true),
                        },
                        Source::Ids(ids, stmt) => {
                            let Some(&id) = ids.next() else {
                                return Ok(true);
                            };
                            let mut rows = stmt.query([id])?;
                            match rows.next()? {
                                Some(r) => wanted(r)?,
                                None => None,
                            }
                        }
                    };
                    batch.extend(raw);
                }
                Ok(false)
            },
            score_batch,
            sink,
        )
    }

    /// The contacts that may be in the band or stage `filter` asks for at
    /// `as_of`, by row id: those stored in it, and those whose stored state
    /// may not be exact at `as_of` (their next check is due within a
    /// second of it; every committed contact has one, see
    /// `crate::transitions`). Every other contact's stored band and stage are its
    /// band and stage at `as_of`, so it is not in the list. `None` (read
    /// every contact) without a band or stage filter, or when a contact
    /// was scored after `as_of` (`meta.scored_max`): its stored state is of
    /// a later time.
    fn class_candidates(&self, as_of: Timestamp, filter: &ScoreFilter) -> Result<Option<Vec<i64>>> {
        let (column, value) = match (&filter.band, &filter.stage) {
            (Some(band), _) => ("band", band),
            (None, Some(stage)) => ("stage", stage),
            (None, None) => return Ok(None),
        };
        let scored_max: Option<i64> = self
            .conn
            .query_row(
                "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'scored_max'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        if scored_max.is_none_or(|t| t > as_of.0) {
            return Ok(None);
        }
        let ids = |sql: &str, value: &dyn rusqlite::ToSql| -> Result<Vec<i64>> {
            Ok(self
                .conn
                .prepare_cached(sql)?
                .query_map([value], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<i64>>>()?)
        };
        let mut out = ids(
            &format!("SELECT id FROM contacts WHERE {column} = ?1"),
            value,
        )?;
        out.extend(ids(
            "SELECT id FROM contacts WHERE next_check_at <= ?1",
            &as_of.0.saturating_add(1_000_000_000),
        )?);
        out.sort_unstable();
        out.dedup();
        Ok(Some(out))
    }
}

/// Where [`Store::scan`] reads contacts from.
enum Source<'a, 's> {
    /// Every contact, in storage order.
    All(rusqlite::Rows<'s>),
    /// These row ids, in order, one statement each.
    Ids(
        std::slice::Iter<'a, i64>,
        &'s mut rusqlite::CachedStatement<'a>,
    ),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_class_is_trusted_only_between_scoring_and_the_next_check() {
        let s = 1_000_000_000;
        assert!(!stored_class_holds(None, None, Timestamp(10 * s)));
        // Asked before it was scored: not known.
        assert!(!stored_class_holds(
            Some(10 * s),
            Some(100 * s),
            Timestamp(9 * s)
        ));
        assert!(stored_class_holds(
            Some(10 * s),
            Some(100 * s),
            Timestamp(10 * s)
        ));
        // The last second before the next check is not trusted.
        assert!(stored_class_holds(
            Some(10 * s),
            Some(100 * s),
            Timestamp(99 * s - 1)
        ));
        assert!(!stored_class_holds(
            Some(10 * s),
            Some(100 * s),
            Timestamp(99 * s)
        ));
    }
}
