//! Stratified k-fold cross-validation: every fold keeps the overall share of
//! converters, and a fixed seed gives the same folds every time.

use crate::sample::Rng;

/// For each lead, its fold (0..k): converters and non-converters are each
/// shuffled and dealt round-robin.
pub fn stratified_folds(labels: &[u8], k: usize, seed: u64) -> Vec<usize> {
    let mut rng = Rng::new(seed);
    let mut fold = vec![0; labels.len()];
    for class in [0u8, 1] {
        let mut rows: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        rng.shuffle(&mut rows);
        for (i, r) in rows.into_iter().enumerate() {
            fold[r] = i % k;
        }
    }
    fold
}

/// The training and held-out rows of fold `f`.
pub fn split(folds: &[usize], f: usize) -> (Vec<usize>, Vec<usize>) {
    (0..folds.len()).partition(|&i| folds[i] != f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_balanced_stratified_and_repeatable() {
        let labels: Vec<u8> = (0..1000).map(|i| u8::from(i % 10 == 0)).collect();
        let folds = stratified_folds(&labels, 5, 1);
        assert_eq!(folds, stratified_folds(&labels, 5, 1));
        assert_ne!(folds, stratified_folds(&labels, 5, 2));
        for f in 0..5 {
            let (train, held) = split(&folds, f);
            assert_eq!(train.len() + held.len(), 1000);
            assert_eq!(held.len(), 200);
            assert_eq!(held.iter().filter(|&&i| labels[i] == 1).count(), 20);
        }
    }
}
