//! Synthetic data with a known answer, for tests and benchmarks: features
//! and outcomes drawn from a formula, so a learner can be checked against
//! the truth.

use crate::features::Matrix;

/// A small deterministic random number generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n.
    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-300);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Shuffles in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// `rows` leads with standard-normal features and outcomes drawn with
/// log-odds `intercept + sum(weights * features)`.
pub fn synthetic_logistic(
    rows: usize,
    weights: &[f64],
    intercept: f64,
    seed: u64,
) -> (Matrix, Vec<u8>) {
    let mut rng = Rng::new(seed);
    let mut columns = vec![Vec::with_capacity(rows); weights.len()];
    let mut y = Vec::with_capacity(rows);
    for _ in 0..rows {
        let mut z = intercept;
        for (c, w) in columns.iter_mut().zip(weights) {
            let v = rng.normal();
            z += w * v;
            c.push(v as f32);
        }
        y.push(u8::from(rng.unit() < sigmoid(z)));
    }
    let names = (0..weights.len()).map(|i| format!("x{i}")).collect();
    (
        Matrix {
            rows,
            names,
            columns,
        },
        y,
    )
}

/// `rows` leads with `width` uniform features where conversion depends on
/// an interaction a line cannot draw: conversion is likely (0.8) when
/// exactly one of x0 and x1 is above 0.5, unlikely (0.1) otherwise; other
/// features are noise, and 5% of x2 is missing.
pub fn synthetic_interaction(rows: usize, width: usize, seed: u64) -> (Matrix, Vec<u8>) {
    let mut rng = Rng::new(seed);
    let mut columns = vec![Vec::with_capacity(rows); width.max(3)];
    let mut y = Vec::with_capacity(rows);
    for _ in 0..rows {
        let mut v = Vec::with_capacity(columns.len());
        for c in columns.iter_mut() {
            let x = rng.unit();
            v.push(x);
            c.push(x as f32);
        }
        if rng.unit() < 0.05
            && let Some(x2) = columns[2].last_mut()
        {
            *x2 = f32::NAN;
        }
        let p = if (v[0] > 0.5) != (v[1] > 0.5) {
            0.8
        } else {
            0.1
        };
        y.push(u8::from(rng.unit() < p));
    }
    let names = (0..columns.len()).map(|i| format!("x{i}")).collect();
    (
        Matrix {
            rows,
            names,
            columns,
        },
        y,
    )
}
