//! The scoring semantics: one contact, its matched events, an as-of time, to
//! dimension values, score, band, stage and disqualification.
//!
//! Callers (batch files, the store, the service) find which rules an event
//! matches with [`match_event`] and hand the resulting [`Hit`]s to
//! [`evaluate`]. `evaluate` sorts them into (rule, timestamp, key) order,
//! applies time windows, limits and decay, and sums in that canonical order,
//! so the result never depends on arrival order, and every caller gets the
//! very same floating-point numbers.

use crate::condition::{AttrId, Facts, PropId};
use crate::decay::remaining_share;
use crate::limits::LimitCounter;
use crate::model::{Model, RuleKind, Target, TimeFit};
use crate::timestamp::Timestamp;

/// The 64-bit key of an event id that bulk scoring and the database carry
/// in a [`Hit`] instead of the id: XXH3-64 (seed 0) of the id's UTF-8
/// bytes. XXH3's output is fixed by its specification (xxHash 0.8), so a
/// key stored in a database today equals the key computed by any later
/// build; a test pins known values. Two ids with one key (odds about
/// n²/2⁶⁵ for n events of one contact) would count as one event.
pub fn event_key(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

/// One event matched to one rule (or to a requalification).
///
/// `key` identifies the event: its id (explanations) or its
/// [`event_key`] (bulk scoring and the database). It breaks ties between events with the same timestamp; hits
/// that come from the same event carry the same key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit<K> {
    /// What the event feeds.
    pub target: Target,
    /// When it happened.
    pub at: Timestamp,
    /// The event's identity.
    pub key: K,
}

/// The result for one contact at one as-of time.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreCard {
    /// Clamped value of each dimension, in model order (points).
    pub dimensions: Vec<f64>,
    /// Weighted score, 0-100 (0 when disqualified).
    pub score: f64,
    /// Index of the band, if any matched (always `None` when disqualified).
    pub band: Option<usize>,
    /// Index of the stage, if any matched (always `None` when disqualified).
    pub stage: Option<usize>,
    /// Whether a disqualifying rule holds.
    pub disqualified: bool,
}

impl ScoreCard {
    /// The band name as printed: the band's id, `"disqualified"`, or `None`.
    pub fn band_name<'m>(&self, model: &'m Model) -> Option<&'m str> {
        if self.disqualified {
            Some("disqualified")
        } else {
            self.band.map(|b| model.bands[b].id.as_str())
        }
    }

    /// The stage name, if any.
    pub fn stage_name<'m>(&self, model: &'m Model) -> Option<&'m str> {
        self.stage.map(|s| model.stages[s].id.as_str())
    }
}

/// What happened to one matched event, for explanations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// It counted (its contribution is in the trace).
    Counted,
    /// Eligible, but the rule's limit was already reached.
    LimitReached,
    /// Later than the as-of time.
    AfterAsOf,
    /// Older than the dimension's window.
    OutsideWindow,
    /// Eligible for a disqualifying rule.
    Disqualifies,
    /// Eligible for a disqualifying rule, but lifted later by a requalifying event.
    DisqualifiesLifted,
    /// A requalifying event that lifted a disqualification.
    Requalifies,
    /// A requalifying event that lifted nothing (too early or after as-of).
    RequalifiesNothing,
}

impl Fate {
    /// Whether the event counts (or disqualifies) now, so that its leaving
    /// the window later can change the contact's class.
    pub fn counts_in_time(self) -> bool {
        matches!(
            self,
            Fate::Counted | Fate::Disqualifies | Fate::DisqualifiesLifted
        )
    }
}

/// One matched event in a trace.
#[derive(Clone, Debug, PartialEq)]
pub struct EventTrace<K> {
    /// The event's key.
    pub key: K,
    /// When it happened.
    pub at: Timestamp,
    /// What happened to it.
    pub fate: Fate,
    /// Points it added after decay (0 unless counted).
    pub contribution: f64,
    /// Its age at the as-of time, in days.
    pub age_days: f64,
}

/// What one rule did, for explanations.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleTrace<K> {
    /// For attribute rules: whether it matched. `None` for event rules.
    pub matched: Option<bool>,
    /// Points this rule added to its dimension (before clamping).
    pub points: f64,
    /// Matched events in (timestamp, key) order, requalifying ones last.
    pub events: Vec<EventTrace<K>>,
}

/// Everything [`evaluate`] decided, rule by rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace<K> {
    /// One entry per rule, in model order.
    pub rules: Vec<RuleTrace<K>>,
    /// Unclamped sum of each dimension (points).
    pub raw: Vec<f64>,
    /// Per dimension, why a predictive dimension has its value (empty for
    /// other dimensions, and unless the trace is for an explanation).
    pub factors: Vec<Vec<crate::predict::PredictFactor>>,
    /// Whether to record `factors` (they cost a model explanation each:
    /// only explanations ask).
    pub with_factors: bool,
    /// Whether to record, of the events, only those that count or
    /// disqualify ([`Fate::counts_in_time`]): all that finding when a
    /// contact's class next changes looks at.
    pub counting_only: bool,
}

impl<K> Trace<K> {
    /// An empty trace, for [`evaluate`] to fill.
    pub fn new() -> Trace<K> {
        Trace {
            rules: Vec::new(),
            raw: Vec::new(),
            factors: Vec::new(),
            with_factors: false,
            counting_only: false,
        }
    }

    /// An empty trace recording only the events that count or
    /// disqualify (with every rule's points and the raw sums), for
    /// [`crate::timeline`].
    pub fn counting_only() -> Trace<K> {
        Trace {
            counting_only: true,
            ..Trace::new()
        }
    }

    /// An empty trace that also records why predictive dimensions have
    /// their values, for [`crate::explain`].
    pub fn for_explanation() -> Trace<K> {
        Trace {
            with_factors: true,
            ..Trace::new()
        }
    }
}

impl<K> Default for Trace<K> {
    fn default() -> Trace<K> {
        Trace::new()
    }
}

/// Facts about a contact and one of its events, for [`match_event`].
struct EventFacts<'a, A: ?Sized, P: ?Sized> {
    attributes: &'a A,
    properties: &'a P,
}

/// Lookup of a contact's attributes by [`AttrId`].
pub trait AttributeLookup {
    /// The attribute's value, if present.
    fn get(&self, id: AttrId) -> Option<&str>;
}

/// Lookup of an event's properties by [`PropId`].
pub trait PropertyLookup {
    /// The property's value, if present.
    fn get(&self, id: PropId) -> Option<&str>;
}

impl AttributeLookup for [Option<Box<str>>] {
    fn get(&self, id: AttrId) -> Option<&str> {
        self.get(id.0 as usize).and_then(|v| v.as_deref())
    }
}

impl PropertyLookup for [Option<Box<str>>] {
    fn get(&self, id: PropId) -> Option<&str> {
        self.get(id.0 as usize).and_then(|v| v.as_deref())
    }
}

impl<A: AttributeLookup + ?Sized, P: PropertyLookup + ?Sized> Facts for EventFacts<'_, A, P> {
    fn attribute(&self, id: AttrId) -> Option<&str> {
        self.attributes.get(id)
    }
    fn property(&self, id: PropId) -> Option<&str> {
        self.properties.get(id)
    }
}

struct ContactFacts<'a, A: ?Sized>(&'a A);

impl<A: AttributeLookup + ?Sized> Facts for ContactFacts<'_, A> {
    fn attribute(&self, id: AttrId) -> Option<&str> {
        self.0.get(id)
    }
}

struct StageFacts<'a, A: ?Sized> {
    attributes: &'a A,
    dimensions: &'a [f64],
    score: f64,
}

impl<A: AttributeLookup + ?Sized> Facts for StageFacts<'_, A> {
    fn attribute(&self, id: AttrId) -> Option<&str> {
        self.attributes.get(id)
    }
    fn dimension(&self, index: usize) -> Option<f64> {
        self.dimensions.get(index).copied()
    }
    fn score(&self) -> Option<f64> {
        Some(self.score)
    }
}

/// Calls `found` with every target an event of `event_type` feeds: rules
/// whose `on` is the type and whose `when` holds for the contact's
/// attributes and the event's properties, and requalifications. Timing (as-of,
/// windows) is left to [`evaluate`].
pub fn match_event<A, P>(
    model: &Model,
    event_type: &str,
    attributes: &A,
    properties: &P,
    mut found: impl FnMut(Target),
) where
    A: AttributeLookup + ?Sized,
    P: PropertyLookup + ?Sized,
{
    let facts = EventFacts {
        attributes,
        properties,
    };
    for &target in model.targets(event_type) {
        let ok = match target {
            Target::Rule(i) => model.rules[i as usize]
                .when
                .as_ref()
                .is_none_or(|c| c.holds(&facts)),
            Target::Requalify(_) => true,
        };
        if ok {
            found(target);
        }
    }
}

/// Whether a hit can matter at `as_of`: false for hits that are after the
/// as-of time or outside their rule's window (requalifications only need to
/// be no later than as-of). Bulk callers use it to forget such hits early;
/// [`evaluate`] applies the same test.
pub fn hit_in_time(model: &Model, target: Target, at: Timestamp, as_of: Timestamp) -> bool {
    match target {
        Target::Rule(i) => model.in_time(&model.rules[i as usize], at, as_of) == TimeFit::Inside,
        Target::Requalify(_) => at <= as_of,
    }
}

/// Scores one contact.
///
/// `hits` are the contact's matched events (from [`match_event`]), distinct
/// by key, in any order; they are sorted in place. With `trace`, every
/// decision is recorded for [`crate::explain`].
pub fn evaluate<K, A>(
    model: &Model,
    attributes: &A,
    hits: &mut Vec<Hit<K>>,
    as_of: Timestamp,
    trace: Option<&mut Trace<K>>,
) -> ScoreCard
where
    K: Ord + Clone,
    A: AttributeLookup + ?Sized,
{
    evaluate_with(model, attributes, None, hits, as_of, trace)
}

/// What a contact's score owes to its attributes alone: which attribute
/// rules match (by rule index; `false` for event rules) and each
/// predictive dimension's value (points, by dimension index; 0 for other
/// dimensions). Attributes do not change with time, so callers that
/// evaluate one contact at many times compute this once and pass it to
/// [`evaluate_with`].
#[derive(Clone, Debug, Default)]
pub struct Prepared {
    /// Per rule: whether it is an attribute rule that matches.
    pub matches: Vec<bool>,
    /// Per dimension: its predicted value in points (0 if not predictive).
    pub predicted: Vec<f64>,
}

/// Computes [`Prepared`] for a contact's attributes.
pub fn prepare<A: AttributeLookup + ?Sized>(model: &Model, attributes: &A) -> Prepared {
    Prepared {
        matches: (0..model.rules.len())
            .map(|i| attribute_rule_matches(model, i, attributes))
            .collect(),
        predicted: predicted(model, attributes),
    }
}

/// Whether rule `rule` (an index into the model's rules) is an attribute
/// rule that matches a contact with these attributes; `false` for an event
/// rule or an index past the rules.
pub fn attribute_rule_matches<A: AttributeLookup + ?Sized>(
    model: &Model,
    rule: usize,
    attributes: &A,
) -> bool {
    model.rules.get(rule).is_some_and(|r| {
        r.kind == RuleKind::Attribute
            && r.when
                .as_ref()
                .is_none_or(|c| c.holds(&ContactFacts(attributes)))
    })
}

/// Each dimension's predicted value (points; 0 if not predictive).
fn predicted<A: AttributeLookup + ?Sized>(model: &Model, attributes: &A) -> Vec<f64> {
    model
        .dimensions
        .iter()
        .map(|d| d.predictive.as_ref().map_or(0.0, |p| p.value(attributes)))
        .collect()
}

/// [`evaluate`], with what the attributes alone decide ([`prepare`]) when
/// the caller has it.
pub fn evaluate_with<K, A>(
    model: &Model,
    attributes: &A,
    prepared: Option<&Prepared>,
    hits: &mut Vec<Hit<K>>,
    as_of: Timestamp,
    trace: Option<&mut Trace<K>>,
) -> ScoreCard
where
    K: Ord + Clone,
    A: AttributeLookup + ?Sized,
{
    sort_hits(hits);
    evaluate_sorted(model, attributes, prepared, hits, as_of, trace)
}

/// Puts hits in the order [`evaluate_sorted`] reads them (by target, time,
/// key) and drops repeats (one event matched twice).
pub fn sort_hits<K: Ord>(hits: &mut Vec<Hit<K>>) {
    hits.sort_unstable_by(|a, b| (a.target, a.at, &a.key).cmp(&(b.target, b.at, &b.key)));
    hits.dedup_by(|a, b| a.target == b.target && a.key == b.key && a.at == b.at);
}

impl<K: Clone> EventTrace<K> {
    /// What happened to `hit` at `as_of`.
    fn of(hit: &Hit<K>, fate: Fate, contribution: f64, as_of: Timestamp) -> EventTrace<K> {
        EventTrace {
            key: hit.key.clone(),
            at: hit.at,
            fate,
            contribution,
            age_days: hit.at.days_before(as_of),
        }
    }
}

/// One event rule's hits being read at one as-of time.
struct RuleWalk<'m> {
    model: &'m Model,
    rule: &'m crate::model::Rule,
    /// The rule's dimension's half-life (days), if it decays.
    half_life: Option<f64>,
    as_of: Timestamp,
}

impl RuleWalk<'_> {
    /// Visits every hit of the run (in time order), recording each with its
    /// fate in `events` (explanations). Returns the points counted and the
    /// time of the latest eligible event (disqualifying rules).
    fn every_event<K: Clone>(
        &self,
        run: &[Hit<K>],
        mut events: Option<&mut Vec<EventTrace<K>>>,
    ) -> (f64, Option<Timestamp>) {
        let (rule, as_of) = (self.rule, self.as_of);
        let window_start = self.model.window_start(rule, as_of);
        let mut limit = LimitCounter::new(rule.limit.as_ref());
        let (mut sum, mut latest) = (0.0, None);
        for hit in run {
            let age_days = hit.at.days_before(as_of);
            let (fate, contribution) = match TimeFit::of(hit.at, as_of, window_start) {
                TimeFit::AfterAsOf => (Fate::AfterAsOf, 0.0),
                TimeFit::OutsideWindow => (Fate::OutsideWindow, 0.0),
                TimeFit::Inside if rule.disqualify => {
                    latest = Some(hit.at);
                    (Fate::Disqualifies, 0.0)
                }
                TimeFit::Inside if limit.admit(hit.at) => {
                    let c = rule.points * remaining_share(age_days, self.half_life);
                    sum += c;
                    (Fate::Counted, c)
                }
                TimeFit::Inside => (Fate::LimitReached, 0.0),
            };
            if let Some(events) = events.as_deref_mut() {
                events.push(EventTrace::of(hit, fate, contribution, as_of));
            }
        }
        (sum, latest)
    }

    /// The same sums as [`RuleWalk::every_event`], in the same order, but
    /// the hits outside the window (a prefix of the run), after the as-of
    /// time (a suffix) and refused by a full limit are skipped rather than
    /// visited one by one; only the events that count or disqualify are
    /// recorded. A contact with 100 000 page views under a limit of three a
    /// week costs the events that count, not all of them.
    fn counting_events<K: Clone>(
        &self,
        run: &[Hit<K>],
        mut events: Option<&mut Vec<EventTrace<K>>>,
    ) -> (f64, Option<Timestamp>) {
        let (rule, as_of) = (self.rule, self.as_of);
        let lo = self
            .model
            .window_start(rule, as_of)
            .map_or(0, |start| run.partition_point(|h| h.at.0 <= start));
        let hi = run.partition_point(|h| h.at <= as_of).max(lo);
        let inside = &run[lo..hi];
        let mut limit = LimitCounter::new(rule.limit.as_ref());
        let (mut sum, mut latest) = (0.0, None);
        let mut k = 0;
        while let Some(hit) = inside.get(k) {
            let (fate, contribution) = if rule.disqualify {
                latest = Some(hit.at);
                (Fate::Disqualifies, 0.0)
            } else if limit.admit(hit.at) {
                let c = rule.points * remaining_share(hit.at.days_before(as_of), self.half_life);
                sum += c;
                (Fate::Counted, c)
            } else {
                // Full: every event before it reopens is refused as well.
                match limit.reopens_at() {
                    None => break,
                    Some(t) => {
                        k += inside[k..].partition_point(|h| h.at.0 < t).max(1);
                        continue;
                    }
                }
            };
            if let Some(events) = events.as_deref_mut() {
                events.push(EventTrace::of(hit, fate, contribution, as_of));
            }
            k += 1;
        }
        (sum, latest)
    }
}

/// [`evaluate_with`] on hits already in [`sort_hits`] order (a caller
/// evaluating the same hits at many times sorts them once).
pub fn evaluate_sorted<K, A>(
    model: &Model,
    attributes: &A,
    prepared: Option<&Prepared>,
    hits: &[Hit<K>],
    as_of: Timestamp,
    trace: Option<&mut Trace<K>>,
) -> ScoreCard
where
    K: Ord + Clone,
    A: AttributeLookup + ?Sized,
{
    let n_rules = model.rules.len();
    let matches = prepared.map(|p| p.matches.as_slice());
    let mut raw = match prepared {
        Some(p) => p.predicted.clone(),
        None if model.has_predictive() => predicted(model, attributes),
        None => vec![0.0; model.dimensions.len()],
    };
    let mut disqualified = false;
    // Latest eligible event of each disqualifying event rule.
    let mut latest_disq: Vec<Option<Timestamp>> = Vec::new();
    let mut rule_traces: Vec<RuleTrace<K>> = Vec::new();
    // Which events the trace records: all, or only those that count or
    // disqualify (what finding the next change needs).
    let record_counting = trace.is_some();
    let record_all = trace.as_ref().is_some_and(|t| !t.counting_only);
    let contact = ContactFacts(attributes);
    let mut cursor = 0usize;

    for (i, rule) in model.rules.iter().enumerate() {
        let mut rt = RuleTrace {
            matched: None,
            points: 0.0,
            events: Vec::new(),
        };
        match &rule.kind {
            RuleKind::Attribute => {
                let matched = match matches {
                    Some(m) => m[i],
                    None => rule.when.as_ref().is_none_or(|c| c.holds(&contact)),
                };
                rt.matched = Some(matched);
                if matched {
                    if rule.disqualify {
                        disqualified = true;
                    } else if let Some(d) = rule.dimension {
                        raw[d] += rule.points;
                        rt.points = rule.points;
                    }
                }
            }
            RuleKind::Event { .. } => {
                let half_life = rule
                    .dimension
                    .and_then(|d| model.dimensions[d].half_life_days);
                // The rule's hits: one run, in time order.
                let run_len =
                    hits[cursor..].partition_point(|h| h.target == Target::Rule(i as u32));
                let run = &hits[cursor..cursor + run_len];
                cursor += run_len;
                let walk = RuleWalk {
                    model,
                    rule,
                    half_life,
                    as_of,
                };
                let events = record_counting.then_some(&mut rt.events);
                let (sum, latest) = if record_all {
                    walk.every_event(run, events)
                } else {
                    walk.counting_events(run, events)
                };
                if rule.disqualify {
                    if latest_disq.is_empty() {
                        latest_disq = vec![None; n_rules];
                    }
                    latest_disq[i] = latest;
                } else if let Some(d) = rule.dimension {
                    raw[d] += sum;
                    rt.points = sum;
                }
            }
        }
        if trace.is_some() {
            rule_traces.push(rt);
        }
    }

    // Requalifying hits come last in the sorted order.
    let mut lifted = vec![false; if latest_disq.is_empty() { 0 } else { n_rules }];
    for hit in &hits[cursor..] {
        let Target::Requalify(i) = hit.target else {
            continue;
        };
        let i = i as usize;
        let lifts = hit.at <= as_of
            && latest_disq
                .get(i)
                .copied()
                .flatten()
                .is_some_and(|latest| hit.at > latest);
        if lifts {
            lifted[i] = true;
        }
        if record_all {
            rule_traces[i].events.push(EventTrace {
                key: hit.key.clone(),
                at: hit.at,
                fate: if lifts {
                    Fate::Requalifies
                } else {
                    Fate::RequalifiesNothing
                },
                contribution: 0.0,
                age_days: hit.at.days_before(as_of),
            });
        }
    }
    for (i, latest) in latest_disq.iter().enumerate() {
        if latest.is_some() {
            if lifted[i] {
                if let Some(rt) = rule_traces.get_mut(i) {
                    for e in &mut rt.events {
                        if e.fate == Fate::Disqualifies {
                            e.fate = Fate::DisqualifiesLifted;
                        }
                    }
                }
            } else {
                disqualified = true;
            }
        }
    }

    let card = card_from_raw(model, attributes, &raw, disqualified);
    if let Some(t) = trace {
        t.rules = rule_traces;
        t.raw = raw;
        if t.with_factors {
            t.factors = model
                .dimensions
                .iter()
                .map(|d| {
                    d.predictive
                        .as_ref()
                        .map(|p| p.factors(attributes))
                        .unwrap_or_default()
                })
                .collect();
        }
    }
    card
}

/// Clamps raw dimension sums (points), weighs them into the score, and picks
/// band and stage: the last steps of [`evaluate`].
pub fn card_from_raw<A: AttributeLookup + ?Sized>(
    model: &Model,
    attributes: &A,
    raw: &[f64],
    disqualified: bool,
) -> ScoreCard {
    let dimensions: Vec<f64> = model
        .dimensions
        .iter()
        .zip(raw)
        .map(|(d, &v)| v.clamp(d.min, d.max))
        .collect();
    if disqualified {
        return ScoreCard {
            dimensions,
            score: 0.0,
            band: None,
            stage: None,
            disqualified,
        };
    }
    let mut weighted = 0.0;
    let mut total = 0.0;
    for ((d, &v), &w) in model.dimensions.iter().zip(&dimensions).zip(&model.weights) {
        weighted += w * (v - d.min) / (d.max - d.min);
        total += w;
    }
    let score = (100.0 * weighted / total).clamp(0.0, 100.0);
    let band = model.bands.iter().position(|b| score >= b.min_score);
    let facts = StageFacts {
        attributes,
        dimensions: &dimensions,
        score,
    };
    let stage = model.stages.iter().position(|s| s.when.holds(&facts));
    ScoreCard {
        dimensions,
        score,
        band,
        stage,
        disqualified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stored keys must never change: these are XXH3-64 (seed 0) values
    /// computed by the reference C implementation (Python's `xxhash`).
    #[test]
    fn event_keys_are_xxh3_and_never_change() {
        for (id, key) in [
            ("", 0x2d06_8005_38d3_94c2_u64),
            ("a", 0xe6c6_32b6_1e96_4e1f),
            ("e1", 0x1f7e_2402_3b50_eaef),
            ("evt-000001", 0x00a6_9b8f_9611_5615),
            ("événement", 0x7e36_a95a_ccc2_859d),
        ] {
            assert_eq!(event_key(id), key, "{id:?}");
        }
    }

    const SPEC_MODEL: &str = r#"
[[dimension]]
id = "fit"
[[dimension]]
id = "engagement"
half_life_days = 30
[score]
weights = { fit = 1, engagement = 3 }
[[band]]
id = "hot"
min_score = 70
[[band]]
id = "warm"
min_score = 40
[[band]]
id = "cold"
min_score = 0
[[stage]]
id = "mql"
when = { score = true, gte = 40 }
[[rule]]
id = "senior-title"
dimension = "fit"
points = 30
when = { attribute = "job_title", matches = "(?i)\\b(vp|director|head)\\b" }
[[rule]]
id = "free-email"
dimension = "fit"
points = -10
when = { attribute = "email", ends_with = "@gmail.com" }
[[rule]]
id = "pricing-page"
dimension = "engagement"
on = "page_view"
points = 40
when = { property = "url", contains = "/pricing" }
limit = { count = 2, per_days = 7 }
[[rule]]
id = "unsubscribed"
on = "unsubscribe"
disqualify = true
requalify_on = "resubscribe"
"#;

    fn attrs(model: &Model, pairs: &[(&str, &str)]) -> Vec<Option<Box<str>>> {
        let mut v = vec![None; model.vocabulary.attributes.len()];
        for (k, val) in pairs {
            if let Some(id) = model.vocabulary.attribute(k) {
                v[id.0 as usize] = Some((*val).into());
            }
        }
        v
    }

    fn hits(
        model: &Model,
        a: &[Option<Box<str>>],
        events: &[(&str, &str, &str, &str)],
    ) -> Vec<Hit<String>> {
        let mut out = Vec::new();
        for (id, ty, ts, url) in events {
            let mut props = vec![None; model.vocabulary.properties.len()];
            if let Some(p) = model.vocabulary.property("url") {
                props[p.0 as usize] = Some((*url).into());
            }
            match_event(model, ty, a, props.as_slice(), |target| {
                out.push(Hit {
                    target,
                    at: Timestamp::parse(ts).unwrap(),
                    key: id.to_string(),
                })
            });
        }
        out
    }

    #[test]
    fn the_spec_worked_example() {
        let m = Model::from_toml(SPEC_MODEL).unwrap();
        let a = attrs(&m, &[("email", "ana@gmail.com"), ("job_title", "VP Sales")]);
        let mut h = hits(
            &m,
            &a,
            &[
                ("e1", "page_view", "2026-03-22T00:00:00Z", "/pricing"),
                (
                    "e2",
                    "page_view",
                    "2026-03-22T12:00:00+02:00",
                    "/Pricing/enterprise",
                ),
                ("e3", "page_view", "2026-03-23T00:00:00Z", "/pricing"),
                ("e4", "page_view", "2026-04-21T00:00:00Z", "/blog"),
                ("e5", "page_view", "2026-05-01T00:00:00Z", "/pricing"),
            ],
        );
        let as_of = Timestamp::parse("2026-05-01T00:00:00Z").unwrap();
        let mut trace = Trace::new();
        let card = evaluate(&m, a.as_slice(), &mut h, as_of, Some(&mut trace));
        assert_eq!(card.dimensions[0], 20.0);
        assert!((card.dimensions[1] - 71.90157880759587).abs() < 1e-12);
        assert!((card.score - 58.92618410569691).abs() < 1e-12);
        assert_eq!(card.band_name(&m), Some("warm"));
        assert_eq!(card.stage_name(&m), Some("mql"));
        let fates: Vec<Fate> = trace.rules[2].events.iter().map(|e| e.fate).collect();
        assert_eq!(
            fates,
            vec![
                Fate::Counted,
                Fate::Counted,
                Fate::LimitReached,
                Fate::Counted
            ]
        );
    }

    #[test]
    fn unsubscribe_disqualifies_until_a_later_resubscribe() {
        let m = Model::from_toml(SPEC_MODEL).unwrap();
        let a = attrs(&m, &[]);
        let as_of = Timestamp::parse("2026-05-01T00:00:00Z").unwrap();
        let unsub = ("u1", "unsubscribe", "2026-04-01T00:00:00Z", "");
        let resub = ("r1", "resubscribe", "2026-04-02T00:00:00Z", "");
        let early_resub = ("r0", "resubscribe", "2026-03-01T00:00:00Z", "");
        let late_resub = ("r2", "resubscribe", "2026-06-01T00:00:00Z", "");
        let score = |events: &[(&str, &str, &str, &str)]| {
            let mut h = hits(&m, &a, events);
            evaluate(&m, a.as_slice(), &mut h, as_of, None)
        };
        let card = score(&[unsub]);
        assert!(card.disqualified);
        assert_eq!(card.score, 0.0);
        assert_eq!(card.band_name(&m), Some("disqualified"));
        assert_eq!(card.stage, None);
        assert!(!score(&[unsub, resub]).disqualified);
        assert!(score(&[unsub, early_resub]).disqualified);
        assert!(score(&[unsub, late_resub]).disqualified);
        // An unsubscribe after as-of is not known yet.
        assert!(!score(&[("u9", "unsubscribe", "2026-06-01T00:00:00Z", "")]).disqualified);
    }

    #[test]
    fn clamping_happens_once_at_the_end() {
        let m = Model::from_toml(
            r#"
[[dimension]]
id = "e"
min = 0
max = 10
[[rule]]
id = "plus"
dimension = "e"
on = "a"
points = 8
[[rule]]
id = "minus"
dimension = "e"
on = "b"
points = -6
"#,
        )
        .unwrap();
        let a: Vec<Option<Box<str>>> = vec![];
        let as_of = Timestamp::parse("2026-05-01T00:00:00Z").unwrap();
        let mut h = hits(
            &m,
            &a,
            &[
                ("1", "a", "2026-01-01T00:00:00Z", ""),
                ("2", "a", "2026-01-02T00:00:00Z", ""),
                ("3", "b", "2026-01-03T00:00:00Z", ""),
            ],
        );
        // 8 + 8 - 6 = 10, not min(16, 10) - 6 = 4.
        let card = evaluate(&m, a.as_slice(), &mut h, as_of, None);
        assert_eq!(card.dimensions, vec![10.0]);
        assert_eq!(card.score, 100.0);
        assert_eq!(card.band, None);
    }

    /// A model where limits, windows, decay and disqualification all play.
    const WALK_MODEL: &str = r#"
[[dimension]]
id = "engagement"
half_life_days = 7
window_days = 30
min = -50
max = 200
[[dimension]]
id = "lifetime"
min = 0
max = 100
[[band]]
id = "hot"
min_score = 50
[[band]]
id = "cold"
min_score = 0
[[rule]]
id = "visit"
dimension = "engagement"
on = "page_view"
points = 7
limit = { count = 3, per_days = 2 }
[[rule]]
id = "demo"
dimension = "engagement"
on = "demo_request"
points = 30
limit = { count = 1, per_days = 10 }
[[rule]]
id = "bounce"
dimension = "engagement"
on = "bounce"
points = -5
[[rule]]
id = "webinar"
dimension = "lifetime"
on = "webinar"
points = 20
limit = { count = 2 }
[[rule]]
id = "unsubscribed"
on = "unsubscribe"
disqualify = true
requalify_on = "resubscribe"
"#;

    const WALK_TYPES: [&str; 6] = [
        "page_view",
        "demo_request",
        "bounce",
        "webinar",
        "unsubscribe",
        "resubscribe",
    ];

    proptest::proptest! {
        /// Evaluating without a trace (or with the trace the timeline uses)
        /// skips the events that cannot count; recording every event visits
        /// them all. Both give the same card to the bit, and the events the
        /// short walk records are exactly the full walk's counting ones.
        #[test]
        fn skipping_what_cannot_count_changes_nothing(
            // Whole hours, so that events fall exactly on window and limit
            // boundaries now and then.
            events in proptest::collection::vec((0usize..6, 0i64..24 * 60), 0..120),
            as_of in 0i64..24 * 80,
        ) {
            let m = Model::from_toml(WALK_MODEL).unwrap();
            let none: Vec<Option<Box<str>>> = vec![None; m.vocabulary.attributes.len()];
            let props: Vec<Option<Box<str>>> = vec![None; m.vocabulary.properties.len()];
            let base = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
            let hour = 3_600_000_000_000;
            let mut hits: Vec<Hit<u64>> = Vec::new();
            for (n, (ty, hours)) in events.iter().enumerate() {
                match_event(&m, WALK_TYPES[*ty], none.as_slice(), props.as_slice(), |target| {
                    hits.push(Hit { target, at: Timestamp(base.0 + hours * hour), key: n as u64 });
                });
            }
            let as_of = Timestamp(base.0 + as_of * hour);
            let short = evaluate(&m, none.as_slice(), &mut hits.clone(), as_of, None);
            let mut all = Trace::new();
            let full = evaluate(&m, none.as_slice(), &mut hits.clone(), as_of, Some(&mut all));
            let mut counting = Trace::counting_only();
            let timeline = evaluate(&m, none.as_slice(), &mut hits, as_of, Some(&mut counting));
            proptest::prop_assert_eq!(&short, &full);
            proptest::prop_assert_eq!(&timeline, &full);
            proptest::prop_assert_eq!(&counting.raw, &all.raw);
            for (c, a) in counting.rules.iter().zip(&all.rules) {
                let kept: Vec<_> = a.events.iter().filter(|e| e.fate.counts_in_time()).cloned().collect();
                proptest::prop_assert_eq!(&c.events, &kept);
                proptest::prop_assert_eq!(c.points, a.points);
            }
        }
    }

    proptest::proptest! {
        /// At the bounds validation allows (points, dimension ranges and
        /// weights up to 1e9, half-lives and windows up to 36 500 days),
        /// every dimension value and score is a finite number, the score
        /// within 0-100, however many events count.
        #[test]
        fn extreme_models_keep_every_number_finite(
            bounds in (-1e9f64..1e9, -1e9f64..1e9),
            weights in (0f64..1e9, 1e-9f64..1e9),
            points in (-1e9f64..1e9, -1e9f64..1e9),
            half_life in 1e-9f64..36_500.0,
            window in 1e-9f64..36_500.0,
            events in proptest::collection::vec(-1_000_000i64..1_000_000, 0..300),
        ) {
            let (lo, hi) = (bounds.0.min(bounds.1), bounds.0.max(bounds.1));
            proptest::prop_assume!(hi > lo);
            let text = format!(
                "[[dimension]]\nid = \"a\"\nmin = {lo:e}\nmax = {hi:e}\n\
                 [[dimension]]\nid = \"b\"\nmin = -1e9\nmax = 1e9\nhalf_life_days = {half_life:e}\nwindow_days = {window:e}\n\
                 [score]\nweights = {{ a = {:e}, b = {:e} }}\n\
                 [[rule]]\nid = \"fit\"\ndimension = \"a\"\npoints = {:e}\n\
                 [[rule]]\nid = \"act\"\ndimension = \"b\"\non = \"e\"\npoints = {:e}\n",
                weights.0, weights.1, points.0, points.1
            );
            let m = Model::from_toml(&text).unwrap();
            let none: Vec<Option<Box<str>>> = vec![None; m.vocabulary.attributes.len()];
            let props: Vec<Option<Box<str>>> = vec![None; m.vocabulary.properties.len()];
            let base = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
            let mut hits: Vec<Hit<u64>> = Vec::new();
            for (n, minutes) in events.iter().enumerate() {
                match_event(&m, "e", none.as_slice(), props.as_slice(), |target| {
                    hits.push(Hit { target, at: Timestamp(base.0 + minutes * 60_000_000_000), key: n as u64 });
                });
            }
            let card = evaluate(&m, none.as_slice(), &mut hits, base, None);
            proptest::prop_assert!(card.dimensions.iter().all(|d| d.is_finite()), "{card:?}");
            proptest::prop_assert!(card.score.is_finite() && (0.0..=100.0).contains(&card.score), "{card:?}");
        }
    }
}
