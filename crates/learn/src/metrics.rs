//! How good predictions are: ranking (ROC AUC, PR AUC), probability quality
//! (log loss, Brier score), and the tables a marketer reads (conversion and
//! lift per decile, calibration).

use serde::Serialize;

/// Area under the ROC curve: the chance that a random converter is ranked
/// above a random non-converter (ties count half). NaN if one class is
/// absent.
pub fn roc_auc(scores: &[f64], labels: &[u8]) -> f64 {
    let order = sorted_ascending(scores);
    let positives = labels.iter().filter(|&&y| y == 1).count() as f64;
    let negatives = labels.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return f64::NAN;
    }
    // Sum of the (tie-averaged, 1-based) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let average_rank = (i + j) as f64 / 2.0 + 1.0;
        let group_positives = order[i..=j].iter().filter(|&&k| labels[k] == 1).count() as f64;
        rank_sum += average_rank * group_positives;
        i = j + 1;
    }
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

/// Area under the precision-recall curve as average precision: the mean,
/// over converters, of the precision at the threshold that first includes
/// them (tied scores taken together). NaN without converters.
pub fn pr_auc(scores: &[f64], labels: &[u8]) -> f64 {
    let mut order = sorted_ascending(scores);
    order.reverse();
    let positives = labels.iter().filter(|&&y| y == 1).count() as f64;
    if positives == 0.0 {
        return f64::NAN;
    }
    let (mut tp, mut seen, mut ap, mut last_recall) = (0.0, 0.0, 0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        for &k in &order[i..=j] {
            tp += f64::from(labels[k]);
            seen += 1.0;
        }
        let recall = tp / positives;
        ap += (recall - last_recall) * (tp / seen);
        last_recall = recall;
        i = j + 1;
    }
    ap
}

/// Mean negative log-likelihood of the outcomes (natural log; lower is
/// better). Probabilities are clipped to [1e-15, 1 - 1e-15].
pub fn log_loss(probabilities: &[f64], labels: &[u8]) -> f64 {
    let sum: f64 = probabilities
        .iter()
        .zip(labels)
        .map(|(&p, &y)| {
            let p = p.clamp(1e-15, 1.0 - 1e-15);
            if y == 1 { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum();
    sum / labels.len().max(1) as f64
}

/// Mean squared difference between probability and outcome (0 is perfect).
pub fn brier(probabilities: &[f64], labels: &[u8]) -> f64 {
    let sum: f64 = probabilities
        .iter()
        .zip(labels)
        .map(|(&p, &y)| (p - f64::from(y)).powi(2))
        .sum();
    sum / labels.len().max(1) as f64
}

/// One tenth of the leads, ranked by predicted probability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decile {
    /// 1 is the top tenth (highest predictions).
    pub decile: usize,
    /// Leads in it.
    pub leads: usize,
    /// Converters in it.
    pub conversions: usize,
    /// Conversions / leads.
    pub conversion_rate: f64,
    /// Conversion rate over the overall rate (1 = no better than random).
    pub lift: f64,
    /// Share of all converters found in this decile and those above it.
    pub cumulative_capture: f64,
}

/// Conversion rate and lift per decile, best first.
pub fn deciles(scores: &[f64], labels: &[u8]) -> Vec<Decile> {
    let mut order = sorted_ascending(scores);
    order.reverse();
    let n = order.len();
    let total: usize = labels.iter().map(|&y| usize::from(y)).sum();
    let overall = total as f64 / n.max(1) as f64;
    let mut out = Vec::new();
    let mut captured = 0;
    for d in 0..10 {
        let (start, end) = (d * n / 10, (d + 1) * n / 10);
        if start == end {
            continue;
        }
        let conversions: usize = order[start..end]
            .iter()
            .map(|&k| usize::from(labels[k]))
            .sum();
        captured += conversions;
        let rate = conversions as f64 / (end - start) as f64;
        out.push(Decile {
            decile: d + 1,
            leads: end - start,
            conversions,
            conversion_rate: rate,
            lift: if overall > 0.0 { rate / overall } else { 0.0 },
            cumulative_capture: if total > 0 {
                captured as f64 / total as f64
            } else {
                0.0
            },
        });
    }
    out
}

/// Predicted against observed conversion, for one range of predictions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibrationBin {
    /// Lower end of the predicted probability range.
    pub from: f64,
    /// Upper end (exclusive, except for the last bin).
    pub to: f64,
    /// Leads predicted in this range.
    pub leads: usize,
    /// Mean predicted probability.
    pub predicted: f64,
    /// Observed conversion rate.
    pub observed: f64,
}

/// Calibration table: ten equal ranges of predicted probability; empty
/// ranges are left out.
pub fn calibration(probabilities: &[f64], labels: &[u8]) -> Vec<CalibrationBin> {
    let mut sums = [(0usize, 0.0f64, 0usize); 10];
    for (&p, &y) in probabilities.iter().zip(labels) {
        let b = ((p * 10.0) as usize).min(9);
        sums[b].0 += 1;
        sums[b].1 += p;
        sums[b].2 += usize::from(y);
    }
    sums.iter()
        .enumerate()
        .filter(|(_, s)| s.0 > 0)
        .map(|(b, &(n, p, y))| CalibrationBin {
            from: b as f64 / 10.0,
            to: (b + 1) as f64 / 10.0,
            leads: n,
            predicted: p / n as f64,
            observed: y as f64 / n as f64,
        })
        .collect()
}

/// Every measure of one set of predictions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    /// Leads measured.
    pub leads: usize,
    /// Converters among them.
    pub conversions: usize,
    /// ROC AUC.
    pub roc_auc: f64,
    /// PR AUC (average precision).
    pub pr_auc: f64,
    /// Log loss.
    pub log_loss: f64,
    /// Brier score.
    pub brier: f64,
    /// Conversion and lift per decile.
    pub deciles: Vec<Decile>,
    /// Calibration table.
    pub calibration: Vec<CalibrationBin>,
}

impl Metrics {
    /// Measures probabilities against outcomes.
    pub fn of(probabilities: &[f64], labels: &[u8]) -> Metrics {
        Metrics {
            leads: labels.len(),
            conversions: labels.iter().map(|&y| usize::from(y)).sum(),
            roc_auc: roc_auc(probabilities, labels),
            pr_auc: pr_auc(probabilities, labels),
            log_loss: log_loss(probabilities, labels),
            brier: brier(probabilities, labels),
            deciles: deciles(probabilities, labels),
            calibration: calibration(probabilities, labels),
        }
    }
}

fn sorted_ascending(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_by_hand() {
        // Converter 0.35 beats 0.1 only (1 of 3 pairs); converter 0.8 beats
        // 0.1 and 0.4 and ties 0.8 (2.5 of 3).
        let s = [0.1, 0.4, 0.35, 0.8, 0.8];
        let y = [0, 0, 1, 1, 0];
        assert!((roc_auc(&s, &y) - 3.5 / 6.0).abs() < 1e-12);
        assert_eq!(roc_auc(&[0.1, 0.9], &[0, 1]), 1.0);
        assert_eq!(roc_auc(&[0.9, 0.1], &[0, 1]), 0.0);
        assert!(roc_auc(&[0.5, 0.6], &[1, 1]).is_nan());
    }

    #[test]
    fn average_precision_by_hand() {
        // Ranked: 0.9 (1), 0.8 (0), 0.7 (1), 0.1 (0): AP = (1/2)*1 + (1/2)*(2/3)
        let ap = pr_auc(&[0.1, 0.9, 0.7, 0.8], &[0, 1, 1, 0]);
        assert!((ap - (0.5 + 1.0 / 3.0)).abs() < 1e-12);
    }

    #[test]
    fn probability_losses_by_hand() {
        let p = [0.8, 0.3];
        let y = [1, 0];
        assert!((log_loss(&p, &y) - (-(0.8f64.ln()) - 0.7f64.ln()) / 2.0).abs() < 1e-12);
        assert!((brier(&p, &y) - (0.04 + 0.09) / 2.0).abs() < 1e-12);
        assert!(log_loss(&[0.0], &[1]).is_finite());
    }

    #[test]
    fn deciles_and_calibration_add_up() {
        let scores: Vec<f64> = (0..100).map(|i| i as f64 / 100.0).collect();
        let labels: Vec<u8> = (0..100).map(|i| u8::from(i >= 80)).collect();
        let d = deciles(&scores, &labels);
        assert_eq!(d.len(), 10);
        assert_eq!(d[0].conversions, 10);
        assert_eq!(d[0].lift, 5.0);
        assert_eq!(d[1].cumulative_capture, 1.0);
        assert_eq!(d[9].conversions, 0);
        let c = calibration(&scores, &labels);
        assert_eq!(c.iter().map(|b| b.leads).sum::<usize>(), 100);
        assert_eq!(c[9].observed, 1.0);
    }
}
