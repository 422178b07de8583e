//! Learned points: fit the existing rules' point values to outcomes.
//!
//! Each rule becomes one feature (1/0 for an attribute rule, the decayed
//! number of counted events for an event rule); an L2 logistic regression
//! gives each rule's effect in log-odds per match. Within a dimension the
//! effects are scaled so that a lead firing every positive rule a typical
//! number of times fills the dimension's range, then rounded to integers.
//! Disqualifying rules keep their meaning and are not fitted.

use leadscore_core::Model;
use serde::Serialize;

use crate::error::LearnError;
use crate::features::Matrix;
use crate::linear::Linear;

/// One rule's learned points.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RulePoints {
    /// The rule id.
    pub rule: String,
    /// Its dimension.
    pub dimension: String,
    /// Points in the model now.
    pub old_points: f64,
    /// Learned points (an integer).
    pub new_points: f64,
    /// Effect of one match (or one counted event) on the log-odds of
    /// converting.
    pub log_odds_per_match: f64,
    /// Leads on which the rule fired.
    pub leads_fired: usize,
    /// Why the points were kept, if they were (no evidence).
    pub kept_because: Option<String>,
}

/// The learned points of every fitted rule, and the dimension weights that
/// would keep the dimensions in the proportions the data shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LearnedPoints {
    /// One entry per fitted rule, in model order.
    pub rules: Vec<RulePoints>,
    /// Per dimension: (id, log-odds that its full range stands for).
    pub dimension_spans: Vec<(String, f64)>,
}

/// Fits point values: `values[lead][rule]` as from
/// `leadscore_batch::score::rule_values`, `labels[lead]` 1 if converted.
pub fn learn_points(model: &Model, values: &[Vec<f64>], labels: &[u8], l2: f64) -> LearnedPoints {
    let fitted: Vec<usize> = model
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.disqualify && r.dimension.is_some())
        .map(|(i, _)| i)
        .collect();
    let x = Matrix {
        rows: values.len(),
        names: fitted.iter().map(|&i| model.rules[i].id.clone()).collect(),
        columns: fitted
            .iter()
            .map(|&i| values.iter().map(|v| v[i] as f32).collect())
            .collect(),
    };
    let fit = Linear::fit(&x, labels, None, l2);
    let mut rules = Vec::new();
    let mut typical = Vec::new();
    for (k, &i) in fitted.iter().enumerate() {
        let rule = &model.rules[i];
        let column = &x.columns[k];
        let mut fired: Vec<f32> = column.iter().copied().filter(|&v| v > 0.0).collect();
        fired.sort_by(f32::total_cmp);
        let p95 = fired
            .get((fired.len() * 95 / 100).min(fired.len().saturating_sub(1)))
            .copied()
            .unwrap_or(1.0);
        typical.push(f64::from(p95).max(1.0));
        let (beta, kept) = if x.columns[k].iter().all(|&v| v == 0.0) {
            (0.0, Some("it never fired in this data".to_owned()))
        } else if fit.scales[k] == 0.0 {
            (0.0, Some("it fired on every lead alike".to_owned()))
        } else {
            (fit.weights[k] / fit.scales[k], None)
        };
        rules.push(RulePoints {
            rule: rule.id.clone(),
            dimension: rule
                .dimension
                .map(|d| model.dimensions[d].id.clone())
                .unwrap_or_default(),
            old_points: rule.points,
            new_points: rule.points,
            log_odds_per_match: beta,
            leads_fired: fired.len(),
            kept_because: kept,
        });
    }
    let mut spans = Vec::new();
    for (d, dim) in model.dimensions.iter().enumerate() {
        let members: Vec<usize> = fitted
            .iter()
            .enumerate()
            .filter(|(_, i)| model.rules[**i].dimension == Some(d))
            .map(|(k, _)| k)
            .collect();
        let capacity: f64 = members
            .iter()
            .filter(|&&k| rules[k].kept_because.is_none())
            .map(|&k| rules[k].log_odds_per_match.max(0.0) * typical[k])
            .sum();
        spans.push((dim.id.clone(), capacity));
        if capacity <= 0.0 {
            continue;
        }
        let range = dim.max - dim.min;
        let scale = range / capacity;
        for &k in &members {
            if rules[k].kept_because.is_none() {
                rules[k].new_points = (rules[k].log_odds_per_match * scale)
                    .round()
                    .clamp(-range, range);
            }
        }
    }
    LearnedPoints {
        rules,
        dimension_spans: spans,
    }
}

/// Rewrites a model file's `points = N` in each `[[rule]]` block named in
/// `points` (by rule id) and sets `version = ` to `version`, keeping every
/// other line, comment and the layout as written.
pub fn rewrite_model(text: &str, points: &[(String, f64)], version: i64) -> Result<String, String> {
    let mut out: Vec<String> = Vec::new();
    let mut in_rule = false;
    let mut rule_id: Option<String> = None;
    let mut points_line: Option<usize> = None;
    let mut version_done = false;
    let mut done = Vec::new();
    let mut close =
        |out: &mut Vec<String>, id: &Option<String>, line: Option<usize>| -> Result<(), String> {
            if let Some(id) = id
                && let Some((_, p)) = points.iter().find(|(r, _)| r == id)
            {
                let Some(l) = line else {
                    return Err(format!("rule '{id}' has no `points = ` line to rewrite"));
                };
                let old = &out[l];
                let indent: String = old.chars().take_while(|c| c.is_whitespace()).collect();
                let comment = old
                    .find('#')
                    .map(|i| format!("  {}", old[i..].trim()))
                    .unwrap_or_default();
                out[l] = format!("{indent}points = {p}{comment}");
                done.push(id.clone());
            }
            Ok(())
        };
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            if in_rule {
                close(&mut out, &rule_id, points_line)?;
            }
            in_rule = t == "[[rule]]" || t.starts_with("[[rule]]");
            rule_id = None;
            points_line = None;
        } else if in_rule {
            if let Some(v) = value_of(t, "id") {
                rule_id = Some(v.trim_matches('"').to_owned());
            }
            if value_of(t, "points").is_some() {
                points_line = Some(out.len());
            }
        } else if !version_done
            && value_of(t, "version").is_some()
            && out.iter().all(|l| !l.trim().starts_with('['))
        {
            out.push(format!("version = {version}"));
            version_done = true;
            continue;
        }
        out.push(line.to_owned());
    }
    if in_rule {
        close(&mut out, &rule_id, points_line)?;
    }
    if !version_done {
        out.insert(0, format!("version = {version}"));
    }
    if let Some((missing, _)) = points.iter().find(|(r, _)| !done.contains(r)) {
        return Err(format!(
            "rule '{missing}' is not written as a [[rule]] block with an `id = ` line; calibrate rewrites only such blocks"
        ));
    }
    Ok(out.join("\n") + "\n")
}

/// A model with learned points: what was learned, and the model text
/// rewritten with the new points and the next `version`.
#[derive(Clone, Debug)]
pub struct Calibrated {
    /// The points learned per rule.
    pub learned: LearnedPoints,
    /// The rewritten model file.
    pub text: String,
}

/// Learns each rule's points from the rule values of scored leads
/// (`values`, one row per lead, as `score::rule_values` gives) and their
/// outcomes, and rewrites `text` (the model's file) with them. Refused
/// with [`LearnError::TooLittleData`] below the minimum outcomes of
/// training.
pub fn calibrate(
    model: &Model,
    text: &str,
    values: &[Vec<f64>],
    labels: &[u8],
    l2: f64,
) -> crate::error::Result<Calibrated> {
    use crate::train::{MIN_CONVERSIONS, MIN_LEADS};
    let positives = labels.iter().filter(|&&y| y == 1).count();
    if labels.len() < MIN_LEADS
        || positives < MIN_CONVERSIONS
        || labels.len() - positives < MIN_CONVERSIONS
    {
        return Err(LearnError::TooLittleData {
            rows: labels.len(),
            positives,
            min_rows: MIN_LEADS,
            min_positives: MIN_CONVERSIONS,
        });
    }
    let learned = learn_points(model, values, labels, l2);
    let changes: Vec<(String, f64)> = learned
        .rules
        .iter()
        .map(|r| (r.rule.clone(), r.new_points))
        .collect();
    let text = rewrite_model(text, &changes, model.version + 1).map_err(LearnError::Rewrite)?;
    Ok(Calibrated { learned, text })
}

/// The value of `key = value` (before any comment), if the line sets `key`.
fn value_of<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(key)?.trim_start();
    let value = rest.strip_prefix('=')?;
    let value = match value.find('#') {
        Some(i) if !value[..i].contains('"') || value[..i].matches('"').count() % 2 == 0 => {
            &value[..i]
        }
        _ => value,
    };
    Some(value.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::Rng;

    const MODEL: &str = r#"name = "m"
version = 3

[[dimension]]
id = "fit"

[[rule]]
id = "strong"
dimension = "fit"
points = 5   # a guess
when = { attribute = "a", equals = "x" }

[[rule]]
id = "weak"
dimension = "fit"
points = 50
when = { attribute = "b", equals = "x" }

[[rule]]
id = "harmful"
dimension = "fit"
points = 10
when = { attribute = "c", equals = "x" }

[[rule]]
id = "out"
on = "unsubscribe"
disqualify = true
"#;

    #[test]
    fn learned_points_follow_the_true_effects() {
        let model = Model::from_toml(MODEL).unwrap();
        let mut rng = Rng::new(9);
        let (mut values, mut labels) = (Vec::new(), Vec::new());
        for _ in 0..20_000 {
            let v: Vec<f64> = (0..3)
                .map(|_| f64::from(u8::from(rng.unit() < 0.4)))
                .chain([0.0])
                .collect();
            let z: f64 = -1.5 + 2.0 * v[0] + 0.5 * v[1] - 1.0 * v[2];
            labels.push(u8::from(rng.unit() < 1.0 / (1.0 + (-z).exp())));
            values.push(v);
        }
        let learned = learn_points(&model, &values, &labels, 1e-4);
        assert_eq!(
            learned.rules.len(),
            3,
            "the disqualifying rule is not fitted"
        );
        let p: Vec<f64> = learned.rules.iter().map(|r| r.new_points).collect();
        // Positive effects 2.0 and 0.5 fill the range 0..100: 80 and 20.
        assert!(
            (p[0] - 80.0).abs() <= 3.0 && (p[1] - 20.0).abs() <= 3.0,
            "{p:?}"
        );
        assert!(p[2] < -30.0, "{p:?}");
        assert!(p.iter().all(|x| x.fract() == 0.0));
        let new = rewrite_model(
            MODEL,
            &learned
                .rules
                .iter()
                .map(|r| (r.rule.clone(), r.new_points))
                .collect::<Vec<_>>(),
            4,
        )
        .unwrap();
        assert!(
            new.contains(&format!("points = {}  # a guess", p[0])),
            "{new}"
        );
        assert!(new.contains("version = 4"));
        let back = Model::from_toml(&new).unwrap();
        assert_eq!(back.rules[1].points, p[1]);
        assert_eq!(back.rules.len(), 4);
    }
}
