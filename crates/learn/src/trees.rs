//! Histogram gradient-boosted trees for conversion (log loss), grown leaf
//! by leaf as LightGBM does.
//!
//! Each feature's values are cut into at most 255 bins (quantiles of the
//! training data; bin 0 holds missing values, which therefore always go to
//! the left, "low" side of a split). A tree is grown by repeatedly
//! splitting the leaf whose best split lowers the loss most, from
//! per-bin sums of gradients; a child's histogram is its parent's minus its
//! sibling's. A [`Booster`] adds one tree per [`Booster::round`], so
//! cross-validation can watch held-out loss round by round.

use serde::{Deserialize, Serialize};

use crate::features::Matrix;
use crate::sample::Rng;

/// Settings of the tree learner.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TreeParams {
    /// Shrinkage of each tree's values (0..1].
    pub learning_rate: f64,
    /// Leaves per tree.
    pub max_leaves: usize,
    /// Fewest training leads in a leaf.
    pub min_leaf: usize,
    /// Smallest sum of hessians (p(1-p)) in a leaf.
    pub min_hessian: f64,
    /// L2 penalty on leaf values.
    pub l2: f64,
    /// Bins per feature (at most 255).
    pub max_bins: usize,
    /// Share of leads drawn for each tree (1 = all).
    pub row_fraction: f64,
    /// Share of features offered to each tree (1 = all).
    pub feature_fraction: f64,
    /// Seed of the row and feature draws.
    pub seed: u64,
}

impl Default for TreeParams {
    fn default() -> TreeParams {
        TreeParams {
            learning_rate: 0.05,
            max_leaves: 31,
            min_leaf: 20,
            min_hessian: 1e-3,
            l2: 1.0,
            max_bins: 63,
            row_fraction: 0.8,
            feature_fraction: 0.8,
            seed: 42,
        }
    }
}

/// Per feature, the cut points between bins (bin 0: missing; bin b >= 1:
/// values above cut b-1 and at most cut b).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Bins {
    /// Cut points, ascending, per feature.
    pub cuts: Vec<Vec<f32>>,
}

impl Bins {
    /// Chooses cut points from training data.
    pub fn fit(x: &Matrix, max_bins: usize) -> Bins {
        let max_bins = max_bins.clamp(2, 255);
        let cuts = x
            .columns
            .iter()
            .map(|column| {
                let mut values: Vec<f32> = column.iter().copied().filter(|v| !v.is_nan()).collect();
                values.sort_by(f32::total_cmp);
                let mut distinct: Vec<(f32, usize)> = Vec::new();
                for v in values {
                    match distinct.last_mut() {
                        Some((last, n)) if *last == v => *n += 1,
                        _ => distinct.push((v, 1)),
                    }
                }
                let wanted = max_bins - 1; // value bins (bin 0 is missing)
                let mut cuts = Vec::new();
                if distinct.len() <= wanted {
                    for w in distinct.windows(2) {
                        cuts.push(midpoint(w[0].0, w[1].0));
                    }
                } else {
                    let total: usize = distinct.iter().map(|d| d.1).sum();
                    let per_bin = total as f64 / wanted as f64;
                    let mut seen = 0usize;
                    let mut next = per_bin;
                    for w in distinct.windows(2) {
                        seen += w[0].1;
                        if seen as f64 >= next {
                            cuts.push(midpoint(w[0].0, w[1].0));
                            while next <= seen as f64 {
                                next += per_bin;
                            }
                            if cuts.len() == wanted - 1 {
                                break;
                            }
                        }
                    }
                }
                cuts
            })
            .collect();
        Bins { cuts }
    }

    /// The bin of every value, feature by feature.
    pub fn codes(&self, x: &Matrix) -> Binned {
        let mut codes = Vec::with_capacity(x.rows * x.width());
        for (column, cuts) in x.columns.iter().zip(&self.cuts) {
            codes.extend(column.iter().map(|&v| bin_of(cuts, v)));
        }
        Binned {
            rows: x.rows,
            codes,
        }
    }
}

/// Binned training data, feature by feature (one feature's histogram stays
/// in the L1 cache while its column is summed).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Binned {
    /// Rows per feature.
    pub rows: usize,
    /// `codes[feature * rows + row]` is that value's bin.
    pub codes: Vec<u8>,
}

impl Binned {
    fn at(&self, row: usize, feature: usize) -> u8 {
        self.codes[feature * self.rows + row]
    }

    fn column(&self, feature: usize) -> &[u8] {
        &self.codes[feature * self.rows..(feature + 1) * self.rows]
    }
}

fn midpoint(a: f32, b: f32) -> f32 {
    let m = a + (b - a) / 2.0;
    if m >= b { a } else { m }
}

fn bin_of(cuts: &[f32], v: f32) -> u8 {
    if v.is_nan() {
        0
    } else {
        (1 + cuts.partition_point(|&c| c < v)) as u8
    }
}

/// Partial histograms summed side by side (see `Booster::histogram`).
const LANES: usize = 4;

/// One tree node. A node whose `left` is 0 is a leaf (the root is node 0,
/// so no child is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Feature tested.
    pub feature: u32,
    /// Leads with the feature at most this, or missing, go left.
    pub threshold: f32,
    /// Left child.
    pub left: u32,
    /// Right child.
    pub right: u32,
    /// Leaf value (log-odds added), for leaves.
    pub value: f64,
    /// Training leads that reached the node.
    pub cover: f64,
}

impl Node {
    /// True for a leaf.
    pub fn is_leaf(&self) -> bool {
        self.left == 0
    }

    /// Whether a lead with value `v` for the node's feature goes left.
    pub fn goes_left(&self, v: f32) -> bool {
        v.is_nan() || v <= self.threshold
    }
}

/// One regression tree on the log-odds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Nodes; node 0 is the root.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// The leaf value for one lead (`value(feature)` reads its features).
    pub fn value(&self, value: impl Fn(usize) -> f32) -> f64 {
        let mut n = 0;
        loop {
            let node = &self.nodes[n];
            if node.is_leaf() {
                return node.value;
            }
            n = if node.goes_left(value(node.feature as usize)) {
                node.left
            } else {
                node.right
            } as usize;
        }
    }
}

/// A boosted model: log-odds = `base` + the sum of the trees' values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forest {
    /// Starting log-odds (the training conversion rate).
    pub base: f64,
    /// The trees, in order.
    pub trees: Vec<Tree>,
    /// The settings it was grown with.
    pub params: TreeParams,
}

impl Forest {
    /// Log-odds of every row, from the first `rounds` trees.
    pub fn log_odds(&self, x: &Matrix, rounds: usize) -> Vec<f64> {
        use rayon::prelude::*;
        const ROWS: usize = 4096;
        let mut out = vec![self.base; x.rows];
        // Blocks of rows on all cores; each row still sums its trees in order.
        out.par_chunks_mut(ROWS)
            .enumerate()
            .for_each(|(block, chunk)| {
                let start = block * ROWS;
                for tree in self.trees.iter().take(rounds) {
                    for (k, o) in chunk.iter_mut().enumerate() {
                        *o += tree.value(|f| x.columns[f][start + k]);
                    }
                }
            });
        out
    }

    /// Log-odds of one lead.
    pub fn log_odds_row(&self, row: &[f32]) -> f64 {
        self.base + self.trees.iter().map(|t| t.value(|f| row[f])).sum::<f64>()
    }

    /// Keeps only the first `rounds` trees.
    pub fn truncate(&mut self, rounds: usize) {
        self.trees.truncate(rounds);
    }
}

/// Per-bin sums of one leaf's gradients, hessians and leads.
#[derive(Clone, Copy, Default)]
struct Cell {
    g: f64,
    h: f64,
    n: f64,
}

struct Leaf {
    node: usize,
    start: usize,
    end: usize,
    hist: Vec<Cell>,
    best: Option<Split>,
}

#[derive(Clone, Copy)]
struct Split {
    gain: f64,
    feature: usize,
    bin: usize,
}

/// A boosting run in progress on one training set (and optionally an
/// evaluation set watched round by round).
pub struct Booster<'a> {
    params: TreeParams,
    bins: &'a Bins,
    codes: &'a Binned,
    y: &'a [u8],
    weights: Option<&'a [f64]>,
    margin: Vec<f64>,
    offsets: Vec<usize>,
    rng: Rng,
    forest: Forest,
    split_bins: Vec<Vec<u8>>,
    /// The rows it learns from (all rows of `codes` unless given).
    train: Vec<u32>,
    /// The watched rows of a raw matrix, their outcomes, their log-odds.
    eval: Option<Watched<'a>>,
}

/// An evaluation set: rows of a raw matrix, their outcomes, their current
/// log-odds.
type Watched<'a> = (&'a Matrix, Vec<u32>, Vec<u8>, Vec<f64>);

impl<'a> Booster<'a> {
    /// Starts boosting on binned training data.
    pub fn new(
        params: TreeParams,
        bins: &'a Bins,
        codes: &'a Binned,
        y: &'a [u8],
        weights: Option<&'a [f64]>,
    ) -> Booster<'a> {
        Booster::on_rows(
            params,
            bins,
            codes,
            y,
            weights,
            (0..codes.rows as u32).collect(),
        )
    }

    /// Starts boosting on some rows only (`train`, ascending) of binned
    /// data: cross-validation folds share one binned copy of the data.
    /// `y` and `weights` are indexed by row, like `codes`.
    pub fn on_rows(
        params: TreeParams,
        bins: &'a Bins,
        codes: &'a Binned,
        y: &'a [u8],
        weights: Option<&'a [f64]>,
        train: Vec<u32>,
    ) -> Booster<'a> {
        let (mut pos, mut total) = (0.0, 0.0);
        for &i in &train {
            let i = i as usize;
            let w = weights.map_or(1.0, |w| w[i]);
            pos += w * f64::from(y[i]);
            total += w;
        }
        let rate = (pos / total.max(f64::MIN_POSITIVE)).clamp(1e-6, 1.0 - 1e-6);
        let base = (rate / (1.0 - rate)).ln();
        let mut offsets = Vec::with_capacity(bins.cuts.len() + 1);
        let mut at = 0;
        for cuts in &bins.cuts {
            offsets.push(at);
            at += cuts.len() + 2;
        }
        offsets.push(at);
        Booster {
            params,
            bins,
            codes,
            y,
            weights,
            margin: vec![base; y.len()],
            offsets,
            rng: Rng::new(params.seed),
            forest: Forest {
                base,
                trees: Vec::new(),
                params,
            },
            split_bins: Vec::new(),
            train,
            eval: None,
        }
    }

    /// Watches an evaluation set: after each round, [`Booster::eval_log_loss`]
    /// gives its log loss.
    pub fn watch(&mut self, x: &'a Matrix, y: &[u8]) {
        self.watch_rows(x, (0..x.rows as u32).collect(), y.to_vec());
    }

    /// Watches some rows of a raw matrix, with their outcomes (in the same
    /// order).
    pub fn watch_rows(&mut self, x: &'a Matrix, rows: Vec<u32>, y: Vec<u8>) {
        let margin = vec![self.forest.base; rows.len()];
        self.eval = Some((x, rows, y, margin));
    }

    /// Log loss of the evaluation set at the current round.
    pub fn eval_log_loss(&self) -> Option<f64> {
        let (_, _, y, margin) = self.eval.as_ref()?;
        let p: Vec<f64> = margin.iter().map(|&m| sigmoid(m)).collect();
        Some(crate::metrics::log_loss(&p, y))
    }

    /// Log-odds of the evaluation set at the current round.
    pub fn eval_log_odds(&self) -> Option<&[f64]> {
        self.eval.as_ref().map(|(_, _, _, m)| m.as_slice())
    }

    /// The model so far.
    pub fn forest(&self) -> &Forest {
        &self.forest
    }

    /// The model, ending the run.
    pub fn into_forest(self) -> Forest {
        self.forest
    }

    /// Adds one tree.
    pub fn round(&mut self) {
        let n = self.y.len();
        // Gradients of the training rows (other rows stay unused zeros).
        let mut gh: Vec<(f64, f64)> = vec![(0.0, 0.0); n];
        for &i in &self.train {
            let i = i as usize;
            let p = sigmoid(self.margin[i]);
            let w = self.weights.map_or(1.0, |w| w[i]);
            gh[i] = (
                w * (p - f64::from(self.y[i])),
                (w * p * (1.0 - p)).max(1e-16),
            );
        }
        let rows: Vec<u32> = if self.params.row_fraction < 1.0 {
            let fraction = self.params.row_fraction;
            let mut rows: Vec<u32> = self
                .train
                .iter()
                .copied()
                .filter(|_| self.rng.unit() < fraction)
                .collect();
            if rows.len() < 2 * self.params.min_leaf {
                rows = self.train.clone();
            }
            rows
        } else {
            self.train.clone()
        };
        let features = self.bins.cuts.len();
        let mut allowed: Vec<usize> = (0..features).collect();
        if self.params.feature_fraction < 1.0 && features > 1 {
            let keep = ((features as f64 * self.params.feature_fraction).ceil() as usize).max(1);
            self.rng.shuffle(&mut allowed);
            allowed.truncate(keep);
            allowed.sort_unstable();
        }
        let (tree, split_bins) = self.grow(rows, &gh, &allowed);
        // Update the training margins with the binned tree.
        for &i in &self.train {
            let i = i as usize;
            let mut k = 0;
            loop {
                let node = &tree.nodes[k];
                if node.is_leaf() {
                    self.margin[i] += node.value;
                    break;
                }
                let f = node.feature as usize;
                k = if self.codes.at(i, f) <= split_bins[k] {
                    node.left
                } else {
                    node.right
                } as usize;
            }
        }
        if let Some((x, rows, _, margin)) = self.eval.as_mut() {
            for (&r, m) in rows.iter().zip(margin.iter_mut()) {
                *m += tree.value(|f| x.columns[f][r as usize]);
            }
        }
        self.forest.trees.push(tree);
        self.split_bins.push(split_bins);
    }

    /// Sums the rows' gradients per bin of every allowed feature into a
    /// histogram taken from `pool` (or a new one).
    fn histogram(
        &self,
        rows: &[u32],
        gh: &[(f64, f64)],
        slots: &[(usize, usize)],
        pool: &mut Vec<Vec<Cell>>,
    ) -> Vec<Cell> {
        let size = *self.offsets.last().unwrap_or(&0);
        let mut hist = pool.pop().unwrap_or_default();
        hist.clear();
        hist.resize(size, Cell::default());
        // The rows' gradients, gathered once in row order.
        let ordered: Vec<(f64, f64)> = rows.iter().map(|&r| gh[r as usize]).collect();
        // Four interleaved partial histograms per feature: consecutive rows
        // often share a bin (one-hot features), and one running sum per
        // cell would make every update wait for the previous one.
        let mut lanes = [[Cell::default(); 32]; LANES];
        let whole = rows.len() / LANES * LANES;
        for &(f, offset) in slots {
            let column = self.codes.column(f);
            let bins = self.offsets[f + 1] - self.offsets[f];
            let cells = &mut hist[offset..offset + bins];
            // Lanes pay off where runs of rows share a bin: few bins, many
            // rows. A feature with many bins rarely repeats a bin twice in a
            // row, and clearing four copies of its histogram would cost more.
            if bins > 32 || rows.len() < 64 {
                for (&r, &(g, h)) in rows.iter().zip(&ordered) {
                    let c = &mut cells[column[r as usize] as usize];
                    c.g += g;
                    c.h += h;
                    c.n += 1.0;
                }
                continue;
            }
            for lane in lanes.iter_mut() {
                lane[..bins].fill(Cell::default());
            }
            for (chunk, grads) in rows[..whole]
                .chunks_exact(LANES)
                .zip(ordered[..whole].chunks_exact(LANES))
            {
                for (lane, (&r, &(g, h))) in chunk.iter().zip(grads).enumerate() {
                    let c = &mut lanes[lane][column[r as usize] as usize];
                    c.g += g;
                    c.h += h;
                    c.n += 1.0;
                }
            }
            for (&r, &(g, h)) in rows[whole..].iter().zip(&ordered[whole..]) {
                let c = &mut lanes[0][column[r as usize] as usize];
                c.g += g;
                c.h += h;
                c.n += 1.0;
            }
            for (b, cell) in cells.iter_mut().enumerate() {
                for lane in &lanes {
                    cell.g += lane[b].g;
                    cell.h += lane[b].h;
                    cell.n += lane[b].n;
                }
            }
        }
        hist
    }

    fn best_split(&self, hist: &[Cell], allowed: &[usize]) -> Option<Split> {
        let p = &self.params;
        let mut best: Option<Split> = None;
        // Every feature's bins hold the same leads: one total serves all.
        let &first = allowed.first()?;
        let total = hist[self.offsets[first]..self.offsets[first + 1]]
            .iter()
            .fold(Cell::default(), |a, c| Cell {
                g: a.g + c.g,
                h: a.h + c.h,
                n: a.n + c.n,
            });
        let parent = total.g * total.g / (total.h + p.l2);
        let min_leaf = p.min_leaf as f64;
        // Two passes per feature: running sums, then every bin's gain with
        // no branches (so the divisions vectorise), then the largest.
        let (mut lg, mut lh, mut ln) = ([0f64; 256], [0f64; 256], [0f64; 256]);
        let mut gains = [0f64; 256];
        for &f in allowed {
            let cells = &hist[self.offsets[f]..self.offsets[f + 1]];
            let nb = cells.len() - 1;
            let mut left = Cell::default();
            for (b, c) in cells[..nb].iter().enumerate() {
                left.g += c.g;
                left.h += c.h;
                left.n += c.n;
                lg[b] = left.g;
                lh[b] = left.h;
                ln[b] = left.n;
            }
            for b in 0..nb {
                let (rg, rh, rn) = (total.g - lg[b], total.h - lh[b], total.n - ln[b]);
                let gain = lg[b] * lg[b] / (lh[b] + p.l2) + rg * rg / (rh + p.l2) - parent;
                // An empty bin moves nothing: the same split as the bin before.
                let ok = cells[b].n > 0.0
                    && ln[b] >= min_leaf
                    && rn >= min_leaf
                    && lh[b] >= p.min_hessian
                    && rh >= p.min_hessian;
                gains[b] = if ok { gain } else { f64::NEG_INFINITY };
            }
            let (mut top, mut at) = (1e-12, usize::MAX);
            for (b, &gain) in gains[..nb].iter().enumerate() {
                if gain > top {
                    top = gain;
                    at = b;
                }
            }
            if at != usize::MAX && best.is_none_or(|s| top > s.gain) {
                best = Some(Split {
                    gain: top,
                    feature: f,
                    bin: at,
                });
            }
        }
        best
    }

    fn grow(&self, mut rows: Vec<u32>, gh: &[(f64, f64)], allowed: &[usize]) -> (Tree, Vec<u8>) {
        let p = self.params;
        let slots: Vec<(usize, usize)> = allowed.iter().map(|&f| (f, self.offsets[f])).collect();
        let mut pool: Vec<Vec<Cell>> = Vec::new();
        let splittable = |n: usize| n >= 2 * p.min_leaf;
        let mut nodes = vec![Node {
            feature: 0,
            threshold: 0.0,
            left: 0,
            right: 0,
            value: 0.0,
            cover: rows.len() as f64,
        }];
        let mut split_bins = vec![0u8];
        let root_hist = self.histogram(&rows, gh, &slots, &mut pool);
        let best = if splittable(rows.len()) {
            self.best_split(&root_hist, allowed)
        } else {
            None
        };
        let mut leaves = vec![Leaf {
            node: 0,
            start: 0,
            end: rows.len(),
            hist: root_hist,
            best,
        }];
        let mut scratch: Vec<u32> = Vec::with_capacity(rows.len());
        while leaves.len() < p.max_leaves {
            let Some((li, split)) = leaves
                .iter()
                .enumerate()
                .filter_map(|(i, l)| l.best.map(|s| (i, s)))
                .max_by(|a, b| a.1.gain.total_cmp(&b.1.gain))
            else {
                break;
            };
            let leaf = leaves.swap_remove(li);
            // Partition the leaf's rows, stably: left then right.
            scratch.clear();
            let mut write = leaf.start;
            for i in leaf.start..leaf.end {
                let r = rows[i];
                if self.codes.at(r as usize, split.feature) as usize <= split.bin {
                    rows[write] = r;
                    write += 1;
                } else {
                    scratch.push(r);
                }
            }
            rows[write..leaf.end].copy_from_slice(&scratch);
            let mid = write;
            let (small, large_is_left) = if mid - leaf.start <= leaf.end - mid {
                ((leaf.start, mid), false)
            } else {
                ((mid, leaf.end), true)
            };
            let small_hist = self.histogram(&rows[small.0..small.1], gh, &slots, &mut pool);
            let mut large_hist = leaf.hist;
            for (l, s) in large_hist.iter_mut().zip(&small_hist) {
                l.g -= s.g;
                l.h -= s.h;
                l.n -= s.n;
            }
            let (left_hist, right_hist) = if large_is_left {
                (large_hist, small_hist)
            } else {
                (small_hist, large_hist)
            };
            let cuts = &self.bins.cuts[split.feature];
            let threshold = if split.bin == 0 {
                // Missing values alone against every value: f32::MIN
                // (not -inf) keeps the threshold finite for JSON.
                f32::MIN
            } else {
                cuts[split.bin - 1]
            };
            let left_node = nodes.len();
            for (start, end) in [(leaf.start, mid), (mid, leaf.end)] {
                nodes.push(Node {
                    feature: 0,
                    threshold: 0.0,
                    left: 0,
                    right: 0,
                    value: 0.0,
                    cover: (end - start) as f64,
                });
                split_bins.push(0);
            }
            let parent = &mut nodes[leaf.node];
            parent.feature = split.feature as u32;
            parent.threshold = threshold;
            parent.left = left_node as u32;
            parent.right = left_node as u32 + 1;
            split_bins[leaf.node] = split.bin as u8;
            for (node, (start, end), hist) in [
                (left_node, (leaf.start, mid), left_hist),
                (left_node + 1, (mid, leaf.end), right_hist),
            ] {
                let best = if splittable(end - start) {
                    self.best_split(&hist, allowed)
                } else {
                    None
                };
                if best.is_none() {
                    // A leaf that will not split needs no histogram.
                    pool.push(hist);
                    leaves.push(Leaf {
                        node,
                        start,
                        end,
                        hist: Vec::new(),
                        best,
                    });
                } else {
                    leaves.push(Leaf {
                        node,
                        start,
                        end,
                        hist,
                        best,
                    });
                }
            }
        }
        for leaf in &leaves {
            let (sg, sh) = rows[leaf.start..leaf.end]
                .iter()
                .fold((0.0, 0.0), |(a, b), &r| {
                    let (g, h) = gh[r as usize];
                    (a + g, b + h)
                });
            nodes[leaf.node].value = -sg / (sh + p.l2) * p.learning_rate;
        }
        (Tree { nodes }, split_bins)
    }
}

/// The logistic function: log-odds to probability.
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::roc_auc;
    use crate::sample::synthetic_interaction;

    fn train(x: &Matrix, y: &[u8], rounds: usize, params: TreeParams) -> Forest {
        let bins = Bins::fit(x, params.max_bins);
        let codes = bins.codes(x);
        let mut b = Booster::new(params, &bins, &codes, y, None);
        for _ in 0..rounds {
            b.round();
        }
        b.into_forest()
    }

    #[test]
    fn bins_put_missing_first_and_respect_cuts() {
        let x = Matrix {
            rows: 5,
            names: vec!["a".into()],
            columns: vec![vec![3.0, f32::NAN, 1.0, 2.0, 3.0]],
        };
        let bins = Bins::fit(&x, 255);
        assert_eq!(bins.cuts[0], vec![1.5, 2.5]);
        assert_eq!(bins.codes(&x).codes, vec![3, 0, 1, 2, 3]);
        // Many distinct values: no more bins than asked.
        let many = Matrix {
            rows: 1000,
            names: vec!["a".into()],
            columns: vec![(0..1000).map(|i| i as f32).collect()],
        };
        let bins = Bins::fit(&many, 16);
        assert!(
            bins.cuts[0].len() <= 14 && bins.cuts[0].len() >= 10,
            "{:?}",
            bins.cuts[0]
        );
        assert!(bins.cuts[0].windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn learns_an_interaction_a_line_cannot() {
        let (x, y) = synthetic_interaction(6_000, 5, 11);
        let (tx, ty) = synthetic_interaction(3_000, 5, 12);
        let forest = train(&x, &y, 150, TreeParams::default());
        let auc = roc_auc(&forest.log_odds(&tx, usize::MAX), &ty);
        // The best possible AUC here is 0.853; a line cannot beat chance.
        let line = crate::linear::Linear::fit(&x, &y, None, 1e-3);
        let line_auc = roc_auc(&line.log_odds(&tx), &ty);
        assert!(auc > 0.82 && line_auc < 0.6, "trees {auc}, line {line_auc}");
        // x0 and x1 matter more than any noise feature.
        let mut effect = [0.0f64; 5];
        for r in 0..500 {
            for (e, c) in effect
                .iter_mut()
                .zip(crate::shap::contributions(&forest, &tx.row(r)))
            {
                *e += c.abs();
            }
        }
        let noise = effect[2..].iter().copied().fold(0.0, f64::max);
        assert!(effect[0].min(effect[1]) > 2.0 * noise, "{effect:?}");
    }

    #[test]
    fn binned_and_raw_paths_agree_on_training_rows() {
        let (x, y) = synthetic_interaction(2_000, 4, 3);
        let params = TreeParams::default();
        let bins = Bins::fit(&x, params.max_bins);
        let codes = bins.codes(&x);
        let mut b = Booster::new(params, &bins, &codes, &y, None);
        for _ in 0..20 {
            b.round();
        }
        let raw = b.forest().log_odds(&x, usize::MAX);
        for (a, m) in raw.iter().zip(&b.margin) {
            assert!((a - m).abs() < 1e-9, "{a} vs {m}");
        }
    }

    #[test]
    fn leaves_respect_the_minimum_size() {
        let (x, y) = synthetic_interaction(500, 3, 9);
        let params = TreeParams {
            min_leaf: 40,
            row_fraction: 1.0,
            ..TreeParams::default()
        };
        let forest = train(&x, &y, 10, params);
        for tree in &forest.trees {
            for node in &tree.nodes {
                assert!(node.cover >= 40.0);
            }
        }
    }
}
