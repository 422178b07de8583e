//! # leadscore-learn: learning which leads convert
//!
//! From a table of past leads and their outcomes to a predictive model a
//! data scientist can check and a marketer can read:
//! - [`table`]: a CSV of leads, column by column;
//! - [`features`]: columns to numbers, decided on training data and saved;
//! - [`linear`]: L2 logistic regression (readable weights), fitted by
//!   [`optimize`]'s L-BFGS;
//! - [`trees`]: histogram gradient-boosted trees; [`shap`] explains them;
//! - [`metrics`]: ROC/PR AUC, log loss, Brier, deciles, calibration;
//! - [`outcomes`]: which scored leads converted (backtests, calibration);
//! - [`points`]: rule points learned from outcomes (`calibrate`);
//! - [`sample`]: synthetic data with known answers.
//!
//! No I/O beyond reading the data file asked for; nothing is fetched.

pub mod error;
pub mod features;
pub mod history;
pub mod linear;
pub mod metrics;
pub mod optimize;
pub mod outcomes;
pub mod points;
pub mod sample;
pub mod shap;
pub mod table;
pub mod trees;

pub use error::{LearnError, Result};
pub mod backtest;
pub mod calibration;
pub mod cv;
pub mod predictor;
pub mod train;

pub use predictor::Predictor;
pub use table::Table;
pub use train::{LearnerChoice, TrainOptions, train};
