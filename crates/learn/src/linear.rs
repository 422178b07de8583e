//! L2-regularised logistic regression: one readable weight per feature.
//!
//! Features are standardised (mean 0, standard deviation 1, missing values
//! at the mean) so weights compare across features and one penalty fits
//! all; the weights are found by L-BFGS on the penalised mean log loss.

use serde::{Deserialize, Serialize};

use crate::features::Matrix;
use crate::optimize::{Objective, lbfgs};

/// A fitted logistic regression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Linear {
    /// Per feature, the training mean (subtracted before weighting).
    pub means: Vec<f64>,
    /// Per feature, the training standard deviation (0 for a constant
    /// feature, which then has no effect).
    pub scales: Vec<f64>,
    /// Per feature, the change in log-odds for one standard deviation more.
    pub weights: Vec<f64>,
    /// Log-odds of a lead at every feature's mean.
    pub intercept: f64,
    /// The L2 penalty it was fitted with (per lead).
    pub l2: f64,
}

/// Standardised columns, ready for fitting.
struct Standardised {
    columns: Vec<Vec<f32>>,
    rows: usize,
}

fn moments(column: &[f32]) -> (f64, f64) {
    let (mut n, mut sum, mut sq) = (0.0, 0.0, 0.0);
    for &v in column {
        if !v.is_nan() {
            n += 1.0;
            sum += f64::from(v);
            sq += f64::from(v) * f64::from(v);
        }
    }
    if n == 0.0 {
        return (0.0, 0.0);
    }
    let mean = sum / n;
    let var = (sq / n - mean * mean).max(0.0);
    (mean, var.sqrt())
}

impl Linear {
    /// Fits weights to outcomes `y` (1 converted) with optional per-lead
    /// weights and the L2 penalty `l2` (per lead; larger is smoother).
    pub fn fit(x: &Matrix, y: &[u8], sample_weights: Option<&[f64]>, l2: f64) -> Linear {
        let (means, scales): (Vec<f64>, Vec<f64>) = x.columns.iter().map(|c| moments(c)).unzip();
        let z = Standardised {
            rows: x.rows,
            columns: x
                .columns
                .iter()
                .zip(means.iter().zip(&scales))
                .map(|(c, (&m, &s))| standardise(c, m, s))
                .collect(),
        };
        let total_weight: f64 = sample_weights.map_or(x.rows as f64, |w| w.iter().sum());
        let problem = Problem {
            z: &z,
            y,
            w: sample_weights,
            l2,
            total_weight: total_weight.max(f64::MIN_POSITIVE),
        };
        let p = x.width();
        let mut start = vec![0.0; p + 1];
        let positives: f64 = y
            .iter()
            .enumerate()
            .map(|(i, &v)| f64::from(v) * sample_weights.map_or(1.0, |w| w[i]))
            .sum();
        let rate = (positives / problem.total_weight).clamp(1e-6, 1.0 - 1e-6);
        start[p] = (rate / (1.0 - rate)).ln();
        let solution = lbfgs(&problem, start, 500, 1e-7);
        Linear {
            means,
            scales,
            weights: solution[..p].to_vec(),
            intercept: solution[p],
            l2,
        }
    }

    /// Log-odds of conversion for every row of `x`.
    pub fn log_odds(&self, x: &Matrix) -> Vec<f64> {
        let mut out = vec![self.intercept; x.rows];
        for (j, column) in x.columns.iter().enumerate() {
            let (w, m, s) = (self.weights[j], self.means[j], self.scales[j]);
            if w == 0.0 || s == 0.0 {
                continue;
            }
            for (o, &v) in out.iter_mut().zip(column) {
                if !v.is_nan() {
                    *o += w * (f64::from(v) - m) / s;
                }
            }
        }
        out
    }

    /// Per feature, its share of one lead's log-odds (weight x standardised
    /// value); with the intercept they add up to the log-odds.
    pub fn contributions(&self, row: &[f32]) -> Vec<f64> {
        row.iter()
            .enumerate()
            .map(|(j, &v)| {
                if v.is_nan() || self.scales[j] == 0.0 {
                    0.0
                } else {
                    self.weights[j] * (f64::from(v) - self.means[j]) / self.scales[j]
                }
            })
            .collect()
    }
}

fn standardise(column: &[f32], mean: f64, scale: f64) -> Vec<f32> {
    column
        .iter()
        .map(|&v| {
            if v.is_nan() || scale == 0.0 {
                0.0
            } else {
                ((f64::from(v) - mean) / scale) as f32
            }
        })
        .collect()
}

struct Problem<'a> {
    z: &'a Standardised,
    y: &'a [u8],
    w: Option<&'a [f64]>,
    l2: f64,
    total_weight: f64,
}

impl Objective for Problem<'_> {
    fn value_and_gradient(&self, beta: &[f64], gradient: &mut [f64]) -> f64 {
        let p = self.z.columns.len();
        let mut margin = vec![beta[p]; self.z.rows];
        for (column, &b) in self.z.columns.iter().zip(beta) {
            if b != 0.0 {
                for (m, &v) in margin.iter_mut().zip(column) {
                    *m += b * f64::from(v);
                }
            }
        }
        let mut loss = 0.0;
        // Reuse `margin` as the per-row gradient factor (p - y) * weight.
        for (i, m) in margin.iter_mut().enumerate() {
            let w = self.w.map_or(1.0, |w| w[i]);
            let y = f64::from(self.y[i]);
            // log(1 + e^m) - y m, computed stably.
            let softplus = if *m > 0.0 {
                *m + (-*m).exp().ln_1p()
            } else {
                m.exp().ln_1p()
            };
            loss += w * (softplus - y * *m);
            let prob = 1.0 / (1.0 + (-*m).exp());
            *m = w * (prob - y);
        }
        let n = self.total_weight;
        for (j, column) in self.z.columns.iter().enumerate() {
            let g: f64 = column
                .iter()
                .zip(&margin)
                .map(|(&v, &r)| f64::from(v) * r)
                .sum();
            gradient[j] = g / n + self.l2 * beta[j];
        }
        gradient[p] = margin.iter().sum::<f64>() / n;
        let penalty: f64 = beta[..p].iter().map(|b| b * b).sum::<f64>() * self.l2 / 2.0;
        loss / n + penalty
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::synthetic_logistic;

    #[test]
    fn recovers_known_coefficients() {
        // log-odds = -1 + 2 a - 1 b + 0 c, features standard normal.
        let (x, y) = synthetic_logistic(40_000, &[2.0, -1.0, 0.0], -1.0, 7);
        let model = Linear::fit(&x, &y, None, 1e-6);
        // Weights are per standard deviation; the features have sd ~1.
        let per_unit: Vec<f64> = model
            .weights
            .iter()
            .zip(&model.scales)
            .map(|(w, s)| w / s)
            .collect();
        assert!((per_unit[0] - 2.0).abs() < 0.1, "{per_unit:?}");
        assert!((per_unit[1] + 1.0).abs() < 0.1, "{per_unit:?}");
        assert!(per_unit[2].abs() < 0.08, "{per_unit:?}");
        let intercept = model.intercept
            - per_unit
                .iter()
                .zip(&model.means)
                .map(|(w, m)| w * m)
                .sum::<f64>();
        assert!((intercept + 1.0).abs() < 0.1, "{intercept}");
    }

    #[test]
    fn contributions_add_up_to_the_log_odds() {
        let (x, y) = synthetic_logistic(2_000, &[1.0, 0.5], 0.2, 3);
        let model = Linear::fit(&x, &y, None, 1e-3);
        let all = model.log_odds(&x);
        for r in [0, 17, 1999] {
            let sum: f64 = model.contributions(&x.row(r)).iter().sum::<f64>() + model.intercept;
            assert!((sum - all[r]).abs() < 1e-9);
        }
    }

    #[test]
    fn a_stronger_penalty_shrinks_weights() {
        let (x, y) = synthetic_logistic(5_000, &[1.5], 0.0, 5);
        let loose = Linear::fit(&x, &y, None, 1e-4);
        let tight = Linear::fit(&x, &y, None, 1.0);
        assert!(tight.weights[0].abs() < loose.weights[0].abs() / 2.0);
    }
}
