//! Reading a model file: TOML text to a validated [`Model`], or the list of
//! every problem found, each with its place.
//!
//! Stage one is plain TOML parsing (a syntax error stops there, with its line
//! and column). Stage two walks the generic table by hand rather than through
//! serde, so that it can report *all* problems at once, name unknown keys
//! (with a suggestion for typos) and say which rule and field each problem
//! is in.

use std::collections::HashSet;
use std::fmt;

use regex::RegexBuilder;
use toml::{Table, Value};

use crate::condition::{Condition, Op, Subject, Vocabulary, fold_operand};
use crate::model::{Band, Dimension, Limit, Model, Rule, RuleKind, Stage, Target};
use crate::timestamp::days_to_nanos;

/// Most rules a model may hold.
pub const MAX_RULES: usize = 10_000;
/// Most dimensions, bands or stages a model may hold (each).
pub const MAX_SECTIONS: usize = 256;
/// Deepest nesting of `all` / `any` / `not`.
pub const MAX_CONDITION_DEPTH: usize = 32;
/// Largest compiled regular expression, in bytes.
pub const MAX_REGEX_BYTES: usize = 1 << 20;
/// Largest model file, in bytes.
pub const MAX_MODEL_BYTES: usize = 4 << 20;

/// One thing wrong with a model, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where: for example `rule 'pricing-page' field 'limit.count'`.
    pub place: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.message)
    }
}

/// Why a model file was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The text is not valid TOML.
    #[error("TOML syntax error at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The TOML is well formed but the model cannot be evaluated.
    #[error("{} problem(s) in the model:\n{}", .0.len(), list(.0))]
    Invalid(Vec<Problem>),
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where a condition stands, which decides the subjects it may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Context {
    AttributeRule,
    EventRule,
    Stage,
}

struct Checker {
    problems: Vec<Problem>,
    vocabulary: Vocabulary,
}

impl Checker {
    fn problem(&mut self, place: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            place: place.to_string(),
            message: message.into(),
        });
    }
}

/// A table being read: remembers which keys were used so that the rest can
/// be reported as unknown.
struct Section<'a> {
    table: &'a Table,
    place: String,
    used: Vec<&'a str>,
}

impl<'a> Section<'a> {
    fn new(table: &'a Table, place: String) -> Self {
        Section {
            table,
            place,
            used: Vec::new(),
        }
    }

    fn get(&mut self, key: &str) -> Option<&'a Value> {
        let (k, v) = self.table.get_key_value(key)?;
        self.used.push(k.as_str());
        Some(v)
    }

    fn field(&self, key: &str) -> String {
        format!("{} field '{key}'", self.place)
    }

    fn finish(self, allowed: &[&str], c: &mut Checker) {
        for key in self.table.keys() {
            if !self.used.contains(&key.as_str()) {
                let hint = suggest(key, allowed)
                    .map(|s| format!(" (did you mean '{s}'?)"))
                    .unwrap_or_default();
                c.problem(
                    &self.place,
                    format!("unknown key '{key}'{hint}; allowed: {}", allowed.join(", ")),
                );
            }
        }
    }

    fn string(&mut self, key: &str, c: &mut Checker) -> Option<&'a str> {
        match self.get(key)? {
            Value::String(s) => Some(s.as_str()),
            other => {
                c.problem(
                    &self.field(key),
                    format!("must be a string, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn number(&mut self, key: &str, c: &mut Checker) -> Option<f64> {
        let v = self.get(key)?;
        let place = self.field(key);
        number_value(v, &place, c)
    }

    fn boolean(&mut self, key: &str, c: &mut Checker) -> Option<bool> {
        match self.get(key)? {
            Value::Boolean(b) => Some(*b),
            other => {
                c.problem(
                    &self.field(key),
                    format!("must be true or false, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// An array of tables (`[[rule]]`), each handed back with its index.
    fn tables(&mut self, key: &str, c: &mut Checker) -> Vec<&'a Table> {
        match self.get(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::Table(t) => out.push(t),
                        other => c.problem(
                            &format!("{key} #{}", i + 1),
                            format!("must be a table, found {}", other.type_str()),
                        ),
                    }
                }
                out
            }
            Some(other) => {
                c.problem(
                    key,
                    format!(
                        "must be an array of tables ([[{key}]]), found {}",
                        other.type_str()
                    ),
                );
                Vec::new()
            }
        }
    }
}

fn number_value(v: &Value, place: &str, c: &mut Checker) -> Option<f64> {
    let n = match v {
        Value::Integer(i) => *i as f64,
        Value::Float(f) => *f,
        other => {
            c.problem(
                place,
                format!("must be a number, found {}", other.type_str()),
            );
            return None;
        }
    };
    if !n.is_finite() {
        c.problem(place, "must be a finite number");
        return None;
    }
    Some(n)
}

/// The closest allowed key, when it is close enough to be a typo.
fn suggest<'b>(key: &str, allowed: &[&'b str]) -> Option<&'b str> {
    allowed
        .iter()
        .map(|a| (edit_distance(key, a), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// Parses and validates a model file's text.
pub fn compile(text: &str) -> Result<Model, ModelError> {
    if text.len() > MAX_MODEL_BYTES {
        return Err(ModelError::Invalid(vec![Problem {
            place: "model".into(),
            message: format!("file is larger than {MAX_MODEL_BYTES} bytes"),
        }]));
    }
    let root: Table = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        ModelError::Syntax {
            line,
            column,
            message: e.message().trim().to_string(),
        }
    })?;
    let mut c = Checker {
        problems: Vec::new(),
        vocabulary: Vocabulary::default(),
    };
    let mut top = Section::new(&root, "model".into());
    let name = top.string("name", &mut c).unwrap_or("model").to_string();
    let version = match top.get("version") {
        None => 1,
        Some(Value::Integer(v)) => *v,
        Some(other) => {
            c.problem(
                "model field 'version'",
                format!("must be an integer, found {}", other.type_str()),
            );
            1
        }
    };

    let dimensions = dimensions(&mut top, &mut c);
    let dim_ids: Vec<String> = dimensions.iter().map(|d| d.id.clone()).collect();
    let weights = weights(&mut top, &dim_ids, &mut c);
    let bands = bands(&mut top, &mut c);
    let stages = stages(&mut top, &dim_ids, &mut c);
    let rules = rules(&mut top, &dim_ids, &mut c);
    for rule in &rules {
        if let Some(d) = rule.dimension
            && let Some(dim) = dimensions.get(d)
            && dim.predictive.is_some()
        {
            c.problem(
                &format!("rule '{}' field 'dimension'", rule.id),
                format!("dimension '{}' is predictive: its learned model gives its value, rules cannot add points to it", dim.id),
            );
        }
    }
    top.finish(
        &[
            "name",
            "version",
            "dimension",
            "score",
            "band",
            "stage",
            "rule",
        ],
        &mut c,
    );

    if !c.problems.is_empty() {
        return Err(ModelError::Invalid(c.problems));
    }
    let mut targets_by_type: rustc_hash::FxHashMap<String, Vec<Target>> = Default::default();
    for (i, rule) in rules.iter().enumerate() {
        if let RuleKind::Event { on } = &rule.kind {
            targets_by_type
                .entry(on.clone())
                .or_default()
                .push(Target::Rule(i as u32));
        }
        if let Some(t) = &rule.requalify_on {
            targets_by_type
                .entry(t.clone())
                .or_default()
                .push(Target::Requalify(i as u32));
        }
    }
    Ok(Model {
        name,
        version,
        dimensions,
        weights,
        bands,
        stages,
        rules,
        vocabulary: c.vocabulary,
        targets_by_type,
    })
}

/// Compiles a standalone condition, such as a `--where` filter, written as a
/// TOML inline table (`{ attribute = "country", equals = "US" }`). It may
/// read attributes, dimensions and the score, as stage conditions do; its
/// attribute names are interned in the returned vocabulary.
pub fn compile_condition(
    text: &str,
    dimensions: &[String],
) -> Result<(Condition, Vocabulary), ModelError> {
    let doc = format!("when = {text}");
    let root: Table = toml::from_str(&doc).map_err(|e| ModelError::Syntax {
        line: 1,
        column: e.span().map_or(1, |s| s.start.saturating_sub(6) + 1),
        message: e.message().trim().to_string(),
    })?;
    let mut c = Checker {
        problems: Vec::new(),
        vocabulary: Vocabulary::default(),
    };
    let cond = condition(
        &root["when"],
        "filter",
        "where",
        Context::Stage,
        dimensions,
        0,
        &mut c,
    );
    match cond {
        Some(cond) if c.problems.is_empty() => Ok((cond, c.vocabulary)),
        _ => Err(ModelError::Invalid(c.problems)),
    }
}

/// Reads an `id` field: a non-empty string, unique among `seen`.
fn id_field(
    s: &mut Section<'_>,
    kind: &str,
    seen: &mut HashSet<String>,
    c: &mut Checker,
) -> Option<String> {
    let place = s.place.clone();
    let Some(id) = s.string("id", c) else {
        if s.table.get("id").is_none() {
            c.problem(&place, format!("a {kind} needs an 'id'"));
        }
        return None;
    };
    let id = id.trim();
    if id.is_empty() {
        c.problem(&s.field("id"), "must not be empty");
        return None;
    }
    if !seen.insert(id.to_string()) {
        c.problem(&s.field("id"), format!("duplicate {kind} id '{id}'"));
        return None;
    }
    s.place = format!("{kind} '{id}'");
    Some(id.to_string())
}

/// Largest points, dimension bound or weight a model may hold (in points,
/// or as a weight): with every such number within it, every sum, range and
/// score stays a finite number.
pub const MAX_POINTS: f64 = 1e9;

/// Longest half-life, window or limit period, in days (100 years): its
/// nanoseconds fit a 64-bit time.
pub const MAX_DAYS: f64 = 36_500.0;

/// A number as a person reads it: very large or small ones in exponent form.
fn shown(v: f64) -> String {
    if v != 0.0 && !(1e-6..1e15).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// Checks that `v` (at `place`) is at most `max` in size; keeps it when so.
fn bounded(v: f64, max: f64, place: &str, c: &mut Checker) -> Option<f64> {
    if v.abs() > max {
        c.problem(
            place,
            format!("must be between -{max} and {max}, found {}", shown(v)),
        );
        return None;
    }
    Some(v)
}

/// A number of days above 0 and at most [`MAX_DAYS`].
fn days(v: f64, place: &str, c: &mut Checker) -> Option<f64> {
    if v <= 0.0 {
        c.problem(place, format!("must be greater than 0, found {v}"));
        return None;
    }
    if v > MAX_DAYS {
        c.problem(
            place,
            format!("must be at most {MAX_DAYS} days, found {}", shown(v)),
        );
        return None;
    }
    Some(v)
}

fn positive(s: &mut Section<'_>, key: &str, c: &mut Checker) -> Option<f64> {
    let v = s.number(key, c)?;
    days(v, &s.field(key), c)
}

fn dimensions(top: &mut Section<'_>, c: &mut Checker) -> Vec<Dimension> {
    let tables = top.tables("dimension", c);
    if tables.is_empty() && top.table.get("dimension").is_none() {
        c.problem("model", "at least one [[dimension]] is needed");
    }
    if tables.len() > MAX_SECTIONS {
        c.problem("dimension", format!("more than {MAX_SECTIONS} dimensions"));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, t) in tables.into_iter().enumerate() {
        let mut s = Section::new(t, format!("dimension #{}", i + 1));
        let id = id_field(&mut s, "dimension", &mut seen, c);
        let min = s
            .number("min", c)
            .and_then(|v| bounded(v, MAX_POINTS, &s.field("min"), c))
            .unwrap_or(0.0);
        let max = s
            .number("max", c)
            .and_then(|v| bounded(v, MAX_POINTS, &s.field("max"), c))
            .unwrap_or(100.0);
        if min >= max {
            c.problem(
                &s.place,
                format!("min ({min}) must be less than max ({max})"),
            );
        }
        let half_life_days = positive(&mut s, "half_life_days", c);
        let window_days = positive(&mut s, "window_days", c);
        let predictive = match s.string("kind", c) {
            None | Some("points") => None,
            Some("predictive") => {
                if half_life_days.is_some() || window_days.is_some() {
                    c.problem(
                        &s.place,
                        "a predictive dimension has no half_life_days or window_days (its learned model gives its value)",
                    );
                }
                match s.string("model", c) {
                    Some(file) if !file.trim().is_empty() => Some(crate::predict::Predictive {
                        file: file.to_string(),
                        predictor: None,
                        inputs: Vec::new(),
                    }),
                    _ => {
                        c.problem(
                            &s.field("model"),
                            "a predictive dimension needs model = \"FILE\" (a model written by `leadscore train`)",
                        );
                        None
                    }
                }
            }
            Some(other) => {
                c.problem(
                    &s.field("kind"),
                    format!(
                        "unknown kind '{other}'; use \"points\" (the default) or \"predictive\""
                    ),
                );
                None
            }
        };
        if predictive.is_none() && s.table.get("model").is_some() {
            c.problem(
                &s.field("model"),
                "only a kind = \"predictive\" dimension takes a model file",
            );
        }
        s.finish(
            &[
                "id",
                "min",
                "max",
                "half_life_days",
                "window_days",
                "kind",
                "model",
            ],
            c,
        );
        out.push(Dimension {
            id: id.unwrap_or_default(),
            min,
            max,
            half_life_days,
            window_days,
            predictive,
        });
    }
    out
}

fn weights(top: &mut Section<'_>, dims: &[String], c: &mut Checker) -> Vec<f64> {
    let mut weights = vec![1.0; dims.len()];
    let Some(score) = top.get("score") else {
        return weights;
    };
    let Value::Table(score) = score else {
        c.problem(
            "score",
            format!("must be a table, found {}", score.type_str()),
        );
        return weights;
    };
    let mut s = Section::new(score, "score".into());
    match s.get("weights") {
        None => {}
        Some(Value::Table(w)) => {
            let mut named = vec![false; dims.len()];
            for (key, v) in w {
                let place = format!("score field 'weights.{key}'");
                let Some(i) = dims.iter().position(|d| d == key) else {
                    c.problem(&place, format!("unknown dimension '{key}'"));
                    continue;
                };
                named[i] = true;
                if let Some(x) = number_value(v, &place, c) {
                    if x < 0.0 {
                        c.problem(&place, format!("weight must not be negative, found {x}"));
                    }
                    weights[i] = bounded(x, MAX_POINTS, &place, c).unwrap_or(1.0);
                }
            }
            for (i, d) in dims.iter().enumerate() {
                if !named[i] && !d.is_empty() {
                    c.problem(
                        "score field 'weights'",
                        format!("dimension '{d}' has no weight (name every dimension)"),
                    );
                }
            }
            let sum: f64 = weights.iter().sum();
            if sum <= 0.0 {
                c.problem(
                    "score field 'weights'",
                    format!("weights must sum to more than 0, found {sum}"),
                );
            }
        }
        Some(other) => c.problem(
            "score field 'weights'",
            format!("must be a table, found {}", other.type_str()),
        ),
    }
    s.finish(&["weights"], c);
    weights
}

fn bands(top: &mut Section<'_>, c: &mut Checker) -> Vec<Band> {
    let tables = top.tables("band", c);
    if tables.len() > MAX_SECTIONS {
        c.problem("band", format!("more than {MAX_SECTIONS} bands"));
    }
    let mut seen = HashSet::new();
    let mut out: Vec<Band> = Vec::new();
    for (i, t) in tables.into_iter().enumerate() {
        let mut s = Section::new(t, format!("band #{}", i + 1));
        let id = id_field(&mut s, "band", &mut seen, c);
        if id.as_deref() == Some("disqualified") {
            c.problem(
                &s.field("id"),
                "'disqualified' is reserved for disqualified contacts",
            );
        }
        let min_score = s.number("min_score", c);
        if min_score.is_none() && t.get("min_score").is_none() {
            c.problem(&s.place, "a band needs 'min_score'");
        }
        if let (Some(m), Some(prev)) = (min_score, out.last())
            && m >= prev.min_score
        {
            c.problem(
                &s.field("min_score"),
                format!(
                    "bands must be listed from the highest min_score down: {m} follows band '{}' with {}",
                    prev.id, prev.min_score
                ),
            );
        }
        s.finish(&["id", "min_score"], c);
        if let Some(m) = min_score {
            out.push(Band {
                id: id.unwrap_or_default(),
                min_score: m,
            });
        }
    }
    out
}

fn stages(top: &mut Section<'_>, dims: &[String], c: &mut Checker) -> Vec<Stage> {
    let tables = top.tables("stage", c);
    if tables.len() > MAX_SECTIONS {
        c.problem("stage", format!("more than {MAX_SECTIONS} stages"));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, t) in tables.into_iter().enumerate() {
        let mut s = Section::new(t, format!("stage #{}", i + 1));
        let id = id_field(&mut s, "stage", &mut seen, c);
        let when = s
            .get("when")
            .map(|v| condition(v, &s.place, "when", Context::Stage, dims, 0, c));
        s.finish(&["id", "when"], c);
        out.push(Stage {
            id: id.unwrap_or_default(),
            when: when.flatten().unwrap_or(Condition::All(Vec::new())),
        });
    }
    out
}

fn rules(top: &mut Section<'_>, dims: &[String], c: &mut Checker) -> Vec<Rule> {
    let tables = top.tables("rule", c);
    if tables.len() > MAX_RULES {
        c.problem("rule", format!("more than {MAX_RULES} rules"));
        return Vec::new();
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, t) in tables.into_iter().enumerate() {
        let mut s = Section::new(t, format!("rule #{}", i + 1));
        let id = id_field(&mut s, "rule", &mut seen, c);
        let disqualify = s.boolean("disqualify", c).unwrap_or(false);
        let kind = match s.string("on", c) {
            None => RuleKind::Attribute,
            Some(on) if on.trim().is_empty() => {
                c.problem(
                    &s.field("on"),
                    "must name an event type, found an empty string",
                );
                RuleKind::Event { on: String::new() }
            }
            Some(on) => RuleKind::Event { on: on.to_string() },
        };
        let is_event = matches!(kind, RuleKind::Event { .. });
        let dimension = match s.string("dimension", c) {
            None => {
                if !disqualify && t.get("dimension").is_none() {
                    c.problem(
                        &s.place,
                        "a rule needs a 'dimension' (or disqualify = true)",
                    );
                }
                None
            }
            Some(d) => {
                let found = dims.iter().position(|x| x == d);
                if found.is_none() {
                    c.problem(
                        &s.field("dimension"),
                        format!("unknown dimension '{d}'; known: {}", dims.join(", ")),
                    );
                }
                found
            }
        };
        let points = match s
            .number("points", c)
            .and_then(|p| bounded(p, MAX_POINTS, &s.field("points"), c))
        {
            Some(p) if disqualify => {
                c.problem(
                    &s.field("points"),
                    format!("a disqualifying rule carries no points (found {p})"),
                );
                0.0
            }
            Some(p) => p,
            None => {
                if !disqualify && t.get("points").is_none() {
                    c.problem(&s.place, "a rule needs 'points' (or disqualify = true)");
                }
                0.0
            }
        };
        let ctx = if is_event {
            Context::EventRule
        } else {
            Context::AttributeRule
        };
        let when = s
            .get("when")
            .and_then(|v| condition(v, &s.place, "when", ctx, dims, 0, c));
        let when_text = s.get("when").map(Value::to_string);
        let limit = s.get("limit").and_then(|v| {
            if !is_event {
                c.problem(
                    &s.field("limit"),
                    "limits apply to event rules only (add 'on')",
                );
                return None;
            }
            limit(v, &s.place, c)
        });
        let requalify_on = s.string("requalify_on", c).and_then(|r| {
            let place = s.field("requalify_on");
            if r.trim().is_empty() {
                c.problem(&place, "must name an event type, found an empty string");
                None
            } else if !disqualify || !is_event {
                c.problem(
                    &place,
                    "only a disqualifying event rule can be lifted by an event",
                );
                None
            } else {
                Some(r.to_string())
            }
        });
        s.finish(
            &[
                "id",
                "dimension",
                "points",
                "on",
                "when",
                "limit",
                "disqualify",
                "requalify_on",
            ],
            c,
        );
        out.push(Rule {
            id: id.unwrap_or_default(),
            kind,
            dimension,
            points,
            when,
            when_text,
            limit,
            disqualify,
            requalify_on,
        });
    }
    out
}

fn limit(v: &Value, owner: &str, c: &mut Checker) -> Option<Limit> {
    let place = &format!("{owner} field 'limit'");
    let at = |k: &str| format!("{owner} field 'limit.{k}'");
    let Value::Table(t) = v else {
        c.problem(
            place,
            format!(
                "must be a table like {{ count = 3, per_days = 30 }}, found {}",
                v.type_str()
            ),
        );
        return None;
    };
    let mut s = Section::new(t, place.to_string());
    let count = match s.get("count") {
        Some(Value::Integer(n)) if *n >= 1 && *n <= u32::MAX as i64 => Some(*n as u32),
        Some(Value::Integer(n)) => {
            c.problem(&at("count"), format!("must be at least 1, found {n}"));
            None
        }
        Some(other) => {
            c.problem(
                &at("count"),
                format!("must be a whole number, found {}", other.type_str()),
            );
            None
        }
        None => {
            c.problem(place, "a limit needs 'count'");
            None
        }
    };
    let per_days = s.get("per_days").and_then(|v| {
        let p = at("per_days");
        let d = number_value(v, &p, c)?;
        days(d, &p, c)
    });
    s.finish(&["count", "per_days"], c);
    Some(Limit {
        count: count?,
        per_days,
        per_nanos: per_days.map(days_to_nanos),
    })
}

const SUBJECTS: [&str; 4] = ["attribute", "property", "dimension", "score"];
const OPERATORS: [&str; 12] = [
    "equals",
    "not_equals",
    "in",
    "contains",
    "starts_with",
    "ends_with",
    "matches",
    "gt",
    "gte",
    "lt",
    "lte",
    "exists",
];

fn condition(
    v: &Value,
    owner: &str,
    path: &str,
    ctx: Context,
    dims: &[String],
    depth: usize,
    c: &mut Checker,
) -> Option<Condition> {
    let place = &format!("{owner} field '{path}'");
    if depth > MAX_CONDITION_DEPTH {
        c.problem(
            place,
            format!("conditions nest deeper than {MAX_CONDITION_DEPTH} levels"),
        );
        return None;
    }
    let Value::Table(t) = v else {
        c.problem(
            place,
            format!("a condition must be a table, found {}", v.type_str()),
        );
        return None;
    };
    for comb in ["all", "any", "not"] {
        let Some(inner) = t.get(comb) else { continue };
        if t.len() > 1 {
            c.problem(
                place,
                format!("'{comb}' must stand alone in its table; put the other keys inside it"),
            );
            return None;
        }
        let inner_path = format!("{path}.{comb}");
        let inner_place = format!("{owner} field '{inner_path}'");
        return match (comb, inner) {
            ("not", _) => condition(inner, owner, &inner_path, ctx, dims, depth + 1, c)
                .map(|x| Condition::Not(Box::new(x))),
            (_, Value::Array(items)) => {
                let mut parts = Vec::with_capacity(items.len());
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{inner_path}[{i}]");
                    match condition(item, owner, &p, ctx, dims, depth + 1, c) {
                        Some(x) => parts.push(x),
                        None => ok = false,
                    }
                }
                ok.then(|| {
                    if comb == "all" {
                        Condition::All(parts)
                    } else {
                        Condition::Any(parts)
                    }
                })
            }
            (_, other) => {
                c.problem(
                    &inner_place,
                    format!("must be an array of conditions, found {}", other.type_str()),
                );
                None
            }
        };
    }

    let named: Vec<&str> = SUBJECTS
        .iter()
        .copied()
        .filter(|k| t.contains_key(*k))
        .collect();
    let subject = match named.as_slice() {
        [] => {
            c.problem(
                place,
                "a condition needs a subject: attribute, property, dimension or score (or all / any / not)",
            );
            return None;
        }
        [one] => subject(t, one, owner, path, ctx, dims, c)?,
        many => {
            c.problem(
                place,
                format!(
                    "a condition names one subject, found {}; combine with all = [..]",
                    many.join(" and ")
                ),
            );
            return None;
        }
    };
    let numeric_only = matches!(subject, Subject::Dimension(_) | Subject::Score);
    let mut ops = Vec::new();
    let mut ok = true;
    for (key, val) in t {
        if SUBJECTS.contains(&key.as_str()) {
            continue;
        }
        let p = format!("{owner} field '{path}.{key}'");
        if !OPERATORS.contains(&key.as_str()) {
            let mut allowed: Vec<&str> = OPERATORS.to_vec();
            allowed.extend(["all", "any", "not"]);
            let hint = suggest(key, &allowed)
                .map(|s| format!(" (did you mean '{s}'?)"))
                .unwrap_or_default();
            c.problem(&p, format!("unknown operator '{key}'{hint}"));
            ok = false;
            continue;
        }
        if numeric_only && !matches!(key.as_str(), "gt" | "gte" | "lt" | "lte") {
            c.problem(
                &p,
                "a dimension or the score takes only gt, gte, lt and lte".to_string(),
            );
            ok = false;
            continue;
        }
        match operator(key, val, &p, c) {
            Some(op) => ops.push(op),
            None => ok = false,
        }
    }
    if ops.is_empty() && ok {
        c.problem(
            place,
            format!("a condition needs an operator: {}", OPERATORS.join(", ")),
        );
        return None;
    }
    ok.then_some(Condition::Leaf { subject, ops })
}

fn subject(
    t: &Table,
    key: &str,
    owner: &str,
    path: &str,
    ctx: Context,
    dims: &[String],
    c: &mut Checker,
) -> Option<Subject> {
    let p = format!("{owner} field '{path}.{key}'");
    let v = &t[key];
    let fits = match key {
        "attribute" => true,
        "property" => ctx == Context::EventRule,
        _ => ctx == Context::Stage,
    };
    if !fits {
        let why = match key {
            "property" => "event properties can be read by event rules only (rules with 'on')",
            _ => "dimensions and the score can be read by stage conditions only",
        };
        c.problem(&p, why);
        return None;
    }
    if key == "score" {
        return match v {
            Value::Boolean(true) => Some(Subject::Score),
            _ => {
                c.problem(&p, "write score = true");
                None
            }
        };
    }
    let Value::String(name) = v else {
        c.problem(&p, format!("must be a string, found {}", v.type_str()));
        return None;
    };
    if name.trim().is_empty() {
        c.problem(&p, "must not be empty");
        return None;
    }
    match key {
        "attribute" => Some(Subject::Attribute(c.vocabulary.intern_attribute(name))),
        "property" => Some(Subject::Property(c.vocabulary.intern_property(name))),
        _ => match dims.iter().position(|d| d == name) {
            Some(i) => Some(Subject::Dimension(i)),
            None => {
                c.problem(
                    &p,
                    format!("unknown dimension '{name}'; known: {}", dims.join(", ")),
                );
                None
            }
        },
    }
}

fn text_operand(v: &Value, place: &str, c: &mut Checker) -> Option<String> {
    match v {
        Value::String(s) => Some(fold_operand(s)),
        other => {
            c.problem(
                place,
                format!(
                    "must be a string, found {} (write it in quotes)",
                    other.type_str()
                ),
            );
            None
        }
    }
}

fn operator(key: &str, v: &Value, place: &str, c: &mut Checker) -> Option<Op> {
    Some(match key {
        "equals" => Op::Equals(text_operand(v, place, c)?),
        "not_equals" => Op::NotEquals(text_operand(v, place, c)?),
        "contains" => Op::Contains(text_operand(v, place, c)?),
        "starts_with" => Op::StartsWith(text_operand(v, place, c)?),
        "ends_with" => Op::EndsWith(text_operand(v, place, c)?),
        "in" => {
            let Value::Array(items) = v else {
                c.problem(
                    place,
                    format!("must be a list of strings, found {}", v.type_str()),
                );
                return None;
            };
            if items.is_empty() {
                c.problem(place, "an empty list can never match");
                return None;
            }
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(text_operand(
                    item,
                    &format!("{}[{i}]'", place.trim_end_matches('\'')),
                    c,
                )?);
            }
            Op::In(out)
        }
        "matches" => {
            let Value::String(pattern) = v else {
                c.problem(
                    place,
                    format!(
                        "must be a regular expression string, found {}",
                        v.type_str()
                    ),
                );
                return None;
            };
            match RegexBuilder::new(pattern)
                .size_limit(MAX_REGEX_BYTES)
                .build()
            {
                Ok(re) => Op::Matches(re),
                Err(e) => {
                    let msg = e.to_string();
                    let msg = msg.lines().last().unwrap_or("").trim().to_string();
                    c.problem(place, format!("bad regular expression {pattern:?}: {msg}"));
                    return None;
                }
            }
        }
        "gt" => Op::Gt(number_value(v, place, c)?),
        "gte" => Op::Gte(number_value(v, place, c)?),
        "lt" => Op::Lt(number_value(v, place, c)?),
        "lte" => Op::Lte(number_value(v, place, c)?),
        "exists" => match v {
            Value::Boolean(b) => Op::Exists(*b),
            other => {
                c.problem(
                    place,
                    format!("must be true or false, found {}", other.type_str()),
                );
                return None;
            }
        },
        _ => unreachable!("operator list checked by the caller"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        match compile(text) {
            Ok(_) => Vec::new(),
            Err(ModelError::Invalid(p)) => p.iter().map(ToString::to_string).collect(),
            Err(e) => vec![e.to_string()],
        }
    }

    const BASE: &str = r#"
[[dimension]]
id = "fit"
[[dimension]]
id = "engagement"
half_life_days = 30
"#;

    fn with(extra: &str) -> Vec<String> {
        problems(&format!("{BASE}\n{extra}"))
    }

    fn assert_problem(extra: &str, needle: &str) {
        let p = with(extra);
        assert!(
            p.iter().any(|m| m.contains(needle)),
            "expected a problem containing {needle:?}, got {p:#?}"
        );
    }

    /// A model whose numbers could make a score overflow is refused, each
    /// number at its place (the hostile tester's `1e308`).
    #[test]
    fn numbers_that_could_run_away_are_refused() {
        assert_problem(
            "[[dimension]]\nid = \"x\"\nmin = -1e308\nmax = 1e308",
            "dimension 'x' field 'min': must be between -1000000000 and 1000000000, found -1e308",
        );
        assert_problem(
            "[[dimension]]\nid = \"x\"\nmax = 1e10",
            "dimension 'x' field 'max': must be between",
        );
        assert_problem(
            "[[rule]]\nid = \"r\"\ndimension = \"fit\"\npoints = 1e308",
            "rule 'r' field 'points': must be between -1000000000 and 1000000000",
        );
        assert_problem(
            "[[dimension]]\nid = \"x\"\nhalf_life_days = 1e6",
            "dimension 'x' field 'half_life_days': must be at most 36500 days",
        );
        assert_problem(
            "[[rule]]\nid = \"r\"\ndimension = \"fit\"\npoints = 1\non = \"x\"\nlimit = { count = 1, per_days = 1e300 }",
            "rule 'r' field 'limit.per_days': must be at most 36500 days",
        );
        assert_problem(
            "[score]\nweights = { fit = 1e300, engagement = 1 }",
            "score field 'weights.fit': must be between",
        );
        // At the bounds, a model is valid.
        let edge = with(
            "[[dimension]]\nid = \"x\"\nmin = -1e9\nmax = 1e9\nhalf_life_days = 36500\n[[rule]]\nid = \"r\"\ndimension = \"x\"\npoints = -1e9\non = \"e\"\nlimit = { count = 1, per_days = 36500 }",
        );
        assert!(edge.is_empty(), "{edge:?}");
    }

    #[test]
    fn a_minimal_model_is_valid() {
        let m = compile(BASE).unwrap();
        assert_eq!(m.weights, vec![1.0, 1.0]);
        assert_eq!(m.dimensions[1].half_life_days, Some(30.0));
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        match compile("name = \"x\"\n[[dimension]\nid = 1") {
            Err(ModelError::Syntax { line, .. }) => assert_eq!(line, 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_listed_problem_is_reported_with_its_place() {
        assert_problem(
            "[[rule]]\nid = \"r\"\ndimension = \"fti\"\npoints = 1",
            "rule 'r' field 'dimension': unknown dimension 'fti'",
        );
        assert_problem(
            "[[rule]]\nid = \"r\"\ndimension = \"fit\"\npoints = 1\n[[rule]]\nid = \"r\"\ndimension = \"fit\"\npoints = 1",
            "duplicate rule id 'r'",
        );
        assert_problem(
            "[[rule]]\nid = \"r\"\ndimension = \"fit\"\npoints = 1\non = \"\"",
            "rule 'r' field 'on': must name an event type",
        );
        assert_problem(
            "[[rule]]\nid = \"r\"\ndimension = \"fit\"\npoints = 1\nwhen = { attribute = \"t\", matches = \"(\" }",
            "rule 'r' field 'when.matches': bad regular expression",
        );
        assert_problem(
            "[[dimension]]\nid = \"x\"\nmin = 5\nmax = 5",
            "dimension 'x': min (5) must be less than max (5)",
        );
        assert_problem(
            "[[dimension]]\nid = \"x\"\nhalf_life_days = 0",
            "dimension 'x' field 'half_life_days': must be greater than 0",
        );
        assert_problem(
            "[[dimension]]\nid = \"x\"\nwindow_days = -1",
            "dimension 'x' field 'window_days'",
        );
        assert_problem(
            "[[rule]]\nid = \"r\"\ndimension = \"fit\"\npoints = 1\non = \"x\"\nlimit = { count = 1, per_days = 0 }",
            "rule 'r' field 'limit.per_days': must be greater than 0",
        );
        assert_problem(
            "[[rule]]\nid = \"r\"\ndimension = \"fit\"\npoints = 1\non = \"x\"\nlimit = { count = 0 }",
            "rule 'r' field 'limit.count': must be at least 1",
        );
        assert_problem(
            "[[rule]]\nid = \"r\"\ndimension = \"fit\"\npoints = 1\nwhen = { property = \"url\", contains = \"x\" }",
            "event properties can be read by event rules only",
        );
        assert_problem(
            "[[rule]]\nid = \"r\"\ndimension = \"fit\"\npoints = 1\nwhen = { score = true, gte = 1 }",
            "stage conditions only",
        );
        assert_problem(
            "[[rule]]\nid = \"r\"\ndimension = \"fit\"\npoints = 1\nwhen = { attribute = \"t\", equal = \"x\" }",
            "unknown operator 'equal' (did you mean 'equals'?)",
        );
        assert_problem(
            "[[rule]]\nid = \"r\"\ndimension = \"fit\"\npoints = 1\npoint = 2",
            "rule 'r': unknown key 'point' (did you mean 'points'?)",
        );
        assert_problem(
            "[score]\nweights = { fit = 1, engagment = 1 }",
            "unknown dimension 'engagment'",
        );
        assert_problem(
            "[score]\nweights = { fit = 1 }",
            "dimension 'engagement' has no weight",
        );
        assert_problem(
            "[score]\nweights = { fit = 0, engagement = 0 }",
            "must sum to more than 0",
        );
        assert_problem(
            "[score]\nweights = { fit = -1, engagement = 3 }",
            "must not be negative",
        );
        assert_problem(
            "[[rule]]\nid = \"u\"\non = \"unsubscribe\"\ndisqualify = true\npoints = 5",
            "rule 'u' field 'points': a disqualifying rule carries no points",
        );
        assert_problem(
            "[[band]]\nid = \"cold\"\nmin_score = 0\n[[band]]\nid = \"hot\"\nmin_score = 70",
            "band 'hot' field 'min_score': bands must be listed from the highest min_score down",
        );
        assert_problem(
            "[[stage]]\nid = \"s\"\nwhen = { dimension = \"nope\", gte = 1 }",
            "unknown dimension 'nope'",
        );
        let p = problems(&format!("nme = \"x\"\n{BASE}"));
        assert!(
            p.iter()
                .any(|m| m.contains("model: unknown key 'nme' (did you mean 'name'?)")),
            "{p:?}"
        );
        let p = problems(&format!("{BASE}\nnme = 1"));
        assert!(
            p.iter()
                .any(|m| m.contains("dimension 'engagement': unknown key 'nme'")),
            "{p:?}"
        );
    }

    #[test]
    fn all_problems_are_listed_at_once() {
        let p = with(
            "[[rule]]\nid = \"a\"\ndimension = \"x\"\npoints = \"1\"\n[[rule]]\nid = \"b\"\non = \"\"\ndimension = \"fit\"\npoints = 1\nlimit = { count = 0 }",
        );
        assert!(p.len() >= 4, "{p:#?}");
    }

    #[test]
    fn rules_feed_targets_by_event_type() {
        let m = compile(&format!(
            "{BASE}\n[[rule]]\nid = \"p\"\ndimension = \"engagement\"\non = \"page_view\"\npoints = 1\n[[rule]]\nid = \"u\"\non = \"unsubscribe\"\ndisqualify = true\nrequalify_on = \"resubscribe\""
        ))
        .unwrap();
        assert_eq!(m.targets("page_view"), &[Target::Rule(0)]);
        assert_eq!(m.targets("resubscribe"), &[Target::Requalify(1)]);
        assert!(m.targets("email_open").is_empty());
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let mut cond = String::from("{ attribute = \"a\", exists = true }");
        for _ in 0..40 {
            cond = format!("{{ not = {cond} }}");
        }
        let p = with(&format!(
            "[[rule]]\nid = \"r\"\ndimension = \"fit\"\npoints = 1\nwhen = {cond}"
        ));
        assert!(!p.is_empty());
    }
}
