//! Explanations: why a lead has its score, for a salesperson (text) and for
//! programs (JSON).
//!
//! An [`Explanation`] is built from the [`Trace`] that
//! [`crate::scoring::evaluate`] records, so it can never disagree with the
//! score itself.

use std::fmt::{self, Write as _};

use serde::Serialize;

use crate::condition::{Condition, Op, Subject};
use crate::model::{Model, RuleKind};
use crate::scoring::{Fate, ScoreCard, Trace};
use crate::timestamp::Timestamp;

/// An event's identity in an explanation: its id and type. Ordered by id,
/// which is the tie-break the spec uses for events with equal timestamps.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventKey {
    /// The event id.
    pub id: String,
    /// The event type.
    pub event_type: String,
}

/// Why one contact has its score.
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    /// Contact id.
    pub id: String,
    /// The as-of time the score is computed for (RFC 3339, UTC).
    pub as_of: String,
    /// Model name and author's version.
    pub model: ModelRef,
    /// Weighted score, 0-100.
    pub score: f64,
    /// Band name, `"disqualified"`, or null.
    pub band: Option<String>,
    /// Stage name or null.
    pub stage: Option<String>,
    /// Whether the contact is disqualified.
    pub disqualified: bool,
    /// Rule ids that disqualify the contact.
    pub disqualified_by: Vec<String>,
    /// Per dimension: raw sum, clamp, weight and share of the score.
    pub dimensions: Vec<DimensionLine>,
    /// Rules that matched, or that saw matching events, in model order.
    pub rules: Vec<RuleLine>,
    /// How the band was decided.
    pub band_reason: String,
    /// How the stage was decided.
    pub stage_reason: String,
}

/// The model an explanation used.
#[derive(Clone, Debug, Serialize)]
pub struct ModelRef {
    /// `name` from the model file.
    pub name: String,
    /// `version` from the model file.
    pub version: i64,
}

/// One dimension's arithmetic.
#[derive(Clone, Debug, Serialize)]
pub struct DimensionLine {
    /// Dimension id.
    pub id: String,
    /// Sum of contributions before clamping (points).
    pub raw: f64,
    /// Lower clamp (points).
    pub min: f64,
    /// Upper clamp (points).
    pub max: f64,
    /// Value after clamping (points).
    pub value: f64,
    /// Whether clamping changed the value.
    pub clamped: bool,
    /// Weight in the score.
    pub weight: f64,
    /// Score points this dimension brings: 100 * w * (v - min) / (max - min) / sum(w).
    pub score_share: f64,
    /// For a predictive dimension: the learned model and its reasons.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted: Option<PredictedLine>,
}

/// A predictive dimension's value and the attributes behind it.
#[derive(Clone, Debug, Serialize)]
pub struct PredictedLine {
    /// The model file.
    pub model_file: String,
    /// Calibrated probability of converting (value / 100).
    pub probability: f64,
    /// Attributes that raise the chance most, strongest first (log-odds).
    pub top_positive: Vec<FactorLine>,
    /// Attributes that lower it most, strongest first (log-odds).
    pub top_negative: Vec<FactorLine>,
}

/// One attribute's part in a prediction.
#[derive(Clone, Debug, Serialize)]
pub struct FactorLine {
    /// The attribute.
    pub attribute: String,
    /// The contact's value, or null.
    pub value: Option<String>,
    /// Contribution to the log-odds.
    pub contribution: f64,
}

/// How many factors each side of a prediction shows.
const TOP_FACTORS: usize = 5;

fn predicted_line(
    d: &crate::model::Dimension,
    raw: f64,
    factors: Option<&Vec<crate::predict::PredictFactor>>,
) -> Option<PredictedLine> {
    let p = d.predictive.as_ref()?;
    let factors = factors.map(Vec::as_slice).unwrap_or_default();
    let line = |f: &crate::predict::PredictFactor| FactorLine {
        attribute: f.column.clone(),
        value: f.value.clone(),
        contribution: f.contribution,
    };
    let mut positive: Vec<&crate::predict::PredictFactor> =
        factors.iter().filter(|f| f.contribution > 0.0).collect();
    let mut negative: Vec<&crate::predict::PredictFactor> =
        factors.iter().filter(|f| f.contribution < 0.0).collect();
    positive.sort_by(|a, b| b.contribution.total_cmp(&a.contribution));
    negative.sort_by(|a, b| a.contribution.total_cmp(&b.contribution));
    Some(PredictedLine {
        model_file: p.file.clone(),
        probability: raw / 100.0,
        top_positive: positive.into_iter().take(TOP_FACTORS).map(line).collect(),
        top_negative: negative.into_iter().take(TOP_FACTORS).map(line).collect(),
    })
}

/// One rule's part.
#[derive(Clone, Debug, Serialize)]
pub struct RuleLine {
    /// Rule id.
    pub id: String,
    /// `"attribute"` or `"event"`.
    pub kind: &'static str,
    /// Event type for event rules.
    pub on: Option<String>,
    /// Dimension the points go to.
    pub dimension: Option<String>,
    /// Points per match or per counted event (before decay).
    pub points_each: f64,
    /// Points added in all (after decay, before clamping).
    pub total: f64,
    /// Whether this rule disqualifies.
    pub disqualify: bool,
    /// The rule's condition, as text.
    pub condition: Option<String>,
    /// Matched events and what became of each.
    pub events: Vec<EventLine>,
}

/// One matched event's fate.
#[derive(Clone, Debug, Serialize)]
pub struct EventLine {
    /// Event id.
    pub id: String,
    /// Event type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When it happened (RFC 3339, UTC).
    pub timestamp: String,
    /// Age at as-of, in days.
    pub age_days: f64,
    /// `counted`, `limit_reached`, `after_as_of`, `outside_window`,
    /// `disqualifies`, `disqualifies_lifted`, `requalifies`, `requalifies_nothing`.
    pub fate: &'static str,
    /// Points after decay (0 unless counted).
    pub contribution: f64,
}

fn fate_name(f: Fate) -> &'static str {
    match f {
        Fate::Counted => "counted",
        Fate::LimitReached => "limit_reached",
        Fate::AfterAsOf => "after_as_of",
        Fate::OutsideWindow => "outside_window",
        Fate::Disqualifies => "disqualifies",
        Fate::DisqualifiesLifted => "disqualifies_lifted",
        Fate::Requalifies => "requalifies",
        Fate::RequalifiesNothing => "requalifies_nothing",
    }
}

impl Explanation {
    /// Builds the explanation of `card`, using the trace recorded while
    /// computing it.
    pub fn new(
        model: &Model,
        contact_id: &str,
        as_of: Timestamp,
        card: &ScoreCard,
        trace: &Trace<EventKey>,
    ) -> Explanation {
        let total_weight: f64 = model.weights.iter().sum();
        let dimensions = model
            .dimensions
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let value = card.dimensions[i];
                let raw = trace.raw.get(i).copied().unwrap_or(value);
                DimensionLine {
                    id: d.id.clone(),
                    raw,
                    min: d.min,
                    max: d.max,
                    value,
                    clamped: raw != value,
                    weight: model.weights[i],
                    score_share: 100.0 * model.weights[i] * (value - d.min)
                        / (d.max - d.min)
                        / total_weight,
                    predicted: predicted_line(d, raw, trace.factors.get(i)),
                }
            })
            .collect();
        let mut rules = Vec::new();
        let mut disqualified_by = Vec::new();
        for (rule, rt) in model.rules.iter().zip(&trace.rules) {
            let has_events = !rt.events.is_empty();
            if rt.matched != Some(true) && !has_events {
                continue;
            }
            let disqualifying =
                rt.matched == Some(true) || rt.events.iter().any(|e| e.fate == Fate::Disqualifies);
            if rule.disqualify && disqualifying {
                disqualified_by.push(rule.id.clone());
            }
            rules.push(RuleLine {
                id: rule.id.clone(),
                kind: match rule.kind {
                    RuleKind::Attribute => "attribute",
                    RuleKind::Event { .. } => "event",
                },
                on: match &rule.kind {
                    RuleKind::Event { on } => Some(on.clone()),
                    RuleKind::Attribute => None,
                },
                dimension: rule.dimension.map(|d| model.dimensions[d].id.clone()),
                points_each: rule.points,
                total: rt.points,
                disqualify: rule.disqualify,
                condition: rule.when.as_ref().map(|c| describe(c, model)),
                events: rt
                    .events
                    .iter()
                    .map(|e| EventLine {
                        id: e.key.id.clone(),
                        event_type: e.key.event_type.clone(),
                        timestamp: e.at.to_string(),
                        age_days: e.age_days,
                        fate: fate_name(e.fate),
                        contribution: e.contribution,
                    })
                    .collect(),
            });
        }
        let band_reason = band_reason(model, card);
        let stage_reason = stage_reason(model, card);
        Explanation {
            id: contact_id.to_string(),
            as_of: as_of.to_string(),
            model: ModelRef {
                name: model.name.clone(),
                version: model.version,
            },
            score: card.score,
            band: card.band_name(model).map(str::to_string),
            stage: card.stage_name(model).map(str::to_string),
            disqualified: card.disqualified,
            disqualified_by,
            dimensions,
            rules,
            band_reason,
            stage_reason,
        }
    }
}

fn num(x: f64) -> String {
    let r = (x * 100.0).round() / 100.0;
    if r == r.trunc() {
        format!("{}", r as i64)
    } else {
        format!("{r}")
    }
}

fn band_reason(model: &Model, card: &ScoreCard) -> String {
    if card.disqualified {
        return "disqualified: the score is 0 and no band applies".into();
    }
    match card.band {
        Some(b) => {
            let band = &model.bands[b];
            let mut s = format!(
                "score {} reaches '{}' (min_score {})",
                num(card.score),
                band.id,
                num(band.min_score)
            );
            if b > 0 {
                let above = &model.bands[b - 1];
                let _ = write!(
                    s,
                    "; '{}' needs {} ({} more)",
                    above.id,
                    num(above.min_score),
                    num(above.min_score - card.score)
                );
            }
            s
        }
        None if model.bands.is_empty() => "the model has no bands".into(),
        None => format!(
            "score {} is below every band (lowest: '{}' at {})",
            num(card.score),
            model.bands[model.bands.len() - 1].id,
            num(model.bands[model.bands.len() - 1].min_score)
        ),
    }
}

fn stage_reason(model: &Model, card: &ScoreCard) -> String {
    if card.disqualified {
        return "disqualified contacts have no stage".into();
    }
    let upto = card.stage.unwrap_or(model.stages.len());
    let mut parts = Vec::new();
    for s in &model.stages[..upto] {
        parts.push(format!(
            "not '{}' ({} does not hold)",
            s.id,
            describe(&s.when, model)
        ));
    }
    if let Some(i) = card.stage {
        let s = &model.stages[i];
        parts.push(format!("'{}' because {}", s.id, describe(&s.when, model)));
    } else if model.stages.is_empty() {
        parts.push("the model has no stages".into());
    } else {
        parts.push("so no stage".into());
    }
    parts.join("; ")
}

/// Renders a condition as readable text, for example
/// `job_title matches "(?i)vp" and score >= 40`.
pub fn describe(c: &Condition, model: &Model) -> String {
    match c {
        Condition::All(parts) if parts.is_empty() => "always".into(),
        Condition::Any(parts) if parts.is_empty() => "never".into(),
        Condition::All(parts) => join(parts, " and ", model),
        Condition::Any(parts) => join(parts, " or ", model),
        Condition::Not(inner) => format!("not ({})", describe(inner, model)),
        Condition::Leaf { subject, ops } => {
            let name = match subject {
                Subject::Attribute(a) => model.vocabulary.attributes[a.0 as usize].clone(),
                Subject::Property(p) => {
                    format!("event {}", model.vocabulary.properties[p.0 as usize])
                }
                Subject::Dimension(d) => model.dimensions[*d].id.clone(),
                Subject::Score => "score".into(),
            };
            ops.iter()
                .map(|op| format!("{name} {}", describe_op(op)))
                .collect::<Vec<_>>()
                .join(" and ")
        }
    }
}

fn join(parts: &[Condition], sep: &str, model: &Model) -> String {
    let inner: Vec<String> = parts
        .iter()
        .map(|p| match p {
            Condition::Leaf { ops, .. } if ops.len() == 1 => describe(p, model),
            Condition::Not(_) => describe(p, model),
            _ => format!("({})", describe(p, model)),
        })
        .collect();
    inner.join(sep)
}

fn describe_op(op: &Op) -> String {
    match op {
        Op::Equals(s) => format!("is {s:?}"),
        Op::NotEquals(s) => format!("is not {s:?}"),
        Op::In(list) => format!("is one of {list:?}"),
        Op::Contains(s) => format!("contains {s:?}"),
        Op::StartsWith(s) => format!("starts with {s:?}"),
        Op::EndsWith(s) => format!("ends with {s:?}"),
        Op::Matches(re) => format!("matches \"{}\"", re.as_str()),
        Op::Gt(x) => format!("> {}", num(*x)),
        Op::Gte(x) => format!(">= {}", num(*x)),
        Op::Lt(x) => format!("< {}", num(*x)),
        Op::Lte(x) => format!("<= {}", num(*x)),
        Op::Exists(true) => "is present".into(),
        Op::Exists(false) => "is missing".into(),
    }
}

fn signed(x: f64) -> String {
    if x >= 0.0 {
        format!("+{}", num(x))
    } else {
        num(x)
    }
}

impl fmt::Display for Explanation {
    /// The text form, written for a salesperson.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Lead {}: score {} / 100, band {}, stage {}",
            self.id,
            num(self.score),
            self.band.as_deref().unwrap_or("none"),
            self.stage.as_deref().unwrap_or("none")
        )?;
        writeln!(
            f,
            "  as of {}, model '{}' version {}",
            self.as_of, self.model.name, self.model.version
        )?;
        if self.disqualified {
            writeln!(
                f,
                "  DISQUALIFIED by rule(s): {}",
                self.disqualified_by.join(", ")
            )?;
        }
        writeln!(f)?;
        for d in &self.dimensions {
            write!(f, "{}: {} points", d.id, num(d.value))?;
            if d.clamped {
                write!(
                    f,
                    " (rules add up to {}, kept within {}..{})",
                    num(d.raw),
                    num(d.min),
                    num(d.max)
                )?;
            } else {
                write!(f, " (range {}..{})", num(d.min), num(d.max))?;
            }
            writeln!(
                f,
                ", weight {}, brings {} score points",
                num(d.weight),
                num(d.score_share)
            )?;
            if let Some(p) = &d.predicted {
                writeln!(
                    f,
                    "  predicted by {}: {}% chance of converting",
                    p.model_file,
                    num(100.0 * p.probability)
                )?;
                for (label, side) in [("raises", &p.top_positive), ("lowers", &p.top_negative)] {
                    for x in side {
                        writeln!(
                            f,
                            "    {label} it: {} = {} ({:+.3} log-odds)",
                            x.attribute,
                            x.value.as_deref().unwrap_or("(missing)"),
                            x.contribution
                        )?;
                    }
                }
            }
            for r in self
                .rules
                .iter()
                .filter(|r| r.dimension.as_deref() == Some(&d.id))
            {
                write_rule(f, r)?;
            }
        }
        let other: Vec<&RuleLine> = self
            .rules
            .iter()
            .filter(|r| r.dimension.is_none())
            .collect();
        if !other.is_empty() {
            writeln!(f, "disqualifying rules:")?;
            for r in other {
                write_rule(f, r)?;
            }
        }
        writeln!(f)?;
        writeln!(f, "Band: {}", self.band_reason)?;
        writeln!(f, "Stage: {}", self.stage_reason)?;
        Ok(())
    }
}

fn write_rule(f: &mut fmt::Formatter<'_>, r: &RuleLine) -> fmt::Result {
    let what = match (&r.on, &r.condition) {
        (Some(on), Some(c)) => format!("on {on} where {c}"),
        (Some(on), None) => format!("on {on}"),
        (None, Some(c)) => c.clone(),
        (None, None) => "always".into(),
    };
    if r.disqualify {
        writeln!(f, "  - {} (disqualifies): {}", r.id, what)?;
    } else if r.kind == "attribute" {
        writeln!(f, "  {} {}: {}", signed(r.total), r.id, what)?;
    } else {
        let counted = r.events.iter().filter(|e| e.fate == "counted").count();
        writeln!(
            f,
            "  {} {}: {} ({} points each, {} event(s) counted)",
            signed(r.total),
            r.id,
            what,
            num(r.points_each),
            counted
        )?;
    }
    for e in &r.events {
        let note = match e.fate {
            "counted" => format!("{} points", signed(e.contribution)),
            "limit_reached" => "left out: the rule's limit was already reached".into(),
            "after_as_of" => "left out: after the as-of time".into(),
            "outside_window" => "left out: older than the dimension's window".into(),
            "disqualifies" => "disqualifies".into(),
            "disqualifies_lifted" => "disqualified, later lifted".into(),
            "requalifies" => "lifts the disqualification".into(),
            _ => "lifts nothing (not later than the disqualifying event)".into(),
        };
        let age = if e.age_days < 0.0 {
            format!("{} days after as-of", num(-e.age_days))
        } else {
            format!("{} days ago", num(e.age_days))
        };
        writeln!(
            f,
            "      {} {} {} ({age}): {note}",
            e.timestamp, e.event_type, e.id
        )?;
    }
    Ok(())
}
