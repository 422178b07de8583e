//! L-BFGS: minimises a smooth function from its value and gradient, for the
//! logistic regressions (the learner, probability calibration, learned
//! points).

use std::collections::VecDeque;

/// A smooth function to minimise.
pub trait Objective {
    /// The value at `x`; writes the gradient into `gradient`.
    fn value_and_gradient(&self, x: &[f64], gradient: &mut [f64]) -> f64;
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Minimises `f` from `x`, stopping after `max_iterations` or when the
/// largest gradient component is below `tolerance`, or the value stops
/// decreasing (relative change under `tolerance`).
pub fn lbfgs(
    f: &impl Objective,
    mut x: Vec<f64>,
    max_iterations: usize,
    tolerance: f64,
) -> Vec<f64> {
    const MEMORY: usize = 10;
    let n = x.len();
    let mut g = vec![0.0; n];
    let mut value = f.value_and_gradient(&x, &mut g);
    let mut history: VecDeque<(Vec<f64>, Vec<f64>, f64)> = VecDeque::new();
    let mut trial = vec![0.0; n];
    let mut trial_g = vec![0.0; n];
    for iteration in 0..max_iterations {
        if g.iter().fold(0.0f64, |m, v| m.max(v.abs())) < tolerance {
            break;
        }
        // Two-loop recursion: d = -H g.
        let mut d: Vec<f64> = g.iter().map(|v| -v).collect();
        let mut alphas = Vec::with_capacity(history.len());
        for (s, y, rho) in history.iter().rev() {
            let a = rho * dot(s, &d);
            for (di, yi) in d.iter_mut().zip(y) {
                *di -= a * yi;
            }
            alphas.push(a);
        }
        if let Some((s, y, _)) = history.back() {
            let gamma = dot(s, y) / dot(y, y);
            d.iter_mut().for_each(|v| *v *= gamma);
        }
        for ((s, y, rho), a) in history.iter().zip(alphas.into_iter().rev()) {
            let b = rho * dot(y, &d);
            for (di, si) in d.iter_mut().zip(s) {
                *di += (a - b) * si;
            }
        }
        let mut slope = dot(&g, &d);
        if slope >= 0.0 {
            history.clear();
            d = g.iter().map(|v| -v).collect();
            slope = dot(&g, &d);
        }
        let mut step = if iteration == 0 && history.is_empty() {
            (1.0 / dot(&g, &g).sqrt()).min(1.0)
        } else {
            1.0
        };
        // Backtracking line search (Armijo condition).
        let mut new_value = f64::INFINITY;
        for _ in 0..50 {
            for ((t, xi), di) in trial.iter_mut().zip(&x).zip(&d) {
                *t = xi + step * di;
            }
            new_value = f.value_and_gradient(&trial, &mut trial_g);
            if new_value.is_finite() && new_value <= value + 1e-4 * step * slope {
                break;
            }
            step *= 0.5;
        }
        if new_value.is_nan() || new_value > value {
            break;
        }
        let s: Vec<f64> = trial.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = trial_g.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 {
            if history.len() == MEMORY {
                history.pop_front();
            }
            history.push_back((s, y, 1.0 / sy));
        }
        std::mem::swap(&mut x, &mut trial);
        std::mem::swap(&mut g, &mut trial_g);
        let decrease = value - new_value;
        value = new_value;
        if decrease <= tolerance * value.abs().max(1.0) * 1e-3 {
            break;
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rosenbrock;
    impl Objective for Rosenbrock {
        fn value_and_gradient(&self, x: &[f64], g: &mut [f64]) -> f64 {
            let (a, b) = (x[0], x[1]);
            g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
            g[1] = 200.0 * (b - a * a);
            (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
        }
    }

    #[test]
    fn finds_the_rosenbrock_minimum() {
        let x = lbfgs(&Rosenbrock, vec![-1.2, 1.0], 1000, 1e-10);
        assert!(
            (x[0] - 1.0).abs() < 1e-4 && (x[1] - 1.0).abs() < 1e-4,
            "{x:?}"
        );
    }
}
