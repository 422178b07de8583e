//! Predictive dimensions: a dimension whose value a learned model gives
//! (100 x the calibrated probability of converting) instead of rules.
//!
//! The core only knows the [`Predict`] interface: the model file
//! (`[[dimension]] kind = "predictive" model = "FILE"`) is read by the
//! caller that does I/O, which then attaches it with
//! [`crate::Model::attach_predictor`]. A model whose predictive dimensions
//! are not all attached must not be scored
//! ([`crate::Model::unattached_predictors`] lists them).

use std::fmt;
use std::sync::Arc;

use crate::condition::AttrId;
use crate::scoring::AttributeLookup;

/// A learned model of conversion, read from a contact's attributes.
pub trait Predict: Send + Sync + fmt::Debug {
    /// The contact attributes it reads; `probability` and `factors` get
    /// their values in this order (`None` when missing).
    fn columns(&self) -> &[String];
    /// The calibrated probability of converting, 0 to 1.
    fn probability(&self, values: &[Option<&str>]) -> f64;
    /// Each column's contribution to the prediction (log-odds; positive
    /// raises the chance), largest effect first.
    fn factors(&self, values: &[Option<&str>]) -> Vec<PredictFactor>;
}

/// One attribute's part in a predicted value.
#[derive(Clone, Debug, PartialEq)]
pub struct PredictFactor {
    /// The attribute.
    pub column: String,
    /// The contact's value, if it has one.
    pub value: Option<String>,
    /// Contribution to the log-odds.
    pub contribution: f64,
}

/// A dimension's learned model: the file named in the model, and once
/// attached, the loaded predictor and the attributes it reads.
#[derive(Clone, Debug)]
pub struct Predictive {
    /// The model file as written in the scoring model (a path relative to
    /// the scoring model's folder).
    pub file: String,
    /// The loaded model, once attached.
    pub predictor: Option<Arc<dyn Predict>>,
    /// Attribute ids of the predictor's columns, in its order.
    pub inputs: Vec<AttrId>,
}

impl Predictive {
    fn values<'a, A: AttributeLookup + ?Sized>(&self, attributes: &'a A) -> Vec<Option<&'a str>> {
        self.inputs.iter().map(|&id| attributes.get(id)).collect()
    }

    /// The dimension's value for a contact: 100 x P(convert), in points
    /// (0 when no predictor is attached).
    pub fn value<A: AttributeLookup + ?Sized>(&self, attributes: &A) -> f64 {
        match &self.predictor {
            Some(p) => 100.0 * p.probability(&self.values(attributes)).clamp(0.0, 1.0),
            None => 0.0,
        }
    }

    /// Why the contact has that value (empty when no predictor is attached).
    pub fn factors<A: AttributeLookup + ?Sized>(&self, attributes: &A) -> Vec<PredictFactor> {
        match &self.predictor {
            Some(p) => p.factors(&self.values(attributes)),
            None => Vec::new(),
        }
    }
}
