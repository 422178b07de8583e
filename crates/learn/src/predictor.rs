//! The predictive model file: the feature encoding, the fitted learner and
//! the probability calibration, saved as one versioned JSON document so a
//! model trained today gives identical predictions tomorrow.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::calibration::Platt;
use crate::error::{LearnError, Result};
use crate::features::{FeatureSpec, Input, Matrix};
use crate::linear::Linear;
use crate::shap;
use crate::table::Table;
use crate::trees::Forest;

/// The `format` field of every model file.
pub const FORMAT: &str = "leadscore-predictive-model";
/// The file layout version this build writes and reads.
pub const VERSION: u32 = 1;

/// Which learner a model holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LearnerModel {
    /// Logistic regression.
    Linear(Linear),
    /// Gradient-boosted trees.
    Trees(Forest),
}

impl LearnerModel {
    /// Short name: `linear` or `trees`.
    pub fn name(&self) -> &'static str {
        match self {
            LearnerModel::Linear(_) => "linear",
            LearnerModel::Trees(_) => "trees",
        }
    }
}

/// A trained predictive model: P(convert) for a lead from its columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Predictor {
    /// Always [`FORMAT`].
    pub format: String,
    /// Layout version ([`VERSION`]).
    pub version: u32,
    /// The outcome column (or event) it predicts.
    pub label: String,
    /// The data it was trained on (file name), for the record.
    pub trained_on: String,
    /// Leads it was trained on.
    pub leads: usize,
    /// Converters among them.
    pub conversions: usize,
    /// Cross-validated ROC AUC of the chosen learner.
    pub cv_roc_auc: f64,
    /// How columns become features.
    pub spec: FeatureSpec,
    /// The feature names, in matrix order.
    pub feature_names: Vec<String>,
    /// The fitted learner.
    pub learner: LearnerModel,
    /// Log-odds to calibrated probability.
    pub calibration: Platt,
    /// For a model trained from the lead database: the outcome event it
    /// predicts and the horizon (its features include event aggregates and
    /// rule points, not only contact attributes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<HistorySource>,
}

/// Where a database-trained model's outcomes came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistorySource {
    /// The outcome event type.
    pub outcome_event: String,
    /// The horizon, in days.
    pub horizon_days: f64,
}

/// One column's part in a lead's prediction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Factor {
    /// The input column.
    pub column: String,
    /// The lead's value in it ("(missing)" if none).
    pub value: String,
    /// Its contribution to the log-odds (positive raises the chance).
    pub contribution: f64,
}

/// Why a lead has its predicted probability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// Calibrated probability of converting (0..1).
    pub probability: f64,
    /// The learner's log-odds before calibration.
    pub log_odds: f64,
    /// Log-odds of an average training lead (where contributions start).
    pub base_log_odds: f64,
    /// Every column's contribution, largest effect first.
    pub factors: Vec<Factor>,
}

impl Predictor {
    /// Log-odds (before calibration) of every row of encoded features.
    pub fn log_odds(&self, x: &Matrix) -> Vec<f64> {
        match &self.learner {
            LearnerModel::Linear(m) => m.log_odds(x),
            LearnerModel::Trees(f) => f.log_odds(x, usize::MAX),
        }
    }

    /// Calibrated probabilities of every row of a table.
    pub fn probabilities(&self, table: &Table) -> Result<Vec<f64>> {
        let x = self.spec.encode(table)?;
        Ok(self
            .log_odds(&x)
            .into_iter()
            .map(|m| self.calibration.probability(m))
            .collect())
    }

    /// Per feature, its contribution to one encoded lead's log-odds, and
    /// the log-odds they start from.
    pub fn contributions(&self, row: &[f32]) -> (f64, Vec<f64>) {
        match &self.learner {
            LearnerModel::Linear(m) => (m.intercept, m.contributions(row)),
            LearnerModel::Trees(f) => (shap::expected_log_odds(f), shap::contributions(f, row)),
        }
    }

    /// For each feature, the index of the input column it comes from (in
    /// [`FeatureSpec::columns`] order).
    pub fn feature_columns(&self) -> Vec<usize> {
        let columns = self.spec.columns();
        let mut out = Vec::with_capacity(self.feature_names.len());
        for input in &self.spec.inputs {
            let (column, width) = match input {
                Input::Number {
                    column,
                    missing_flag,
                } => (column, 1 + usize::from(*missing_flag)),
                Input::Category {
                    column,
                    levels,
                    other,
                    missing,
                } => (
                    column,
                    levels.len() + usize::from(*other) + usize::from(*missing),
                ),
                Input::Title { column } => (
                    column,
                    crate::features::SENIORITY.len() + crate::features::DEPARTMENTS.len(),
                ),
            };
            let index = columns.iter().position(|c| c == column).unwrap_or(0);
            out.extend(std::iter::repeat_n(index, width));
        }
        out
    }

    /// The prediction for row `row` of `table` (encoded as `x`), with each
    /// column's contribution.
    pub fn explain(&self, table: &Table, x: &Matrix, row: usize) -> Prediction {
        let features = x.row(row);
        let (base, contributions) = self.contributions(&features);
        let columns = self.spec.columns();
        let mut per_column = vec![0.0; columns.len()];
        for (c, v) in self.feature_columns().into_iter().zip(&contributions) {
            per_column[c] += v;
        }
        let log_odds = base + contributions.iter().sum::<f64>();
        let mut factors: Vec<Factor> = columns
            .iter()
            .zip(per_column)
            .map(|(name, contribution)| Factor {
                column: name.to_string(),
                value: table
                    .column(name)
                    .ok()
                    .and_then(|c| c.get(row))
                    .unwrap_or("(missing)")
                    .to_owned(),
                contribution,
            })
            .collect();
        factors.sort_by(|a, b| b.contribution.abs().total_cmp(&a.contribution.abs()));
        Prediction {
            probability: self.calibration.probability(log_odds),
            log_odds,
            base_log_odds: base,
            factors,
        }
    }

    /// Writes the model file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string(self).map_err(|e| LearnError::ModelFile {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        std::fs::write(path, text).map_err(|source| LearnError::Io {
            path: path.to_owned(),
            source,
        })
    }

    /// Reads a model file, refusing other formats and versions by name.
    pub fn load(path: &Path) -> Result<Predictor> {
        let text = std::fs::read_to_string(path).map_err(|source| LearnError::Io {
            path: path.to_owned(),
            source,
        })?;
        Predictor::from_json(path, &text)
    }

    /// Reads a model from its JSON text; `path` names it in messages.
    pub fn from_json(path: &Path, text: &str) -> Result<Predictor> {
        let bad = |message: String| LearnError::ModelFile {
            path: path.to_owned(),
            message,
        };
        let head: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| bad(format!("not a model file (invalid JSON: {e})")))?;
        if head.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(bad(format!(
                "not a leadscore predictive model (no \"format\": \"{FORMAT}\")"
            )));
        }
        match head.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(VERSION) => {}
            Some(v) => {
                return Err(bad(format!(
                    "model file version {v}; this leadscore reads version {VERSION} (retrain with `leadscore train`)"
                )));
            }
            None => return Err(bad("model file has no version".into())),
        }
        serde_json::from_value(head).map_err(|e| bad(format!("damaged model file: {e}")))
    }
}

/// A trained model ready to serve as a predictive dimension of a scoring
/// model (see `leadscore_core::predict`).
#[derive(Debug)]
pub struct DimensionModel {
    predictor: Predictor,
    columns: Vec<String>,
    owners: Vec<usize>,
}

impl DimensionModel {
    /// Wraps a loaded model.
    pub fn new(predictor: Predictor) -> DimensionModel {
        let columns = predictor
            .spec
            .columns()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let owners = predictor.feature_columns();
        DimensionModel {
            predictor,
            columns,
            owners,
        }
    }

    fn encode(&self, values: &[Option<&str>]) -> Vec<f32> {
        self.predictor.spec.encode_one(|name| {
            self.columns
                .iter()
                .position(|c| c == name)
                .and_then(|i| values.get(i).copied().flatten())
        })
    }
}

impl leadscore_core::Predict for DimensionModel {
    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn probability(&self, values: &[Option<&str>]) -> f64 {
        let row = self.encode(values);
        let log_odds = match &self.predictor.learner {
            LearnerModel::Linear(m) => m.intercept + m.contributions(&row).iter().sum::<f64>(),
            LearnerModel::Trees(f) => f.log_odds_row(&row),
        };
        self.predictor.calibration.probability(log_odds)
    }

    fn factors(&self, values: &[Option<&str>]) -> Vec<leadscore_core::PredictFactor> {
        let (_, contributions) = self.predictor.contributions(&self.encode(values));
        let mut per = vec![0.0; self.columns.len()];
        for (&o, c) in self.owners.iter().zip(contributions) {
            per[o] += c;
        }
        let mut out: Vec<leadscore_core::PredictFactor> = self
            .columns
            .iter()
            .zip(per)
            .enumerate()
            .map(
                |(i, (column, contribution))| leadscore_core::PredictFactor {
                    column: column.clone(),
                    value: values.get(i).copied().flatten().map(str::to_owned),
                    contribution,
                },
            )
            .collect();
        out.sort_by(|a, b| b.contribution.abs().total_cmp(&a.contribution.abs()));
        out
    }
}

/// A learned model file that a predictive dimension of a scoring model
/// names, read into memory (the database keeps a copy with each model
/// version).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelFile {
    /// The predictive dimension's id.
    pub dimension: String,
    /// The file name, as the scoring model gives it (for messages).
    pub file: String,
    /// The file's content (JSON written by `leadscore train`).
    pub content: String,
}

/// Attaches each predictive dimension's learned model from `files`; a
/// dimension without its file, or with an unreadable one, is an error
/// naming it.
pub fn attach_model_files(model: &mut leadscore_core::Model, files: &[ModelFile]) -> Result<()> {
    let wanted: Vec<(usize, String, String)> = model
        .dimensions
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            d.predictive
                .as_ref()
                .map(|p| (i, d.id.clone(), p.file.clone()))
        })
        .collect();
    for (i, dimension, file) in wanted {
        let Some(f) = files.iter().find(|f| f.dimension == dimension) else {
            return Err(LearnError::Predictive {
                dimension,
                message: format!("its learned model {file:?} was not given"),
            });
        };
        let predictor = Predictor::from_json(Path::new(&f.file), &f.content).map_err(|e| {
            LearnError::Predictive {
                dimension: dimension.clone(),
                message: e.to_string(),
            }
        })?;
        if let Some(h) = &predictor.history {
            return Err(LearnError::Predictive {
                dimension,
                message: format!(
                    "{}: this model was trained from the database on {} outcomes and reads event aggregates; a predictive dimension reads contact attributes only (train one with --data on a table of attributes)",
                    f.file, h.outcome_event
                ),
            });
        }
        model.attach_predictor(i, std::sync::Arc::new(DimensionModel::new(predictor)));
    }
    Ok(())
}
