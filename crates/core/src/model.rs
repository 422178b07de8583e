//! The scoring model: what a model file means once validated.
//!
//! A model is read in two stages (see [`crate::validate`]): the TOML text is
//! parsed into a generic table, then every section is checked and compiled
//! into the types below, collecting *all* problems with their place before
//! anything is scored. A [`Model`] value is therefore always evaluable.

use rustc_hash::FxHashMap;

use crate::condition::{Condition, Vocabulary};
use crate::timestamp::{Timestamp, days_to_nanos};

/// A validated, compiled scoring model.
#[derive(Clone, Debug)]
pub struct Model {
    /// The model's name, from `name =` (default "model").
    pub name: String,
    /// The author's version number, from `version =` (default 1).
    pub version: i64,
    /// Score axes, in file order (which is also output order).
    pub dimensions: Vec<Dimension>,
    /// Weight of each dimension in the score, indexed like `dimensions`.
    pub weights: Vec<f64>,
    /// Bands, in file order; the first whose `min_score` the score reaches wins.
    pub bands: Vec<Band>,
    /// Lifecycle stages, in file order; the first whose condition holds wins.
    pub stages: Vec<Stage>,
    /// Rules, in file order.
    pub rules: Vec<Rule>,
    /// The attribute and property names the model reads.
    pub vocabulary: Vocabulary,
    /// For each event type, the rules (and requalifications) it can feed.
    /// (A fast hash: this is looked up once per event read.)
    pub(crate) targets_by_type: FxHashMap<String, Vec<Target>>,
}

/// One score axis, such as profile `fit` or behavioural `engagement`.
#[derive(Clone, Debug)]
pub struct Dimension {
    /// Identifier used in rules, weights, stage conditions and output.
    pub id: String,
    /// Lower clamp of the dimension value, in points.
    pub min: f64,
    /// Upper clamp of the dimension value, in points.
    pub max: f64,
    /// When set, an event's points halve every this many days.
    pub half_life_days: Option<f64>,
    /// When set, events older than as-of minus this many days do not count.
    pub window_days: Option<f64>,
    /// For a predictive dimension (`kind = "predictive"`), its learned
    /// model; rules do not add points to such a dimension.
    pub predictive: Option<crate::predict::Predictive>,
}

/// A score band such as hot / warm / cold.
#[derive(Clone, Debug)]
pub struct Band {
    /// Band name printed in output.
    pub id: String,
    /// Lowest score (0-100) that falls in this band.
    pub min_score: f64,
}

/// A lifecycle stage such as MQL or SQL.
#[derive(Clone, Debug)]
pub struct Stage {
    /// Stage name printed in output.
    pub id: String,
    /// When the contact is in this stage (may read dimensions, score and
    /// attributes).
    pub when: Condition,
}

/// What a rule reacts to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleKind {
    /// Matches on the contact's current attributes; counts once.
    Attribute,
    /// Matches events of this type (`on = "page_view"`).
    Event {
        /// The event type, compared exactly.
        on: String,
    },
}

/// How many events of one rule may count.
#[derive(Clone, Debug, PartialEq)]
pub struct Limit {
    /// At most this many events count (within `per_days` when set).
    pub count: u32,
    /// Length of the sliding window, in days, if any.
    pub per_days: Option<f64>,
    /// The same window in nanoseconds.
    pub per_nanos: Option<i64>,
}

/// One scoring rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Unique rule identifier, used in explanations.
    pub id: String,
    /// Attribute or event rule.
    pub kind: RuleKind,
    /// Index of the dimension the points go to (optional for disqualifying
    /// rules, where it only selects a window).
    pub dimension: Option<usize>,
    /// Points added (or taken away when negative) per match or counted event.
    pub points: f64,
    /// Condition; `None` always matches.
    pub when: Option<Condition>,
    /// The condition as written in the model file (TOML, keys sorted),
    /// with names, not numbers: two rules with the same text match the
    /// same events and contacts whatever else their models read.
    pub when_text: Option<String>,
    /// Per-rule cap on counted events.
    pub limit: Option<Limit>,
    /// A match disqualifies the contact (score 0, band "disqualified").
    pub disqualify: bool,
    /// Event type whose later occurrence lifts this rule's disqualification.
    pub requalify_on: Option<String>,
}

/// What an event of a given type feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// The event may be eligible for this rule (index in `Model::rules`).
    Rule(u32),
    /// The event may lift the disqualification of this rule.
    Requalify(u32),
}

impl Model {
    /// Parses and validates a model file's text. See [`crate::validate`].
    pub fn from_toml(text: &str) -> Result<Model, crate::validate::ModelError> {
        crate::validate::compile(text)
    }

    /// What an event of this type can feed, in rule order; empty when the
    /// model ignores the type.
    pub fn targets(&self, event_type: &str) -> &[Target] {
        self.targets_by_type
            .get(event_type)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The event types some rule (or requalification) reads, sorted by
    /// name: events of other types never change a score.
    pub fn event_types(&self) -> Vec<&str> {
        let mut types: Vec<&str> = self.targets_by_type.keys().map(String::as_str).collect();
        types.sort_unstable();
        types
    }

    /// Whether any rule reads events of this type.
    pub fn uses_event_type(&self, event_type: &str) -> bool {
        self.targets_by_type.contains_key(event_type)
    }

    /// Whether an event at `at` falls inside the time a rule may see at
    /// `as_of`: not after as-of, and inside the rule dimension's window.
    pub fn in_time(&self, rule: &Rule, at: Timestamp, as_of: Timestamp) -> TimeFit {
        TimeFit::of(at, as_of, self.window_start(rule, as_of))
    }

    /// The instant (nanoseconds) at or before which an event of `rule` is
    /// outside its dimension's window at `as_of`; `None`: no window. The
    /// same for all of a rule's events, so evaluation computes it once.
    pub fn window_start(&self, rule: &Rule, as_of: Timestamp) -> Option<i64> {
        rule.dimension
            .and_then(|d| self.dimensions[d].window_days)
            .map(|w| as_of.0.saturating_sub(days_to_nanos(w)))
    }

    /// Attaches the loaded learned model of predictive dimension `dimension`
    /// (an index into `dimensions`); the attributes it reads join the
    /// model's vocabulary, so contacts loaded afterwards keep them.
    /// Does nothing for a dimension that is not predictive.
    pub fn attach_predictor(
        &mut self,
        dimension: usize,
        predictor: std::sync::Arc<dyn crate::predict::Predict>,
    ) {
        let inputs = predictor
            .columns()
            .iter()
            .map(|c| self.vocabulary.intern_attribute(c))
            .collect();
        if let Some(p) = self
            .dimensions
            .get_mut(dimension)
            .and_then(|d| d.predictive.as_mut())
        {
            p.inputs = inputs;
            p.predictor = Some(predictor);
        }
    }

    /// The predictive dimensions still without a loaded model, as
    /// (dimension id, model file).
    pub fn unattached_predictors(&self) -> Vec<(String, String)> {
        self.dimensions
            .iter()
            .filter_map(|d| {
                let p = d.predictive.as_ref()?;
                p.predictor
                    .is_none()
                    .then(|| (d.id.clone(), p.file.clone()))
            })
            .collect()
    }

    /// True if some dimension is predictive.
    pub fn has_predictive(&self) -> bool {
        self.dimensions.iter().any(|d| d.predictive.is_some())
    }

    /// Index of a dimension by id.
    pub fn dimension_index(&self, id: &str) -> Option<usize> {
        self.dimensions.iter().position(|d| d.id == id)
    }
}

/// Where an event's time stands relative to what a rule may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeFit {
    /// Counts (timing-wise).
    Inside,
    /// Happens after the as-of time: not yet.
    AfterAsOf,
    /// Older than the dimension's `window_days`.
    OutsideWindow,
}

impl TimeFit {
    /// Where an event at `at` stands at `as_of`, given its rule's
    /// [`Model::window_start`] at `as_of`.
    pub fn of(at: Timestamp, as_of: Timestamp, window_start: Option<i64>) -> TimeFit {
        if at > as_of {
            TimeFit::AfterAsOf
        } else if window_start.is_some_and(|start| at.0 <= start) {
            TimeFit::OutsideWindow
        } else {
            TimeFit::Inside
        }
    }
}
