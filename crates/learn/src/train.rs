//! Training: cross-validate each learner on the training data, keep the one
//! with the best held-out ROC AUC, calibrate its probabilities on the
//! held-out predictions, and fit it on all the data.
//!
//! Choices made inside cross-validation (never on a test file):
//! - logistic regression: the L2 penalty, from a small grid;
//! - trees: the number of boosting rounds, where the folds' mean held-out
//!   log loss is lowest (all folds boosted in step, stopped when it has not
//!   improved for `patience` rounds).

use rayon::prelude::*;
use serde::Serialize;

use crate::calibration::Platt;
use crate::cv::{split, stratified_folds};
use crate::error::{LearnError, Result};
use crate::features::{FeatureOptions, FeatureSpec, Matrix, Skipped};
use crate::linear::Linear;
use crate::metrics::{Metrics, log_loss, roc_auc};
use crate::predictor::{FORMAT, LearnerModel, Predictor, VERSION};
use crate::table::Table;
use crate::trees::{Bins, Booster, TreeParams, sigmoid};

/// Fewest leads with an outcome to train on.
pub const MIN_LEADS: usize = 200;
/// Fewest conversions (and non-conversions) to train on.
pub const MIN_CONVERSIONS: usize = 30;

/// Which learner to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LearnerChoice {
    /// Both, keep the better cross-validated ROC AUC.
    Auto,
    /// Logistic regression only.
    Linear,
    /// Gradient-boosted trees only.
    Trees,
}

/// Settings of a training run.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Cross-validation folds (2..=20).
    pub folds: usize,
    /// Seed of the folds and of the trees' draws.
    pub seed: u64,
    /// Which learner.
    pub learner: LearnerChoice,
    /// How columns become features.
    pub features: FeatureOptions,
    /// Weigh converters and non-converters equally while fitting (the
    /// calibration then maps back to real rates).
    pub balance: bool,
    /// Tree settings (the round count is chosen by cross-validation).
    pub trees: TreeParams,
    /// Most boosting rounds.
    pub max_rounds: usize,
    /// Rounds without improvement before boosting stops.
    pub patience: usize,
    /// L2 penalties tried for logistic regression.
    pub l2_grid: Vec<f64>,
}

impl Default for TrainOptions {
    fn default() -> TrainOptions {
        TrainOptions {
            folds: 5,
            seed: 42,
            learner: LearnerChoice::Auto,
            features: FeatureOptions::default(),
            balance: false,
            trees: TreeParams::default(),
            max_rounds: 2000,
            patience: 50,
            l2_grid: vec![1e-4, 1e-3, 1e-2, 1e-1],
        }
    }
}

/// One learner setting's cross-validated result.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// `linear` or `trees`.
    pub learner: String,
    /// Its setting, e.g. `l2=0.001` or `rounds=420`.
    pub setting: String,
    /// Mean ROC AUC over the held-out folds.
    pub roc_auc_mean: f64,
    /// Standard deviation of the folds' ROC AUC.
    pub roc_auc_sd: f64,
    /// Each fold's held-out ROC AUC.
    pub fold_roc_auc: Vec<f64>,
    /// Held-out log loss, all folds pooled (before calibration).
    pub log_loss: f64,
    #[serde(skip)]
    oof_log_odds: Vec<f64>,
    #[serde(skip)]
    choice: Choice,
}

#[derive(Debug, Clone, Copy)]
enum Choice {
    Linear { l2: f64 },
    Trees { rounds: usize },
}

/// Cross-validation results.
#[derive(Debug, Clone, Serialize)]
pub struct CrossValidation {
    /// Number of folds.
    pub folds: usize,
    /// The fold seed.
    pub seed: u64,
    /// Every setting tried.
    pub candidates: Vec<Candidate>,
    /// Index of the chosen one in `candidates`.
    pub chosen: usize,
    /// The chosen setting's pooled held-out predictions, calibrated.
    pub metrics: Metrics,
}

/// Mean absolute contribution of one input column (log-odds).
#[derive(Debug, Clone, Serialize)]
pub struct Importance {
    /// The input column.
    pub column: String,
    /// Mean absolute contribution over (a sample of) the training leads.
    pub mean_abs_contribution: f64,
}

/// What a training run found, for a person (table) or a program (JSON).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The training data.
    pub data: String,
    /// The outcome column.
    pub label: String,
    /// Leads trained on.
    pub leads: usize,
    /// Converters among them.
    pub conversions: usize,
    /// The features derived, in order.
    pub features: Vec<String>,
    /// Columns left out, with the reason.
    pub skipped: Vec<Skipped>,
    /// Cross-validation on the training data.
    pub cv: CrossValidation,
    /// The chosen learner.
    pub learner: String,
    /// Measures on the `--test` file, if one was given.
    pub test: Option<Metrics>,
    /// Columns by mean absolute contribution, largest first.
    pub importance: Vec<Importance>,
    /// Wall-clock seconds spent training, cross-validation included.
    pub seconds: f64,
    /// Of those, seconds spent fitting the final model on all the data.
    pub fit_seconds: f64,
}

/// A trained model and its report.
pub struct Training {
    /// The model, ready to save or predict.
    pub predictor: Predictor,
    /// What cross-validation found.
    pub report: Report,
}

fn check_data(labels: &[u8]) -> Result<()> {
    let positives = labels.iter().filter(|&&y| y == 1).count();
    let negatives = labels.len() - positives;
    if labels.len() < MIN_LEADS || positives < MIN_CONVERSIONS || negatives < MIN_CONVERSIONS {
        return Err(LearnError::TooLittleData {
            rows: labels.len(),
            positives,
            min_rows: MIN_LEADS,
            min_positives: MIN_CONVERSIONS,
        });
    }
    Ok(())
}

fn balance_weights(labels: &[u8]) -> Vec<f64> {
    let n = labels.len() as f64;
    let positives = labels.iter().filter(|&&y| y == 1).count() as f64;
    let (wp, wn) = (n / (2.0 * positives), n / (2.0 * (n - positives)));
    labels
        .iter()
        .map(|&y| if y == 1 { wp } else { wn })
        .collect()
}

fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

/// One fold: its training and held-out rows (indexes into the whole
/// data; no copies of the features).
struct Fold {
    train: Vec<usize>,
    held: Vec<usize>,
    held_y: Vec<u8>,
}

fn candidate(
    learner: &str,
    setting: String,
    choice: Choice,
    folds: &[Fold],
    scores: Vec<Vec<f64>>,
    rows: usize,
    labels: &[u8],
) -> Candidate {
    let fold_roc_auc: Vec<f64> = folds
        .iter()
        .zip(&scores)
        .map(|(f, s)| roc_auc(s, &f.held_y))
        .collect();
    let (roc_auc_mean, roc_auc_sd) = mean_sd(&fold_roc_auc);
    let mut oof = vec![0.0; rows];
    for (f, s) in folds.iter().zip(scores) {
        for (&i, v) in f.held.iter().zip(s) {
            oof[i] = v;
        }
    }
    let probabilities: Vec<f64> = oof.iter().map(|&m| sigmoid(m)).collect();
    Candidate {
        learner: learner.to_owned(),
        setting,
        roc_auc_mean,
        roc_auc_sd,
        fold_roc_auc,
        log_loss: log_loss(&probabilities, labels),
        oof_log_odds: oof,
        choice,
    }
}

/// Trains on `table` (outcome column already taken out) with outcomes
/// `labels`; `data` and `label` name them in the report.
pub fn train(
    table: &Table,
    labels: &[u8],
    data: &str,
    label: &str,
    options: &TrainOptions,
) -> Result<Training> {
    let started = std::time::Instant::now();
    if !(2..=20).contains(&options.folds) {
        return Err(LearnError::Option {
            option: "--folds".into(),
            message: format!("{} folds; use 2 to 20", options.folds),
        });
    }
    let t = &options.trees;
    let checks = [
        (
            "--leaves",
            (2..=4096).contains(&t.max_leaves),
            "use 2 to 4096",
        ),
        ("--min-leaf", t.min_leaf >= 1, "use 1 or more"),
        (
            "--learning-rate",
            t.learning_rate > 0.0 && t.learning_rate <= 1.0,
            "use more than 0, at most 1",
        ),
        (
            "--max-bins",
            (2..=255).contains(&t.max_bins),
            "use 2 to 255",
        ),
        ("--max-rounds", options.max_rounds >= 1, "use 1 or more"),
    ];
    for (option, ok, message) in checks {
        if !ok {
            return Err(LearnError::Option {
                option: option.into(),
                message: message.into(),
            });
        }
    }
    check_data(labels)?;
    let spec = FeatureSpec::fit(table, options.features);
    let x = spec.encode(table)?;
    let weights = options.balance.then(|| balance_weights(labels));
    let fold_of = stratified_folds(labels, options.folds, options.seed);
    let folds: Vec<Fold> = (0..options.folds)
        .map(|f| {
            let (train, held) = split(&fold_of, f);
            Fold {
                held_y: held.iter().map(|&i| labels[i]).collect(),
                train,
                held,
            }
        })
        .collect();
    let mut candidates = Vec::new();
    if options.learner != LearnerChoice::Trees {
        // One fold's copy of the features at a time; the penalties of the
        // grid in parallel on it.
        let mut by_l2: Vec<Vec<Vec<f64>>> = vec![Vec::new(); options.l2_grid.len()];
        for f in &folds {
            let (train_x, held_x) = (x.select(&f.train), x.select(&f.held));
            let train_y: Vec<u8> = f.train.iter().map(|&i| labels[i]).collect();
            let train_w = weights
                .as_ref()
                .map(|w| f.train.iter().map(|&i| w[i]).collect::<Vec<f64>>());
            let scores: Vec<Vec<f64>> = options
                .l2_grid
                .par_iter()
                .map(|&l2| {
                    Linear::fit(&train_x, &train_y, train_w.as_deref(), l2).log_odds(&held_x)
                })
                .collect();
            for (slot, s) in by_l2.iter_mut().zip(scores) {
                slot.push(s);
            }
        }
        for (&l2, scores) in options.l2_grid.iter().zip(by_l2) {
            candidates.push(candidate(
                "linear",
                format!("l2={l2}"),
                Choice::Linear { l2 },
                &folds,
                scores,
                x.rows,
                labels,
            ));
        }
    }
    if options.learner != LearnerChoice::Linear {
        let (rounds, scores) =
            cross_validate_trees(&x, labels, weights.as_deref(), &folds, options);
        candidates.push(candidate(
            "trees",
            format!("rounds={rounds}"),
            Choice::Trees { rounds },
            &folds,
            scores,
            x.rows,
            labels,
        ));
    }
    let chosen = (0..candidates.len())
        .max_by(|&a, &b| {
            candidates[a]
                .roc_auc_mean
                .total_cmp(&candidates[b].roc_auc_mean)
        })
        .unwrap_or(0);
    let best = &candidates[chosen];
    let calibration = Platt::fit(&best.oof_log_odds, labels);
    let calibrated: Vec<f64> = best
        .oof_log_odds
        .iter()
        .map(|&m| calibration.probability(m))
        .collect();
    let cv_metrics = Metrics::of(&calibrated, labels);
    let fit_started = std::time::Instant::now();
    let learner = match best.choice {
        Choice::Linear { l2 } => {
            LearnerModel::Linear(Linear::fit(&x, labels, weights.as_deref(), l2))
        }
        Choice::Trees { rounds } => {
            let bins = Bins::fit(&x, options.trees.max_bins);
            let codes = bins.codes(&x);
            let mut booster =
                Booster::new(options.trees, &bins, &codes, labels, weights.as_deref());
            for _ in 0..rounds {
                booster.round();
            }
            LearnerModel::Trees(booster.into_forest())
        }
    };
    let predictor = Predictor {
        format: FORMAT.into(),
        version: VERSION,
        label: label.to_owned(),
        trained_on: data.to_owned(),
        leads: labels.len(),
        conversions: labels.iter().filter(|&&y| y == 1).count(),
        cv_roc_auc: best.roc_auc_mean,
        feature_names: x.names.clone(),
        spec: spec.clone(),
        learner,
        calibration,
        history: None,
    };
    let fit_seconds = fit_started.elapsed().as_secs_f64();
    let importance = importance(&predictor, &x);
    let report = Report {
        data: data.to_owned(),
        label: label.to_owned(),
        leads: labels.len(),
        conversions: predictor.conversions,
        features: x.names.clone(),
        skipped: spec.skipped.clone(),
        learner: predictor.learner.name().to_owned(),
        cv: CrossValidation {
            folds: options.folds,
            seed: options.seed,
            candidates,
            chosen,
            metrics: cv_metrics,
        },
        test: None,
        importance,
        seconds: started.elapsed().as_secs_f64(),
        fit_seconds,
    };
    Ok(Training { predictor, report })
}

/// Boosts every fold in step; returns the round count with the lowest
/// mean held-out log loss and each fold's held-out log-odds at it.
fn cross_validate_trees(
    x: &Matrix,
    labels: &[u8],
    weights: Option<&[f64]>,
    folds: &[Fold],
    options: &TrainOptions,
) -> (usize, Vec<Vec<f64>>) {
    // Binned once for all folds (the cut points see every row's values but
    // no outcome, as LightGBM's cross-validation does).
    let bins = Bins::fit(x, options.trees.max_bins);
    let codes = bins.codes(x);
    let mut boosters: Vec<Booster> = folds
        .iter()
        .map(|f| {
            let train: Vec<u32> = f.train.iter().map(|&i| i as u32).collect();
            let mut b = Booster::on_rows(options.trees, &bins, &codes, labels, weights, train);
            b.watch_rows(
                x,
                f.held.iter().map(|&i| i as u32).collect(),
                f.held_y.clone(),
            );
            b
        })
        .collect();
    let (mut best_round, mut best_loss) = (0usize, f64::INFINITY);
    let mut best_scores: Vec<Vec<f64>> = boosters
        .iter()
        .map(|b| b.eval_log_odds().unwrap_or(&[]).to_vec())
        .collect();
    for round in 1..=options.max_rounds.max(1) {
        boosters.par_iter_mut().for_each(|b| b.round());
        let loss = boosters
            .iter()
            .filter_map(|b| b.eval_log_loss())
            .sum::<f64>()
            / boosters.len() as f64;
        if loss < best_loss - 1e-7 {
            best_loss = loss;
            best_round = round;
            best_scores = boosters
                .iter()
                .map(|b| b.eval_log_odds().unwrap_or(&[]).to_vec())
                .collect();
        } else if round - best_round >= options.patience {
            break;
        }
    }
    (best_round.max(1), best_scores)
}

/// Mean absolute contribution per input column over up to 1000 leads.
fn importance(predictor: &Predictor, x: &Matrix) -> Vec<Importance> {
    let columns = predictor.spec.columns();
    let owner = predictor.feature_columns();
    let step = (x.rows / 1000).max(1);
    let rows: Vec<usize> = (0..x.rows).step_by(step).collect();
    // Collected, then summed in row order: the same totals on every run.
    let per_row: Vec<Vec<f64>> = rows
        .par_iter()
        .map(|&r| {
            let (_, c) = predictor.contributions(&x.row(r));
            let mut per = vec![0.0; columns.len()];
            for (&o, v) in owner.iter().zip(c) {
                per[o] += v;
            }
            per
        })
        .collect();
    let mut totals = vec![0.0; columns.len()];
    for per in per_row {
        for (t, v) in totals.iter_mut().zip(per) {
            *t += v.abs();
        }
    }
    let mut out: Vec<Importance> = columns
        .iter()
        .zip(totals)
        .map(|(c, t)| Importance {
            column: c.to_string(),
            mean_abs_contribution: t / rows.len().max(1) as f64,
        })
        .collect();
    out.sort_by(|a, b| b.mean_abs_contribution.total_cmp(&a.mean_abs_contribution));
    out
}

/// Measures a model on data it was not trained on.
pub fn evaluate(predictor: &Predictor, table: &Table, labels: &[u8]) -> Result<Metrics> {
    let p = predictor.probabilities(table)?;
    Ok(Metrics::of(&p, labels))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::table::DEFAULT_MISSING;

    /// A lead table where conversion depends on `size` and `source`.
    fn leads(rows: usize, seed: u64) -> (Table, Vec<u8>) {
        let mut rng = crate::sample::Rng::new(seed);
        let mut text = String::from("id,size,source,noise\n");
        let mut labels = Vec::new();
        for i in 0..rows {
            let size = rng.below(500);
            let source = ["ads", "referral", "organic", "event"][rng.below(4)];
            let z = -2.0 + size as f64 / 150.0 + if source == "referral" { 1.5 } else { 0.0 };
            labels.push(u8::from(rng.unit() < sigmoid(z)));
            let size = if rng.unit() < 0.05 {
                String::new()
            } else {
                size.to_string()
            };
            text.push_str(&format!("{i},{size},{source},{}\n", rng.below(100)));
        }
        let missing: Vec<String> = DEFAULT_MISSING.iter().map(|s| s.to_string()).collect();
        (
            Table::from_reader(Path::new("leads.csv"), text.as_bytes(), &missing).unwrap(),
            labels,
        )
    }

    #[test]
    fn trains_reports_and_round_trips() {
        let (table, labels) = leads(3_000, 1);
        let options = TrainOptions {
            max_rounds: 200,
            ..TrainOptions::default()
        };
        let t = train(&table, &labels, "leads.csv", "won", &options).unwrap();
        assert_eq!(t.report.cv.candidates.len(), 5);
        assert!(
            t.report.cv.metrics.roc_auc > 0.75,
            "{}",
            t.report.cv.metrics.roc_auc
        );
        assert_eq!(t.report.skipped[0].column, "id");
        assert_eq!(t.report.importance[0].column, "size");
        assert_eq!(
            t.report.importance.last().map(|i| i.column.as_str()),
            Some("noise")
        );
        let (test, test_labels) = leads(2_000, 2);
        let m = evaluate(&t.predictor, &test, &test_labels).unwrap();
        assert!(m.roc_auc > 0.75 && (m.roc_auc - t.report.cv.metrics.roc_auc).abs() < 0.05);
        // The model file gives identical predictions.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        t.predictor.save(&path).unwrap();
        let back = Predictor::load(&path).unwrap();
        assert_eq!(back, t.predictor);
        assert_eq!(
            back.probabilities(&test).unwrap(),
            t.predictor.probabilities(&test).unwrap()
        );
    }

    #[test]
    fn trees_round_trip_to_identical_predictions() {
        let (table, labels) = leads(1_000, 3);
        let options = TrainOptions {
            learner: LearnerChoice::Trees,
            max_rounds: 60,
            ..TrainOptions::default()
        };
        let t = train(&table, &labels, "leads.csv", "won", &options).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        t.predictor.save(&path).unwrap();
        let back = Predictor::load(&path).unwrap();
        assert_eq!(
            back.probabilities(&table).unwrap(),
            t.predictor.probabilities(&table).unwrap()
        );
        // An explanation adds up to the prediction.
        let x = back.spec.encode(&table).unwrap();
        let p = back.explain(&table, &x, 7);
        let total = p.base_log_odds + p.factors.iter().map(|f| f.contribution).sum::<f64>();
        assert!((total - p.log_odds).abs() < 1e-9);
        assert!((p.probability - back.probabilities(&table).unwrap()[7]).abs() < 1e-12);
        // As a scoring dimension, one contact at a time: the same numbers
        // as the whole-table path, and the same reasons.
        use leadscore_core::Predict;
        let dim = crate::predictor::DimensionModel::new(back.clone());
        let all = back.probabilities(&table).unwrap();
        for r in [0, 7, 500, 999] {
            let values: Vec<Option<&str>> = dim
                .columns()
                .iter()
                .map(|c| table.column(c).unwrap().get(r))
                .collect();
            assert!((dim.probability(&values) - all[r]).abs() < 1e-12);
        }
        let values: Vec<Option<&str>> = dim
            .columns()
            .iter()
            .map(|c| table.column(c).unwrap().get(7))
            .collect();
        let factors = dim.factors(&values);
        let total: f64 = factors.iter().map(|f| f.contribution).sum();
        assert!((total + p.base_log_odds - p.log_odds).abs() < 1e-9);
    }

    #[test]
    fn too_little_data_is_refused_with_the_counts() {
        let (table, labels) = leads(150, 4);
        let e = train(
            &table,
            &labels,
            "leads.csv",
            "won",
            &TrainOptions::default(),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("150 outcomes"), "{e}");
    }

    #[test]
    fn other_versions_and_files_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        std::fs::write(
            &path,
            r#"{"format":"leadscore-predictive-model","version":99}"#,
        )
        .unwrap();
        let e = Predictor::load(&path).unwrap_err().to_string();
        assert!(e.contains("version 99") && e.contains("m.json"), "{e}");
        std::fs::write(&path, "[1,2").unwrap();
        assert!(
            Predictor::load(&path)
                .unwrap_err()
                .to_string()
                .contains("invalid JSON")
        );
    }
}
