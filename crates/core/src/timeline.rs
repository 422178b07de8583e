//! Time passing: when will a contact's band, stage or disqualification
//! change with no new event at all?
//!
//! Between *breakpoints* (a future event becoming due, or a counted event
//! leaving its dimension's window) the set of counted events is fixed, so
//! each dimension's raw value is `A + E * 2^(-dt / half_life)`: attribute
//! points `A` and decaying event points `E`. Within a segment the change
//! time is found on that closed form (probes, then bisection to the
//! second), then confirmed with [`evaluate`](crate::evaluate) itself; at each breakpoint the
//! state is evaluated exactly. Probes grow geometrically (1 minute, 2, 4...),
//! so a state that leaves and comes back between two probes can be missed;
//! with one decaying dimension, or decaying points of one sign, the scores
//! are monotone within a segment and nothing is missed.

use crate::model::Model;
use crate::scoring::{
    AttributeLookup, Hit, ScoreCard, Trace, card_from_raw, evaluate_sorted, prepare, sort_hits,
};
use crate::timestamp::{NANOS_PER_DAY, Timestamp, days_to_nanos};

/// What a transition is about: band (with disqualification) and stage.
pub type Class = (Option<usize>, Option<usize>, bool);

/// The class of a score card.
pub fn class(card: &ScoreCard) -> Class {
    (card.band, card.stage, card.disqualified)
}

/// The first time after `from` at which the set of counted events can
/// change, given the trace at `from`: an event that counts (or
/// disqualifies) leaving its window, or a future event coming due. An
/// eligible event that was left out by a limit leaving its window changes
/// nothing: limits only look at events that counted.
fn next_breakpoint<K>(
    model: &Model,
    hits: &[Hit<K>],
    trace: &Trace<K>,
    from: Timestamp,
) -> Option<i64> {
    // The first event after `from` of each target's run (hits in
    // `sort_hits` order: by target, then time).
    let mut next: Option<i64> = None;
    let mut i = 0;
    while let Some(first) = hits.get(i) {
        let run = &hits[i..];
        let len = run.partition_point(|h| h.target == first.target);
        let run = &run[..len];
        if let Some(h) = run.get(run.partition_point(|h| h.at <= from)) {
            next = Some(next.map_or(h.at.0, |n| n.min(h.at.0)));
        }
        i += len;
    }
    for (rule, rt) in model.rules.iter().zip(&trace.rules) {
        let Some(w) = rule.dimension.and_then(|d| model.dimensions[d].window_days) else {
            continue;
        };
        let w = days_to_nanos(w);
        for e in &rt.events {
            if e.fate.counts_in_time() {
                let expiry = e.at.0.saturating_add(w);
                if expiry > from.0 {
                    next = Some(next.map_or(expiry, |n| n.min(expiry)));
                }
            }
        }
    }
    next
}

/// The next time after `from` (and before `until`) at which the contact's
/// class differs from its class at `from`, looking at no more than
/// `max_segments` breakpoints; or, when the search stops at that cap, the
/// breakpoint where it stopped (the caller checks again then). `None`: no
/// change before `until`.
pub fn next_check<K, A>(
    model: &Model,
    attributes: &A,
    hits: &[Hit<K>],
    from: Timestamp,
    until: Timestamp,
    max_segments: usize,
) -> Option<Timestamp>
where
    K: Ord + Clone,
    A: AttributeLookup + ?Sized,
{
    let mut sorted = hits.to_vec();
    sort_hits(&mut sorted);
    next_check_sorted(model, attributes, &sorted, from, until, max_segments)
}

/// [`next_check`] on hits already in [`sort_hits`] order (the store keeps
/// them so): no copy. Events that left their window are jumped over by
/// each evaluation, not filtered out here.
pub fn next_check_sorted<K, A>(
    model: &Model,
    attributes: &A,
    hits: &[Hit<K>],
    from: Timestamp,
    until: Timestamp,
    max_segments: usize,
) -> Option<Timestamp>
where
    K: Ord + Clone,
    A: AttributeLookup + ?Sized,
{
    let prepared = prepare(model, attributes);
    let at = |t: Timestamp, trace: Option<&mut Trace<K>>| {
        evaluate_sorted(model, attributes, Some(&prepared), hits, t, trace)
    };
    // One evaluation per breakpoint: the state at a segment's end is the
    // next segment's start.
    let mut trace = Trace::counting_only();
    let mut card = at(from, Some(&mut trace));
    let start = class(&card);
    let mut seg_start = from;
    for n in 0.. {
        let end = next_breakpoint(model, hits, &trace, seg_start)
            .map_or(until, |b| Timestamp(b.min(until.0)));
        if let Some(t) =
            change_in_segment(model, attributes, &at, &card, &trace, seg_start, end, start)
        {
            return Some(t);
        }
        if end >= until {
            return None;
        }
        trace = Trace::counting_only();
        card = at(end, Some(&mut trace));
        if class(&card) != start || n + 1 >= max_segments {
            return Some(end);
        }
        seg_start = end;
    }
    None
}

/// Within `[from, end)`, the first time the class differs from `start`,
/// using the closed form of the decay and confirming with `evaluate`.
#[allow(clippy::too_many_arguments)]
fn change_in_segment<K, A>(
    model: &Model,
    attributes: &A,
    at: &impl Fn(Timestamp, Option<&mut Trace<K>>) -> ScoreCard,
    card0: &ScoreCard,
    trace: &Trace<K>,
    from: Timestamp,
    end: Timestamp,
    start: Class,
) -> Option<Timestamp>
where
    K: Ord + Clone,
    A: AttributeLookup + ?Sized,
{
    let decaying = model.dimensions.iter().any(|d| d.half_life_days.is_some());
    if !decaying || card0.disqualified {
        return None; // nothing moves inside the segment
    }
    // Split each dimension into attribute points and event points.
    let mut attr = vec![0.0; model.dimensions.len()];
    for (rule, rt) in model.rules.iter().zip(&trace.rules) {
        if rt.matched == Some(true)
            && let Some(d) = rule.dimension
        {
            attr[d] += rt.points;
        }
    }
    let events: Vec<f64> = trace.raw.iter().zip(&attr).map(|(r, a)| r - a).collect();
    let closed = |t: i64| -> Class {
        let dt_days = (t - from.0) as f64 / NANOS_PER_DAY as f64;
        let raw: Vec<f64> = model
            .dimensions
            .iter()
            .enumerate()
            .map(|(d, dim)| match dim.half_life_days {
                Some(h) => attr[d] + events[d] * (-dt_days / h).exp2(),
                None => attr[d] + events[d],
            })
            .collect();
        class(&card_from_raw(model, attributes, &raw, false))
    };
    // Geometric probes from one minute after `from` to the segment's end.
    let mut prev = from.0;
    let mut step: i64 = 60_000_000_000;
    loop {
        let probe = from.0.saturating_add(step).min(end.0 - 1);
        if probe <= prev {
            return None;
        }
        if closed(probe) != start {
            // Bisect to the second on the closed form...
            let (mut lo, mut hi) = (prev, probe);
            while hi - lo > 1_000_000_000 {
                let mid = lo + (hi - lo) / 2;
                if closed(mid) != start {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            // ...then confirm with the real evaluation on whole seconds,
            // from the first whole second after the last unchanged time:
            // the answer is the first whole second at which it changed.
            let mut t = lo.div_euclid(1_000_000_000) * 1_000_000_000 + 1_000_000_000;
            for _ in 0..5 {
                if t >= end.0 {
                    break;
                }
                if class(&at(Timestamp(t), None)) != start {
                    return Some(Timestamp(t));
                }
                t += 1_000_000_000;
            }
        }
        if probe >= end.0 - 1 {
            return None;
        }
        prev = probe;
        step = step.saturating_mul(2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::{evaluate, match_event};

    const MODEL: &str = r#"
[[dimension]]
id = "engagement"
half_life_days = 10
window_days = 100
[[band]]
id = "hot"
min_score = 50
[[band]]
id = "cold"
min_score = 0
[[rule]]
id = "demo"
dimension = "engagement"
on = "demo_request"
points = 80
"#;

    fn hits(model: &Model, times: &[&str]) -> Vec<Hit<u64>> {
        let mut out = Vec::new();
        let none: Vec<Option<Box<str>>> = Vec::new();
        for (i, t) in times.iter().enumerate() {
            match_event(
                model,
                "demo_request",
                none.as_slice(),
                none.as_slice(),
                |target| {
                    out.push(Hit {
                        target,
                        at: Timestamp::parse(t).unwrap(),
                        key: i as u64,
                    })
                },
            );
        }
        out
    }

    #[test]
    fn decay_below_a_band_threshold_is_found_to_the_second() {
        let m = Model::from_toml(MODEL).unwrap();
        let none: Vec<Option<Box<str>>> = Vec::new();
        let h = hits(&m, &["2026-01-01T00:00:00Z"]);
        let from = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
        let until = Timestamp::parse("2027-01-01T00:00:00Z").unwrap();
        let t = next_check(&m, none.as_slice(), &h, from, until, 16).unwrap();
        // 80 * 2^(-d/10) = 50  <=>  d = 10 * log2(1.6) = 6.78 days.
        let expected = 10.0 * (1.6f64).log2();
        let got = t.days_before(from).abs();
        assert!(
            (got - expected).abs() < 2.0 / 86_400.0,
            "{got} vs {expected}"
        );
        let mut hh = h.clone();
        let before = evaluate(
            &m,
            none.as_slice(),
            &mut hh,
            Timestamp(t.0 - 1_000_000_000),
            None,
        );
        let after = evaluate(&m, none.as_slice(), &mut hh, t, None);
        assert_eq!(before.band, Some(0));
        assert_eq!(after.band, Some(1));
    }

    #[test]
    fn a_future_event_is_a_breakpoint() {
        let m = Model::from_toml(MODEL).unwrap();
        let none: Vec<Option<Box<str>>> = Vec::new();
        let h = hits(&m, &["2026-03-01T00:00:00Z"]);
        let from = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
        let until = Timestamp::parse("2027-01-01T00:00:00Z").unwrap();
        let t = next_check(&m, none.as_slice(), &h, from, until, 16).unwrap();
        assert_eq!(t, Timestamp::parse("2026-03-01T00:00:00Z").unwrap());
    }

    #[test]
    fn nothing_changes_without_events() {
        let m = Model::from_toml(MODEL).unwrap();
        let none: Vec<Option<Box<str>>> = Vec::new();
        let from = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
        let until = Timestamp::parse("2027-01-01T00:00:00Z").unwrap();
        assert_eq!(
            next_check::<u64, _>(&m, none.as_slice(), &[], from, until, 16),
            None
        );
    }

    proptest::proptest! {
        /// With points of one sign, the first change found is the first
        /// change: the class holds at every earlier sampled time, and has
        /// changed at the time returned.
        #[test]
        fn the_first_change_is_found(
            events in proptest::collection::vec((0i64..90 * 24, 0usize..2), 1..12),
            samples in proptest::collection::vec(0.0f64..1.0, 40),
        ) {
            let m = Model::from_toml(
                r#"
[[dimension]]
id = "engagement"
half_life_days = 7
window_days = 30
[[band]]
id = "hot"
min_score = 60
[[band]]
id = "warm"
min_score = 25
[[band]]
id = "cold"
min_score = 0
[[stage]]
id = "mql"
when = { dimension = "engagement", gte = 40 }
[[rule]]
id = "demo"
dimension = "engagement"
on = "demo_request"
points = 35
limit = { count = 2, per_days = 5 }
[[rule]]
id = "visit"
dimension = "engagement"
on = "page_view"
points = 10
"#,
            )
            .unwrap();
            let none: Vec<Option<Box<str>>> = Vec::new();
            let base = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
            let mut hits = Vec::new();
            for (k, (hours, kind)) in events.iter().enumerate() {
                let ty = ["demo_request", "page_view"][*kind];
                match_event(&m, ty, none.as_slice(), none.as_slice(), |target| {
                    hits.push(Hit { target, at: Timestamp(base.0 + hours * 3_600_000_000_000), key: k as u64 })
                });
            }
            let from = Timestamp(base.0 + 45 * 86_400_000_000_000);
            let until = Timestamp(from.0 + 400 * 86_400_000_000_000);
            let class_at = |t: Timestamp| {
                let mut h = hits.clone();
                class(&evaluate(&m, none.as_slice(), &mut h, t, None))
            };
            let start = class_at(from);
            let found = next_check(&m, none.as_slice(), &hits, from, until, usize::MAX);
            let end = found.unwrap_or(until);
            if let Some(t) = found {
                proptest::prop_assert_ne!(class_at(t), start);
            }
            for s in samples {
                let t = Timestamp(from.0 + ((end.0 - from.0 - 1_000_000_000) as f64 * s) as i64);
                proptest::prop_assert_eq!(class_at(t), start, "changed at {} before {:?}", t, found);
            }
        }
    }
}
