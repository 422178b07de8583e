//! Property tests over random models, contacts and events:
//! - shuffling events, duplicating them and splitting them over several
//!   files (CSV and NDJSON) never changes any score;
//! - the batch scorer agrees with a naive reference written straight from
//!   the spec's semantics (quadratic limits, no sorting tricks).

use std::collections::HashMap;
use std::path::PathBuf;

use leadscore_batch::{ContactTable, score_files};
use leadscore_core::condition::{AttrId, Facts, PropId};
use leadscore_core::model::RuleKind;
use leadscore_core::timestamp::NANOS_PER_DAY;
use leadscore_core::{Model, ScoreCard, Timestamp};
use proptest::prelude::*;

const TYPES: [&str; 5] = [
    "page_view",
    "email_click",
    "unsubscribe",
    "resubscribe",
    "page_view",
];
const URLS: [&str; 4] = ["/pricing", "/blog/x", "/Pricing/enterprise", "/careers"];
const TITLES: [&str; 4] = ["VP Sales", "Engineer", " student ", "Head of IT"];

#[derive(Clone, Debug)]
struct Ev {
    id: String,
    contact: usize,
    kind: usize,
    /// Minutes before as-of (negative: after as-of).
    minutes_before: i64,
    url: Option<usize>,
}

#[derive(Clone, Debug)]
struct Case {
    model: String,
    titles: Vec<Option<usize>>,
    events: Vec<Ev>,
}

/// One random rule, with `{i}` standing for its id.
fn rule_strategy() -> impl Strategy<Value = String> {
    (
        0..5usize,
        -20i32..50,
        proptest::option::of((1u32..4, proptest::option::of(1u32..6))),
        0..4usize,
    )
        .prop_map(|(kind, points, limit, url)| {
            let limit = match limit {
                Some((c, Some(p))) => format!("limit = {{ count = {c}, per_days = {p} }}\n"),
                Some((c, None)) => format!("limit = {{ count = {c} }}\n"),
                None => String::new(),
            };
            match kind {
                0 => format!(
                    "[[rule]]\nid = \"r{{i}}\"\ndimension = \"fit\"\npoints = {points}\nwhen = {{ attribute = \"job_title\", matches = \"(?i)vp|head\" }}\n"
                ),
                1 => format!(
                    "[[rule]]\nid = \"r{{i}}\"\ndimension = \"engagement\"\non = \"page_view\"\npoints = {points}\nwhen = {{ property = \"url\", starts_with = \"{}\" }}\n{limit}",
                    URLS[url].to_lowercase()
                ),
                2 => format!(
                    "[[rule]]\nid = \"r{{i}}\"\ndimension = \"engagement\"\non = \"email_click\"\npoints = {points}\n{limit}"
                ),
                3 => format!(
                    "[[rule]]\nid = \"r{{i}}\"\ndimension = \"engagement\"\non = \"page_view\"\npoints = {points}\nwhen = {{ any = [{{ property = \"url\", exists = false }}, {{ attribute = \"job_title\", equals = \"engineer\" }}] }}\n{limit}"
                ),
                _ => "[[rule]]\nid = \"r{i}\"\non = \"unsubscribe\"\ndisqualify = true\nrequalify_on = \"resubscribe\"\n".to_string(),
            }
        })
}

fn case_strategy() -> impl Strategy<Value = Case> {
    let dims = (
        proptest::option::of(1u32..60),
        proptest::option::of(5u32..90),
        -30i32..1,
        20i32..150,
        1u32..4,
    );
    let rules = proptest::collection::vec(rule_strategy(), 1..7).prop_map(|rules| {
        rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.replace("{i}", &i.to_string()))
            .collect::<Vec<_>>()
    });
    let titles = proptest::collection::vec(proptest::option::of(0..TITLES.len()), 1..5);
    (dims, rules, titles).prop_flat_map(|((half, window, min, max, w), rules, titles)| {
        let n = titles.len();
        let mut model = String::from("name = \"prop\"\n[[dimension]]\nid = \"fit\"\nmin = -10\nmax = 40\n");
        model.push_str(&format!("[[dimension]]\nid = \"engagement\"\nmin = {min}\nmax = {max}\n"));
        if let Some(h) = half {
            model.push_str(&format!("half_life_days = {h}.5\n"));
        }
        if let Some(wd) = window {
            model.push_str(&format!("window_days = {wd}\n"));
        }
        model.push_str(&format!(
            "[score]\nweights = {{ fit = 1, engagement = {w} }}\n[[band]]\nid = \"hot\"\nmin_score = 60\n[[band]]\nid = \"cold\"\nmin_score = 0\n[[stage]]\nid = \"mql\"\nwhen = {{ all = [{{ score = true, gte = 30 }}, {{ dimension = \"fit\", gte = 0 }}] }}\n"
        ));
        model.push_str(
            "[[rule]]\nid = \"student\"\ndisqualify = true\nwhen = { attribute = \"job_title\", matches = \"(?i)^\\\\s*student\" }\n",
        );
        for r in &rules {
            model.push_str(r);
        }
        let events = proptest::collection::vec(
            (0..n + 1, 0..TYPES.len(), -3000i64..30_000, proptest::option::of(0..URLS.len())),
            0..60,
        )
        .prop_map(|evs| {
            evs.into_iter()
                .enumerate()
                .map(|(i, (contact, kind, minutes_before, url))| Ev {
                    id: format!("e{i}"),
                    contact,
                    kind,
                    // Coarse timestamps (6 hours) make ties and events
                    // exactly `per_days` apart common.
                    minutes_before: minutes_before / 360 * 360,
                    url,
                })
                .collect::<Vec<_>>()
        });
        (Just(model), Just(titles), events)
            .prop_map(|(model, titles, events)| Case { model, titles, events })
    })
}

fn as_of() -> Timestamp {
    Timestamp::parse("2026-06-01T12:00:00Z").unwrap()
}

fn at(e: &Ev) -> Timestamp {
    Timestamp(as_of().0 - e.minutes_before * 60_000_000_000)
}

/// Writes contacts and events (in the given order, split in `parts` files)
/// and scores them.
fn score(case: &Case, order: &[usize], parts: usize, ndjson: bool) -> Vec<ScoreCard> {
    let dir = tempfile::tempdir().unwrap();
    let model = Model::from_toml(&case.model).unwrap();
    let contacts = dir.path().join("contacts.csv");
    let mut c = String::from("id,job_title\n");
    for (i, t) in case.titles.iter().enumerate() {
        c.push_str(&format!("c{i},{}\n", t.map_or("", |t| TITLES[t])));
    }
    std::fs::write(&contacts, c).unwrap();
    let mut files: Vec<PathBuf> = Vec::new();
    let per = order.len().div_ceil(parts.max(1)).max(1);
    for (k, chunk) in order.chunks(per).enumerate() {
        let ext = if ndjson && k % 2 == 0 {
            "ndjson"
        } else {
            "csv"
        };
        let path = dir.path().join(format!("events{k}.{ext}"));
        let mut text = if ext == "csv" {
            String::from("id,contact_id,type,timestamp,url\n")
        } else {
            String::new()
        };
        for &i in chunk {
            let e = &case.events[i];
            let url = e.url.map_or("", |u| URLS[u]);
            if ext == "csv" {
                text.push_str(&format!(
                    "{},c{},{},{},{url}\n",
                    e.id,
                    e.contact,
                    TYPES[e.kind],
                    at(e)
                ));
            } else {
                let props = if url.is_empty() {
                    String::new()
                } else {
                    format!(", \"properties\": {{\"url\": \"{url}\"}}")
                };
                text.push_str(&format!(
                    "{{\"id\": \"{}\", \"contact_id\": \"c{}\", \"type\": \"{}\", \"timestamp\": \"{}\"{props}}}\n",
                    e.id, e.contact, TYPES[e.kind], at(e)
                ));
            }
        }
        std::fs::write(&path, text).unwrap();
        files.push(path);
    }
    let table = ContactTable::load(&[contacts], &model.vocabulary).unwrap();
    score_files(&model, &table, &files, as_of()).unwrap().cards
}

struct RefFacts<'a> {
    attrs: &'a HashMap<String, String>,
    props: HashMap<String, String>,
    model: &'a Model,
}

impl Facts for RefFacts<'_> {
    fn attribute(&self, id: AttrId) -> Option<&str> {
        self.attrs
            .get(&self.model.vocabulary.attributes[id.0 as usize])
            .map(String::as_str)
    }
    fn property(&self, id: PropId) -> Option<&str> {
        self.props
            .get(&self.model.vocabulary.properties[id.0 as usize])
            .map(String::as_str)
    }
}

/// The spec's semantics, naively: (dimension values, disqualified).
fn reference(case: &Case) -> Vec<(Vec<f64>, bool)> {
    let model = Model::from_toml(&case.model).unwrap();
    let t = as_of();
    let day = NANOS_PER_DAY as f64;
    let mut out = Vec::new();
    for (ci, title) in case.titles.iter().enumerate() {
        let mut attrs = HashMap::new();
        if let Some(tt) = title {
            attrs.insert("job_title".to_string(), TITLES[*tt].to_string());
        }
        let mut raw = vec![0.0; model.dimensions.len()];
        let mut disq = false;
        for rule in &model.rules {
            let holds = |props: HashMap<String, String>| {
                let f = RefFacts {
                    attrs: &attrs,
                    props,
                    model: &model,
                };
                rule.when.as_ref().is_none_or(|c| c.holds(&f))
            };
            match &rule.kind {
                RuleKind::Attribute => {
                    if holds(HashMap::new()) {
                        if rule.disqualify {
                            disq = true;
                        } else {
                            raw[rule.dimension.unwrap()] += rule.points;
                        }
                    }
                }
                RuleKind::Event { on } => {
                    let window = rule.dimension.and_then(|d| model.dimensions[d].window_days);
                    let mut eligible: Vec<&Ev> = case
                        .events
                        .iter()
                        .filter(|e| e.contact == ci && TYPES[e.kind] == on)
                        .filter(|e| at(e) <= t)
                        .filter(|e| window.is_none_or(|w| (at(e).0 as f64) > t.0 as f64 - w * day))
                        .filter(|e| {
                            let mut p = HashMap::new();
                            if let Some(u) = e.url {
                                p.insert("url".to_string(), URLS[u].to_string());
                            }
                            holds(p)
                        })
                        .collect();
                    eligible.sort_by(|a, b| (at(a), &a.id).cmp(&(at(b), &b.id)));
                    if rule.disqualify {
                        if let Some(last) = eligible.last() {
                            let lifted = case.events.iter().any(|e| {
                                e.contact == ci
                                    && Some(TYPES[e.kind]) == rule.requalify_on.as_deref()
                                    && at(e) <= t
                                    && at(e) > at(last)
                            });
                            disq |= !lifted;
                        }
                        continue;
                    }
                    let mut counted: Vec<Timestamp> = Vec::new();
                    for e in eligible {
                        let ok = match &rule.limit {
                            None => true,
                            Some(l) => {
                                let n = counted
                                    .iter()
                                    .filter(|&&c| match l.per_days {
                                        Some(p) => {
                                            (c.0 as f64) > at(e).0 as f64 - p * day && c <= at(e)
                                        }
                                        None => true,
                                    })
                                    .count();
                                n < l.count as usize
                            }
                        };
                        if ok {
                            counted.push(at(e));
                            let d = rule.dimension.unwrap();
                            let age = (t.0 - at(e).0) as f64 / day;
                            let share = model.dimensions[d]
                                .half_life_days
                                .map_or(1.0, |h| 2f64.powf(-age / h));
                            raw[d] += rule.points * share;
                        }
                    }
                }
            }
        }
        let dims = model
            .dimensions
            .iter()
            .zip(raw)
            .map(|(d, v)| v.clamp(d.min, d.max))
            .collect();
        out.push((dims, disq));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn order_duplicates_and_files_never_change_scores(
        case in case_strategy(),
        shuffle_seed in any::<u64>(),
        dup_every in 1usize..5,
        parts in 1usize..4,
        ndjson in any::<bool>(),
    ) {
        let base: Vec<usize> = (0..case.events.len()).collect();
        let expected = score(&case, &base, 1, false);
        // Shuffle (a seeded Fisher-Yates) and repeat some events.
        let mut order: Vec<usize> = base.iter().copied().chain(base.iter().copied().step_by(dup_every)).collect();
        let mut s = shuffle_seed | 1;
        for i in (1..order.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            order.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let got = score(&case, &order, parts, ndjson);
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn batch_scores_match_the_naive_reference(case in case_strategy()) {
        let base: Vec<usize> = (0..case.events.len()).collect();
        let got = score(&case, &base, 1, false);
        let want = reference(&case);
        for (g, (dims, disq)) in got.iter().zip(&want) {
            prop_assert_eq!(g.disqualified, *disq);
            for (a, b) in g.dimensions.iter().zip(dims) {
                prop_assert!((a - b).abs() <= 1e-9 * a.abs().max(1.0), "{} vs {}", a, b);
            }
        }
    }
}
