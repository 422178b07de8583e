//! Backtest: how well a hand-written points model ranks the leads that
//! actually converted. Scores are computed as of a cutoff (no later event
//! counts) and compared with what happened after it (or with an outcome
//! column): ranking quality, conversion and lift per band and stage, and
//! how many converters each threshold catches and misses.

use leadscore_core::{Model, ScoreCard};
use serde::Serialize;

use crate::metrics::{pr_auc, roc_auc};

/// One group of leads (a band, a stage, the disqualified).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupLine {
    /// Band or stage name, `disqualified`, or `(none)`.
    pub name: String,
    /// Leads in the group.
    pub leads: usize,
    /// Converters among them.
    pub conversions: usize,
    /// Conversions / leads.
    pub conversion_rate: f64,
    /// Conversion rate over the overall rate.
    pub lift: f64,
    /// Share of all converters in this group.
    pub share_of_conversions: f64,
}

/// What one threshold would have flagged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Threshold {
    /// What is flagged, e.g. `band 'hot' or above (score >= 70)`.
    pub rule: String,
    /// Leads flagged.
    pub flagged: usize,
    /// Converters flagged (caught).
    pub caught: usize,
    /// Converters not flagged (missed).
    pub missed: usize,
    /// Caught / flagged.
    pub precision: f64,
    /// Caught / all converters.
    pub recall: f64,
}

/// The whole backtest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Backtest {
    /// Leads measured.
    pub leads: usize,
    /// Converters among them.
    pub conversions: usize,
    /// ROC AUC of the score (disqualified leads score 0).
    pub roc_auc: f64,
    /// PR AUC of the score.
    pub pr_auc: f64,
    /// Per band, in model order, then `disqualified` and `(none)` if any.
    pub bands: Vec<GroupLine>,
    /// Per stage, in model order, then `(none)`.
    pub stages: Vec<GroupLine>,
    /// Per band and stage threshold: converters caught and missed.
    pub thresholds: Vec<Threshold>,
}

fn group(name: String, members: &[bool], labels: &[u8], total: usize, rate: f64) -> GroupLine {
    let leads = members.iter().filter(|&&m| m).count();
    let conversions = members
        .iter()
        .zip(labels)
        .filter(|(m, y)| **m && **y == 1)
        .count();
    let conversion_rate = if leads > 0 {
        conversions as f64 / leads as f64
    } else {
        0.0
    };
    GroupLine {
        name,
        leads,
        conversions,
        conversion_rate,
        lift: if rate > 0.0 {
            conversion_rate / rate
        } else {
            0.0
        },
        share_of_conversions: if total > 0 {
            conversions as f64 / total as f64
        } else {
            0.0
        },
    }
}

fn threshold(rule: String, flagged: &[bool], labels: &[u8], total: usize) -> Threshold {
    let n = flagged.iter().filter(|&&f| f).count();
    let caught = flagged
        .iter()
        .zip(labels)
        .filter(|(f, y)| **f && **y == 1)
        .count();
    Threshold {
        rule,
        flagged: n,
        caught,
        missed: total - caught,
        precision: if n > 0 { caught as f64 / n as f64 } else { 0.0 },
        recall: if total > 0 {
            caught as f64 / total as f64
        } else {
            0.0
        },
    }
}

/// Measures score cards against outcomes (1 converted), lead by lead.
pub fn backtest(model: &Model, cards: &[ScoreCard], labels: &[u8]) -> Backtest {
    let total = labels.iter().filter(|&&y| y == 1).count();
    let rate = total as f64 / labels.len().max(1) as f64;
    let scores: Vec<f64> = cards
        .iter()
        .map(|c| if c.disqualified { 0.0 } else { c.score })
        .collect();
    let mut bands = Vec::new();
    let mut thresholds = Vec::new();
    for (i, b) in model.bands.iter().enumerate() {
        let members: Vec<bool> = cards
            .iter()
            .map(|c| !c.disqualified && c.band == Some(i))
            .collect();
        bands.push(group(b.id.clone(), &members, labels, total, rate));
        let flagged: Vec<bool> = cards
            .iter()
            .map(|c| !c.disqualified && c.band.is_some_and(|x| x <= i))
            .collect();
        thresholds.push(threshold(
            format!("band '{}' or above (score >= {})", b.id, b.min_score),
            &flagged,
            labels,
            total,
        ));
    }
    let disqualified: Vec<bool> = cards.iter().map(|c| c.disqualified).collect();
    if disqualified.iter().any(|&d| d) {
        bands.push(group(
            "disqualified".into(),
            &disqualified,
            labels,
            total,
            rate,
        ));
    }
    let no_band: Vec<bool> = cards
        .iter()
        .map(|c| !c.disqualified && c.band.is_none())
        .collect();
    if no_band.iter().any(|&d| d) {
        bands.push(group("(none)".into(), &no_band, labels, total, rate));
    }
    let mut stages = Vec::new();
    for (i, s) in model.stages.iter().enumerate() {
        let members: Vec<bool> = cards.iter().map(|c| c.stage == Some(i)).collect();
        stages.push(group(s.id.clone(), &members, labels, total, rate));
        let flagged: Vec<bool> = cards
            .iter()
            .map(|c| c.stage.is_some_and(|x| x <= i))
            .collect();
        let rule = if i == 0 {
            format!("stage '{}'", s.id)
        } else {
            format!("stage '{}' or one listed before it", s.id)
        };
        thresholds.push(threshold(rule, &flagged, labels, total));
    }
    if !model.stages.is_empty() {
        let none: Vec<bool> = cards.iter().map(|c| c.stage.is_none()).collect();
        stages.push(group("(none)".into(), &none, labels, total, rate));
    }
    Backtest {
        leads: labels.len(),
        conversions: total,
        roc_auc: roc_auc(&scores, labels),
        pr_auc: pr_auc(&scores, labels),
        bands,
        stages,
        thresholds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = r#"
[[dimension]]
id = "fit"
[[band]]
id = "hot"
min_score = 70
[[band]]
id = "cold"
min_score = 0
[[stage]]
id = "mql"
when = { score = true, gte = 50 }
"#;

    fn card(
        score: f64,
        band: Option<usize>,
        stage: Option<usize>,
        disqualified: bool,
    ) -> ScoreCard {
        ScoreCard {
            dimensions: vec![score],
            score,
            band,
            stage,
            disqualified,
        }
    }

    #[test]
    fn counts_by_hand() {
        let model = Model::from_toml(MODEL).unwrap();
        let cards = vec![
            card(90.0, Some(0), Some(0), false),
            card(80.0, Some(0), Some(0), false),
            card(60.0, Some(1), Some(0), false),
            card(10.0, Some(1), None, false),
            card(0.0, None, None, true),
        ];
        let labels = [1, 0, 1, 0, 1];
        let b = backtest(&model, &cards, &labels);
        assert_eq!((b.leads, b.conversions), (5, 3));
        assert_eq!(b.bands[0].name, "hot");
        assert_eq!((b.bands[0].leads, b.bands[0].conversions), (2, 1));
        assert_eq!(b.bands[2].name, "disqualified");
        assert_eq!(b.bands[2].conversions, 1);
        assert_eq!((b.thresholds[0].caught, b.thresholds[0].missed), (1, 2));
        assert_eq!((b.thresholds[1].caught, b.thresholds[1].missed), (2, 1));
        assert_eq!(b.thresholds[2].rule, "stage 'mql'");
        assert_eq!((b.thresholds[2].flagged, b.thresholds[2].caught), (3, 2));
        // Scores 90, 80, 60, 10, 0 against 1, 0, 1, 0, 1: converters beat
        // non-converters in 3 of 6 pairs.
        assert!((b.roc_auc - 3.0 / 6.0).abs() < 1e-12);
        assert!((b.bands[0].lift - 0.5 / 0.6).abs() < 1e-12);
    }
}
