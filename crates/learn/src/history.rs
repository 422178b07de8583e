//! Point-in-time features from contact histories, for learning from the
//! lead database without reading the future.
//!
//! A contact whose first outcome event (say `deal_won`) falls in the
//! horizon `(as_of - horizon, as_of]` is a converter, described as of the
//! moment before that event; a contact that converted before the horizon is
//! left out (it was already a customer); a contact with no outcome up to
//! `as_of` is a non-converter, described as of a moment inside the horizon
//! drawn from its id (uniform, repeatable). Only events strictly before a
//! contact's cutoff are read.
//!
//! Why not describe every non-converter at the horizon's start: converters
//! would then be seen later in time than non-converters, and anything that
//! grows with time (recent activity in a growing audience, "days since
//! last visit") would separate the two groups by the calendar alone. On
//! generated data with a known formula that inflated the cross-validated
//! AUC above the formula's own (0.728 against 0.700): a leak. Drawing the
//! non-converters' moments from the same horizon removes it.

use std::collections::BTreeMap;

use crate::table::{Column, Table};

/// Which outcome, and the time frame.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeWindow {
    /// The event type that means "converted".
    pub outcome_type: String,
    /// End of the observed time (nanoseconds since the epoch).
    pub as_of: i64,
    /// Length of the horizon, in days.
    pub horizon_days: f64,
}

impl OutcomeWindow {
    /// Start of the horizon (nanoseconds).
    pub fn start(&self) -> i64 {
        self.as_of - (self.horizon_days * 86_400e9) as i64
    }
}

/// One event as the learner sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeadEvent<'a> {
    /// Event type.
    pub event_type: &'a str,
    /// When (nanoseconds since the epoch).
    pub at: i64,
    /// The page, for page views.
    pub page: Option<&'a str>,
}

/// A repeatable moment inside the horizon for a non-converter: the start
/// plus a share of the horizon drawn from the contact id (FNV-1a hash).
pub fn draw_moment(id: &str, w: &OutcomeWindow) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let share = (h >> 11) as f64 / (1u64 << 53) as f64;
    w.start() + ((w.as_of - w.start()) as f64 * share) as i64 + 1
}

/// Where a lead's features are taken (nanoseconds; only earlier events are
/// read) and its outcome, or `None` if it converted before the horizon.
/// `moment` is the non-converter's cutoff ([`draw_moment`]).
pub fn cutoff(events: &[LeadEvent<'_>], w: &OutcomeWindow, moment: i64) -> Option<(i64, u8)> {
    let first = events
        .iter()
        .filter(|e| e.event_type == w.outcome_type && e.at <= w.as_of)
        .map(|e| e.at)
        .min();
    match first {
        Some(t) if t > w.start() => Some((t, 1)),
        Some(_) => None,
        None => Some((moment, 0)),
    }
}

/// The look-back windows of event counts, in days.
pub const WINDOWS: [u32; 3] = [7, 30, 90];

/// Names of the event features for these event types, in
/// [`event_features`] order.
pub fn event_feature_names(types: &[String]) -> Vec<String> {
    let mut names = Vec::new();
    for t in types {
        for d in WINDOWS {
            names.push(format!("events: {t} in {d} days"));
        }
        names.push(format!("events: days since last {t}"));
    }
    names.push("events: distinct pages in 90 days".into());
    names
}

/// Event aggregates as of `cutoff`, reading only events before it: per
/// type, counts over 7, 30 and 90 days and days since the last one
/// (`None` if never), then the distinct pages seen in 90 days.
pub fn event_features(events: &[LeadEvent<'_>], cutoff: i64, types: &[String]) -> Vec<Option<f64>> {
    const DAY: f64 = 86_400e9;
    let past = || events.iter().filter(move |e| e.at < cutoff);
    let mut out = Vec::with_capacity(types.len() * 4 + 1);
    for t in types {
        let mut counts = [0u32; 3];
        let mut last: Option<i64> = None;
        for e in past().filter(|e| e.event_type == t) {
            let age = (cutoff - e.at) as f64 / DAY;
            for (c, d) in counts.iter_mut().zip(WINDOWS) {
                if age <= f64::from(d) {
                    *c += 1;
                }
            }
            last = Some(last.map_or(e.at, |l: i64| l.max(e.at)));
        }
        out.extend(counts.iter().map(|&c| Some(f64::from(c))));
        out.push(last.map(|l| ((cutoff - l) as f64 / DAY * 100.0).round() / 100.0));
    }
    let mut pages: Vec<&str> = past()
        .filter(|e| (cutoff - e.at) as f64 / DAY <= 90.0)
        .filter_map(|e| e.page)
        .collect();
    pages.sort_unstable();
    pages.dedup();
    out.push(Some(pages.len() as f64));
    out
}

/// One lead's attributes and numeric features (event aggregates, rule
/// points; `None` is missing).
type LeadRow = (BTreeMap<String, String>, Vec<Option<f64>>);

/// Collects leads into a training table: attributes as columns, then the
/// event features, then each rule's points as of the cutoff.
#[derive(Debug)]
pub struct PointInTimeTable {
    window: OutcomeWindow,
    types: Vec<String>,
    rule_names: Vec<String>,
    rows: Vec<LeadRow>,
    labels: Vec<u8>,
    /// Contacts left out because they converted before the horizon.
    pub left_out: usize,
}

impl PointInTimeTable {
    /// An empty table; `event_types` are the types to aggregate (the
    /// outcome type is left out), `rule_names` the scoring model's rules.
    pub fn new(
        window: OutcomeWindow,
        event_types: &[String],
        rule_names: Vec<String>,
    ) -> PointInTimeTable {
        let types = event_types
            .iter()
            .filter(|t| **t != window.outcome_type)
            .cloned()
            .collect();
        PointInTimeTable {
            window,
            types,
            rule_names,
            rows: Vec::new(),
            labels: Vec::new(),
            left_out: 0,
        }
    }

    /// Adds one contact; `rule_points(cutoff)` gives each rule's points as
    /// of just before the cutoff.
    pub fn add(
        &mut self,
        id: &str,
        attributes: &BTreeMap<String, String>,
        events: &[LeadEvent<'_>],
        rule_points: impl FnOnce(i64) -> Vec<f64>,
    ) {
        let moment = draw_moment(id, &self.window);
        let Some((at, label)) = cutoff(events, &self.window, moment) else {
            self.left_out += 1;
            return;
        };
        let mut numbers = event_features(events, at, &self.types);
        numbers.extend(rule_points(at).into_iter().map(Some));
        self.rows.push((attributes.clone(), numbers));
        self.labels.push(label);
    }

    /// The table (named `name` in messages) and the outcomes.
    pub fn finish(self, name: &str) -> (Table, Vec<u8>) {
        let mut attribute_names: Vec<String> = Vec::new();
        for (a, _) in &self.rows {
            for k in a.keys() {
                if !attribute_names.contains(k) {
                    attribute_names.push(k.clone());
                }
            }
        }
        let mut columns: Vec<Column> = attribute_names.iter().map(Column::new).collect();
        let mut number_names = event_feature_names(&self.types);
        number_names.extend(self.rule_names.iter().map(|r| format!("rule: {r} points")));
        let first_number = columns.len();
        columns.extend(number_names.iter().map(Column::new));
        for (attributes, numbers) in &self.rows {
            for (c, name) in columns[..first_number].iter_mut().zip(&attribute_names) {
                c.push(
                    attributes
                        .get(name)
                        .map(String::as_str)
                        .filter(|v| !v.is_empty()),
                );
            }
            for (c, v) in columns[first_number..].iter_mut().zip(numbers) {
                c.push(v.map(|x| format!("{x}")).as_deref());
            }
        }
        let table = Table {
            path: name.into(),
            lines: (1..=self.rows.len() as u64).collect(),
            columns,
        };
        (table, self.labels)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const DAY: i64 = 86_400_000_000_000;

    fn window() -> OutcomeWindow {
        OutcomeWindow {
            outcome_type: "deal_won".into(),
            as_of: 400 * DAY,
            horizon_days: 90.0,
        }
    }

    fn ev(t: &'static str, day: i64) -> LeadEvent<'static> {
        LeadEvent {
            event_type: t,
            at: day * DAY,
            page: None,
        }
    }

    #[test]
    fn converters_before_the_outcome_and_the_rest_at_the_horizon() {
        let w = window();
        let m = draw_moment("c1", &w);
        assert!(m > w.start() && m <= w.as_of);
        assert_eq!(m, draw_moment("c1", &w));
        assert_ne!(m, draw_moment("c2", &w));
        assert_eq!(
            cutoff(&[ev("page_view", 10), ev("deal_won", 350)], &w, m),
            Some((350 * DAY, 1))
        );
        assert_eq!(cutoff(&[ev("page_view", 10)], &w, m), Some((m, 0)));
        assert_eq!(
            cutoff(&[ev("deal_won", 100)], &w, m),
            None,
            "a customer already"
        );
        assert_eq!(
            cutoff(&[ev("deal_won", 500)], &w, m),
            Some((m, 0)),
            "the future is unknown"
        );
        let f = event_features(
            &[
                ev("page_view", 340),
                ev("page_view", 300),
                ev("page_view", 349),
                ev("page_view", 350),
            ],
            350 * DAY,
            &["page_view".into()],
        );
        // 7 days: day 349 (and 340 is 10 days back); 30: 349, 340; 90: all three before.
        assert_eq!(
            f,
            vec![Some(1.0), Some(2.0), Some(3.0), Some(1.0), Some(0.0)]
        );
        assert_eq!(event_features(&[], 10, &["x".into()])[3], None);
    }

    proptest! {
        /// Features at a cutoff never read an event at or after it: adding
        /// such events (of any type, the outcome included) changes nothing.
        #[test]
        fn features_never_read_the_future(
            past in prop::collection::vec((0usize..3, 0i64..300, 0usize..4), 0..40),
            future in prop::collection::vec((0usize..4, 0i64..200, 0usize..4), 1..20),
        ) {
            let types = ["page_view", "email_click", "demo_request", "deal_won"];
            let pages = [None, Some("/a"), Some("/pricing"), Some("/b")];
            let cut = 300 * DAY;
            let make = |(t, d, p): &(usize, i64, usize), base: i64| LeadEvent {
                event_type: types[*t],
                at: base + d * DAY / 2,
                page: pages[*p],
            };
            let before: Vec<LeadEvent> = past.iter().map(|e| make(e, 0)).filter(|e| e.at < cut).collect();
            let mut all = before.clone();
            all.extend(future.iter().map(|e| make(e, cut)));
            let names: Vec<String> = types[..3].iter().map(|s| s.to_string()).collect();
            prop_assert_eq!(event_features(&before, cut, &names), event_features(&all, cut, &names));
            // And a converter's cutoff is its outcome: its features are those
            // of the events before it.
            let w = OutcomeWindow { outcome_type: "deal_won".into(), as_of: 500 * DAY, horizon_days: 400.0 };
            let mut won = before.clone();
            won.push(LeadEvent { event_type: "deal_won", at: cut, page: None });
            won.extend(future.iter().map(|e| make(e, cut)));
            let (at, label) = cutoff(&won, &w, 0).unwrap();
            prop_assert_eq!((at, label), (cut, 1));
            prop_assert_eq!(event_features(&won, at, &names), event_features(&before, cut, &names));
        }
    }
}
