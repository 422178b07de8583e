//! Probability calibration (Platt scaling): a two-number correction
//! `p = 1 / (1 + e^-(a * log_odds + b))` fitted on held-out predictions, so
//! that "30%" means three in ten leads convert.

use serde::{Deserialize, Serialize};

use crate::optimize::{Objective, lbfgs};
use crate::trees::sigmoid;

/// A fitted correction from a learner's log-odds to a probability.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Platt {
    /// Slope on the log-odds.
    pub a: f64,
    /// Offset.
    pub b: f64,
}

impl Platt {
    /// No correction.
    pub const IDENTITY: Platt = Platt { a: 1.0, b: 0.0 };

    /// Fits the correction on held-out log-odds and their outcomes.
    pub fn fit(log_odds: &[f64], labels: &[u8]) -> Platt {
        struct Fit<'a>(&'a [f64], &'a [u8]);
        impl Objective for Fit<'_> {
            fn value_and_gradient(&self, x: &[f64], g: &mut [f64]) -> f64 {
                let (mut loss, mut ga, mut gb) = (0.0, 0.0, 0.0);
                for (&m, &y) in self.0.iter().zip(self.1) {
                    let z = x[0] * m + x[1];
                    let y = f64::from(y);
                    loss += if z > 0.0 {
                        z + (-z).exp().ln_1p()
                    } else {
                        z.exp().ln_1p()
                    } - y * z;
                    let r = sigmoid(z) - y;
                    ga += r * m;
                    gb += r;
                }
                let n = self.0.len().max(1) as f64;
                g[0] = ga / n;
                g[1] = gb / n;
                loss / n
            }
        }
        let x = lbfgs(&Fit(log_odds, labels), vec![1.0, 0.0], 200, 1e-9);
        Platt { a: x[0], b: x[1] }
    }

    /// The calibrated probability of a log-odds.
    pub fn probability(&self, log_odds: f64) -> f64 {
        sigmoid(self.a * log_odds + self.b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::Rng;

    #[test]
    fn corrects_overconfident_log_odds() {
        // True log-odds z; the learner says 3z - 1.
        let mut rng = Rng::new(4);
        let (mut said, mut y) = (Vec::new(), Vec::new());
        for _ in 0..20_000 {
            let z = rng.normal();
            said.push(3.0 * z - 1.0);
            y.push(u8::from(rng.unit() < sigmoid(z)));
        }
        let p = Platt::fit(&said, &y);
        assert!(
            (p.a - 1.0 / 3.0).abs() < 0.03 && (p.b - 1.0 / 3.0).abs() < 0.05,
            "{p:?}"
        );
    }
}
