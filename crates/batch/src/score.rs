//! Batch scoring: contacts and events files in, one [`ScoreCard`] per
//! contact out, in input order.
//!
//! The path of an event: [`crate::pipeline`] parses it on a worker thread;
//! `HitSink` asks the core which rules it matches ([`match_event`]), looks
//! up its contact (prefetched, a few events later) and keeps a 24-byte
//! [`Hit`] per match that can still count at the as-of time; hits are gathered per contact in file order;
//! then each contact is de-duplicated and scored by the core's
//! [`evaluate`], contacts in parallel.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use leadscore_core::model::RuleKind;
use leadscore_core::scoring::{Fate, hit_in_time};
use leadscore_core::{
    EventKey, Explanation, Hit, Model, ScoreCard, Target, Timestamp, Trace, evaluate, event_key,
    match_event,
};
use rayon::prelude::*;

use crate::contact_index::IdHash;
use crate::contacts::ContactTable;
use crate::error::{RecordFault, Result};
use crate::events::EventRecord;
use crate::pipeline::{EventSink, scan};

/// Counts gathered while scoring, for the summary line and warnings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchStats {
    /// Contacts scored.
    pub contacts: u64,
    /// Event records read (duplicates included).
    pub events: u64,
    /// Events naming a contact that is not in the contacts files (skipped).
    pub unknown_contact: u64,
    /// Rule matches kept for scoring.
    pub hits: u64,
    /// Hits dropped as repeated event ids.
    pub duplicate_hits: u64,
    /// Wall time spent reading events and matching rules.
    pub read_time: std::time::Duration,
    /// Wall time spent scoring contacts.
    pub score_time: std::time::Duration,
}

/// The scores of a batch.
#[derive(Debug)]
pub struct BatchScores {
    /// One card per contact, in contacts input order.
    pub cards: Vec<ScoreCard>,
    /// What was read.
    pub stats: BatchStats,
}

/// Collects the hits of one chunk.
///
/// Finding an event's contact is a hash-index lookup that, in a file in
/// time order, misses the processor's caches nearly every time. So when no
/// event rule reads contact attributes (matching needs no contact), an
/// event is matched at once and its lookup deferred: the index slot is
/// prefetched and the event waits in a short queue while the next
/// [`LOOKAHEAD`] events are parsed, then its contact is looked up and its
/// hits kept, in file order.
struct HitSink<'a, K, F> {
    model: &'a Model,
    contacts: &'a ContactTable,
    as_of: Timestamp,
    /// Whether lookups are deferred (no event rule reads an attribute, and
    /// not explaining one contact).
    defer: bool,
    /// Events matched, waiting for their contact, oldest first.
    waiting: VecDeque<Waiting<K>>,
    /// Their rule matches, in the same order.
    waiting_targets: VecDeque<Target>,
    /// Buffers for waiting contact ids, reused (no allocation per event).
    spare_ids: Vec<String>,
    /// Only this contact, when explaining one.
    only: Option<u32>,
    key: F,
    out: ChunkHits<K>,
}

/// Events whose lookups run ahead of their use: enough to cover a memory
/// access while parsing events, few enough to stay in the first-level cache.
const LOOKAHEAD: usize = 16;

/// An event matched but not yet given to its contact.
struct Waiting<K> {
    contact_id: String,
    hash: IdHash,
    at: Timestamp,
    key: Option<K>,
    /// How many of `waiting_targets` are this event's.
    targets: usize,
}

/// Hits tagged with the position of their contact.
type ContactHits<K> = Vec<(u32, Hit<K>)>;

/// What one chunk yields: hits tagged with their contact, and counts.
struct ChunkHits<K> {
    hits: ContactHits<K>,
    events: u64,
    unknown: u64,
}

impl<'a, K: Clone, F> HitSink<'a, K, F> {
    fn new(
        model: &'a Model,
        contacts: &'a ContactTable,
        as_of: Timestamp,
        only: Option<u32>,
        key: F,
        hits: ContactHits<K>,
    ) -> Self {
        let reads_attributes = model.rules.iter().any(|r| {
            matches!(r.kind, RuleKind::Event { .. })
                && r.when.as_ref().is_some_and(|c| c.reads_attributes())
        });
        HitSink {
            model,
            contacts,
            as_of,
            defer: !reads_attributes && only.is_none(),
            waiting: VecDeque::with_capacity(LOOKAHEAD + 1),
            waiting_targets: VecDeque::new(),
            spare_ids: Vec::new(),
            only,
            key,
            out: ChunkHits {
                hits,
                events: 0,
                unknown: 0,
            },
        }
    }

    /// Looks up the contact of the oldest waiting event and keeps its hits.
    fn settle_oldest(&mut self) {
        let Some(w) = self.waiting.pop_front() else {
            return;
        };
        let contact = self.contacts.find_hashed(&w.contact_id, w.hash);
        self.spare_ids.push(w.contact_id);
        let targets = self.waiting_targets.drain(..w.targets);
        let Some(contact) = contact else {
            self.out.unknown += 1;
            return;
        };
        if let Some(key) = w.key {
            for target in targets {
                self.out.hits.push((
                    contact,
                    Hit {
                        target,
                        at: w.at,
                        key: key.clone(),
                    },
                ));
            }
        }
    }
}

impl<K: Clone, F: Fn(&EventRecord<'_>) -> K> HitSink<'_, K, F> {
    /// Matches the event's rules now and queues its contact lookup (the
    /// slot being prefetched), settling the oldest queued event.
    fn match_then_wait(&mut self, e: &EventRecord<'_>) {
        let (model, as_of) = (self.model, self.as_of);
        let hash = IdHash::of(e.contact_id);
        self.contacts.prefetch(hash);
        let before = self.waiting_targets.len();
        if model.uses_event_type(e.event_type) {
            let none: &[Option<Box<str>>] = &[];
            let targets = &mut self.waiting_targets;
            match_event(model, e.event_type, none, e.properties, |t| {
                if hit_in_time(model, t, e.at, as_of) {
                    targets.push_back(t);
                }
            });
        }
        let targets = self.waiting_targets.len() - before;
        let mut contact_id = self.spare_ids.pop().unwrap_or_default();
        contact_id.clear();
        contact_id.push_str(e.contact_id);
        self.waiting.push_back(Waiting {
            contact_id,
            hash,
            at: e.at,
            key: (targets > 0).then(|| (self.key)(e)),
            targets,
        });
        if self.waiting.len() > LOOKAHEAD {
            self.settle_oldest();
        }
    }

    /// Looks the contact up, then matches the event's rules with its
    /// attributes (and, when explaining, keeps only that contact's).
    fn look_up_then_match(&mut self, e: &EventRecord<'_>) {
        let (model, as_of) = (self.model, self.as_of);
        let Some(contact) = self.contacts.find(e.contact_id) else {
            self.out.unknown += 1;
            return;
        };
        if self.only.is_some_and(|o| o != contact) || !model.uses_event_type(e.event_type) {
            return;
        }
        let attributes = self.contacts.attributes(contact as usize);
        let mut key = None;
        let out = &mut self.out.hits;
        match_event(model, e.event_type, attributes, e.properties, |target| {
            if self.only.is_some() || hit_in_time(model, target, e.at, as_of) {
                let k = key.get_or_insert_with(|| (self.key)(e));
                out.push((
                    contact,
                    Hit {
                        target,
                        at: e.at,
                        key: k.clone(),
                    },
                ));
            }
        });
    }
}

impl<K: Send + Clone, F: Fn(&EventRecord<'_>) -> K> EventSink for HitSink<'_, K, F> {
    type Output = ChunkHits<K>;

    fn event(&mut self, e: &EventRecord<'_>) -> std::result::Result<(), RecordFault> {
        self.out.events += 1;
        if self.defer {
            self.match_then_wait(e);
        } else {
            self.look_up_then_match(e);
        }
        Ok(())
    }

    fn finish(mut self) -> Self::Output {
        while !self.waiting.is_empty() {
            self.settle_oldest();
        }
        self.out
    }
}

/// Scores every contact from events files at `as_of`.
pub fn score_files(
    model: &Model,
    contacts: &ContactTable,
    events: &[PathBuf],
    as_of: Timestamp,
) -> Result<BatchScores> {
    let (cards, stats) = score_each(model, contacts, events, as_of, |model, i, hits| {
        evaluate(model, contacts.attributes(i), hits, as_of, None)
    })?;
    Ok(BatchScores { cards, stats })
}

/// Scores every contact and tells, per rule (model order), how much it
/// fired: 1 or 0 for an attribute rule (matched or not), the number of
/// counted events for an event rule (each weighed by its decay, so a
/// half-faded click counts 0.5), and 1 or 0 for a disqualifying rule (it
/// disqualifies or not). The raw material for learning point values.
pub fn rule_values(
    model: &Model,
    contacts: &ContactTable,
    events: &[PathBuf],
    as_of: Timestamp,
) -> Result<Vec<(ScoreCard, Vec<f64>)>> {
    let (out, _) = score_each(model, contacts, events, as_of, |model, i, hits| {
        let mut trace = Trace::new();
        let card = evaluate(model, contacts.attributes(i), hits, as_of, Some(&mut trace));
        let values = model
            .rules
            .iter()
            .zip(&trace.rules)
            .map(|(rule, rt)| {
                if rule.disqualify {
                    let fires = rt.matched == Some(true)
                        || rt.events.iter().any(|e| e.fate == Fate::Disqualifies);
                    return f64::from(u8::from(fires));
                }
                match rt.matched {
                    Some(m) => f64::from(u8::from(m)),
                    None if rule.points != 0.0 => rt.points / rule.points,
                    None => rt.events.iter().filter(|e| e.fate == Fate::Counted).count() as f64,
                }
            })
            .collect();
        (card, values)
    })?;
    Ok(out)
}

/// Reads the events, then runs `each` on every contact's distinct hits.
fn score_each<T: Send>(
    model: &Model,
    contacts: &ContactTable,
    events: &[PathBuf],
    as_of: Timestamp,
    each: impl Fn(&Model, usize, &mut Vec<Hit<u64>>) -> T + Sync,
) -> Result<(Vec<T>, BatchStats)> {
    let mut per_contact: Vec<Vec<Hit<u64>>> = Vec::new();
    per_contact.resize_with(contacts.len(), Vec::new);
    let mut stats = BatchStats {
        contacts: contacts.len() as u64,
        ..BatchStats::default()
    };
    let started = Instant::now();
    // Chunk hit buffers go back and forth between workers and the merge.
    let pool: Mutex<Vec<ContactHits<u64>>> = Mutex::new(Vec::new());
    scan(
        events,
        &model.vocabulary,
        || {
            let hits = pool.lock().ok().and_then(|mut p| p.pop());
            let hits = hits.unwrap_or_else(|| Vec::with_capacity(1 << 16));
            let key = |e: &EventRecord<'_>| event_key(e.id);
            HitSink::new(model, contacts, as_of, None, key, hits)
        },
        |mut chunk: ChunkHits<u64>| {
            stats.events += chunk.events;
            stats.unknown_contact += chunk.unknown;
            stats.hits += chunk.hits.len() as u64;
            for (c, hit) in chunk.hits.drain(..) {
                per_contact[c as usize].push(hit);
            }
            if let Ok(mut p) = pool.lock() {
                p.push(chunk.hits);
            }
        },
    )?;
    stats.read_time = started.elapsed();
    let duplicates = AtomicU64::new(0);
    let cards: Vec<T> = per_contact
        .par_iter_mut()
        .enumerate()
        // Each worker scores with its own copy of the model: a regex shared
        // by threads hands its match cache out under one atomic, and two
        // threads matching at once make that cache line bounce.
        .map_init(
            || model.clone(),
            |model, (i, hits)| {
                let dropped = keep_first_seen(hits);
                if dropped > 0 {
                    duplicates.fetch_add(dropped, Ordering::Relaxed);
                }
                let out = each(model, i, hits);
                *hits = Vec::new();
                out
            },
        )
        .collect();
    stats.duplicate_hits = duplicates.into_inner();
    stats.score_time = started.elapsed() - stats.read_time;
    Ok((cards, stats))
}

/// Explains one contact's score from files.
pub fn explain_files(
    model: &Model,
    contacts: &ContactTable,
    contact: u32,
    events: &[PathBuf],
    as_of: Timestamp,
) -> Result<Explanation> {
    let mut hits: Vec<Hit<EventKey>> = Vec::new();
    scan(
        events,
        &model.vocabulary,
        || {
            let key = |e: &EventRecord<'_>| EventKey {
                id: e.id.to_string(),
                event_type: e.event_type.to_string(),
            };
            HitSink::new(model, contacts, as_of, Some(contact), key, Vec::new())
        },
        |chunk: ChunkHits<EventKey>| hits.extend(chunk.hits.into_iter().map(|(_, h)| h)),
    )?;
    keep_first_seen(&mut hits);
    let attributes = contacts.attributes(contact as usize);
    let mut trace = Trace::for_explanation();
    let card = evaluate(model, attributes, &mut hits, as_of, Some(&mut trace));
    Ok(Explanation::new(
        model,
        contacts.id(contact as usize),
        as_of,
        &card,
        &trace,
    ))
}

/// Drops hits of events whose id was already seen, keeping the first event
/// with each id (in input order). Hits of one event are adjacent and share
/// the key, so the first event's hits are the first run of a key's entries
/// at consecutive positions. Returns how many hits were dropped.
pub fn keep_first_seen<K: Ord>(hits: &mut Vec<Hit<K>>) -> u64 {
    if hits.len() < 2 {
        return 0;
    }
    let mut dropped: Vec<u32> = Vec::new();
    {
        let mut order: Vec<(&K, u32)> = hits
            .iter()
            .enumerate()
            .map(|(i, h)| (&h.key, i as u32))
            .collect();
        order.sort_unstable();
        let mut g = 0;
        while g < order.len() {
            let (key, first) = order[g];
            let first = first as usize;
            let mut prev = first;
            let mut j = g + 1;
            while j < order.len() && order[j].0 == key {
                let idx = order[j].1 as usize;
                if idx == prev + 1
                    && hits[idx].at == hits[first].at
                    && rank(hits[idx].target) > rank(hits[prev].target)
                {
                    prev = idx; // another rule matched by the first event
                } else {
                    dropped.push(idx as u32);
                }
                j += 1;
            }
            g = j;
        }
    }
    if dropped.is_empty() {
        return 0;
    }
    let mut keep = vec![true; hits.len()];
    for &d in &dropped {
        keep[d as usize] = false;
    }
    let mut i = 0;
    hits.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    dropped.len() as u64
}

/// The order in which one event's matches are produced: by rule, a rule's
/// own match before its requalification.
fn rank(t: Target) -> (u32, bool) {
    match t {
        Target::Rule(i) => (i, false),
        Target::Requalify(i) => (i, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(target: u32, at: i64, key: u64) -> Hit<u64> {
        Hit {
            target: Target::Rule(target),
            at: Timestamp(at),
            key,
        }
    }

    #[test]
    fn first_seen_event_wins() {
        // Event 7 matched rules 0 and 1; its duplicate repeats both; event 8
        // reuses id 7's key with other content later on and is dropped too.
        let mut h = vec![
            hit(0, 5, 7),
            hit(1, 5, 7),
            hit(0, 9, 3),
            hit(0, 5, 7),
            hit(1, 5, 7),
            hit(1, 6, 7),
        ];
        assert_eq!(keep_first_seen(&mut h), 3);
        assert_eq!(h, vec![hit(0, 5, 7), hit(1, 5, 7), hit(0, 9, 3)]);
    }

    #[test]
    fn distinct_events_are_all_kept() {
        let mut h: Vec<Hit<u64>> = (0..50).map(|i| hit(i % 3, i as i64, i as u64)).collect();
        assert_eq!(keep_first_seen(&mut h), 0);
        assert_eq!(h.len(), 50);
    }
}
