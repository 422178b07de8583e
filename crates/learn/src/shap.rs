//! Why a tree model gives a lead its log-odds: per-feature contributions by
//! TreeSHAP (Lundberg et al., 2018, the path-dependent algorithm), exact
//! Shapley values of the trees with training covers standing in for the
//! data. Contributions plus the expected value add up to the log-odds.

use crate::trees::{Forest, Tree};

#[derive(Clone, Copy, Debug)]
struct PathElement {
    feature: i64,
    zero_fraction: f64,
    one_fraction: f64,
    weight: f64,
}

/// The forest's mean log-odds over its training leads (what the
/// contributions start from).
pub fn expected_log_odds(forest: &Forest) -> f64 {
    forest.base + forest.trees.iter().map(expected_value).sum::<f64>()
}

fn expected_value(tree: &Tree) -> f64 {
    let root = tree.nodes[0].cover.max(f64::MIN_POSITIVE);
    tree.nodes
        .iter()
        .filter(|n| n.is_leaf())
        .map(|n| n.value * n.cover / root)
        .sum()
}

/// Per feature, its contribution to one lead's log-odds (`row` is the
/// lead's encoded features).
pub fn contributions(forest: &Forest, row: &[f32]) -> Vec<f64> {
    let mut phi = vec![0.0; row.len()];
    for tree in &forest.trees {
        recurse(tree, row, &mut phi, 0, 0, &[], 1.0, 1.0, -1);
    }
    phi
}

fn extend(
    path: &mut [PathElement],
    depth: usize,
    zero_fraction: f64,
    one_fraction: f64,
    feature: i64,
) {
    path[depth] = PathElement {
        feature,
        zero_fraction,
        one_fraction,
        weight: if depth == 0 { 1.0 } else { 0.0 },
    };
    let d = depth as f64;
    for i in (0..depth).rev() {
        path[i + 1].weight += one_fraction * path[i].weight * (i + 1) as f64 / (d + 1.0);
        path[i].weight = zero_fraction * path[i].weight * (d - i as f64) / (d + 1.0);
    }
}

fn unwind(path: &mut [PathElement], depth: usize, index: usize) {
    let one = path[index].one_fraction;
    let zero = path[index].zero_fraction;
    let d = depth as f64;
    let mut next = path[depth].weight;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let tmp = path[i].weight;
            path[i].weight = next * (d + 1.0) / ((i + 1) as f64 * one);
            next = tmp - path[i].weight * zero * (d - i as f64) / (d + 1.0);
        } else {
            path[i].weight = path[i].weight * (d + 1.0) / (zero * (d - i as f64));
        }
    }
    for i in index..depth {
        path[i].feature = path[i + 1].feature;
        path[i].zero_fraction = path[i + 1].zero_fraction;
        path[i].one_fraction = path[i + 1].one_fraction;
    }
}

fn unwound_sum(path: &[PathElement], depth: usize, index: usize) -> f64 {
    let one = path[index].one_fraction;
    let zero = path[index].zero_fraction;
    let d = depth as f64;
    let mut next = path[depth].weight;
    let mut total = 0.0;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let tmp = next * (d + 1.0) / ((i + 1) as f64 * one);
            total += tmp;
            next = path[i].weight - tmp * zero * (d - i as f64) / (d + 1.0);
        } else {
            total += path[i].weight / zero / ((d - i as f64) / (d + 1.0));
        }
    }
    total
}

#[allow(clippy::too_many_arguments)]
fn recurse(
    tree: &Tree,
    row: &[f32],
    phi: &mut [f64],
    node: usize,
    mut depth: usize,
    parent: &[PathElement],
    zero_fraction: f64,
    one_fraction: f64,
    feature: i64,
) {
    let mut path: Vec<PathElement> = parent[..depth].to_vec();
    path.push(PathElement {
        feature: 0,
        zero_fraction: 0.0,
        one_fraction: 0.0,
        weight: 0.0,
    });
    extend(&mut path, depth, zero_fraction, one_fraction, feature);
    let n = &tree.nodes[node];
    if n.is_leaf() {
        for i in 1..=depth {
            let w = unwound_sum(&path, depth, i);
            let e = path[i];
            phi[e.feature as usize] += w * (e.one_fraction - e.zero_fraction) * n.value;
        }
        return;
    }
    let split = n.feature as usize;
    let (hot, cold) = if n.goes_left(row[split]) {
        (n.left, n.right)
    } else {
        (n.right, n.left)
    };
    let cover = n.cover.max(f64::MIN_POSITIVE);
    let hot_zero = tree.nodes[hot as usize].cover / cover;
    let cold_zero = tree.nodes[cold as usize].cover / cover;
    let (mut incoming_zero, mut incoming_one) = (1.0, 1.0);
    if let Some(k) = (1..=depth).find(|&k| path[k].feature == split as i64) {
        incoming_zero = path[k].zero_fraction;
        incoming_one = path[k].one_fraction;
        unwind(&mut path, depth, k);
        depth -= 1;
    }
    recurse(
        tree,
        row,
        phi,
        hot as usize,
        depth + 1,
        &path,
        hot_zero * incoming_zero,
        incoming_one,
        split as i64,
    );
    recurse(
        tree,
        row,
        phi,
        cold as usize,
        depth + 1,
        &path,
        cold_zero * incoming_zero,
        0.0,
        split as i64,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::synthetic_interaction;
    use crate::trees::{Bins, Booster, Node, TreeParams};

    fn leaf(value: f64, cover: f64) -> Node {
        Node {
            feature: 0,
            threshold: 0.0,
            left: 0,
            right: 0,
            value,
            cover,
        }
    }

    #[test]
    fn one_split_by_hand() {
        // x0 <= 0.5 -> 1.0 (cover 30), else 3.0 (cover 10); mean 1.5.
        let tree = Tree {
            nodes: vec![
                Node {
                    feature: 0,
                    threshold: 0.5,
                    left: 1,
                    right: 2,
                    value: 0.0,
                    cover: 40.0,
                },
                leaf(1.0, 30.0),
                leaf(3.0, 10.0),
            ],
        };
        let forest = Forest {
            base: 0.0,
            trees: vec![tree],
            params: TreeParams::default(),
        };
        assert_eq!(expected_log_odds(&forest), 1.5);
        assert_eq!(contributions(&forest, &[0.9, 7.0]), vec![1.5, 0.0]);
        assert_eq!(contributions(&forest, &[0.1, 7.0]), vec![-0.5, 0.0]);
    }

    #[test]
    fn contributions_add_up_to_the_log_odds() {
        let (x, y) = synthetic_interaction(3_000, 6, 5);
        let params = TreeParams::default();
        let bins = Bins::fit(&x, params.max_bins);
        let codes = bins.codes(&x);
        let mut b = Booster::new(params, &bins, &codes, &y, None);
        for _ in 0..40 {
            b.round();
        }
        let forest = b.into_forest();
        let base = expected_log_odds(&forest);
        for r in [0, 1, 100, 2999] {
            let row = x.row(r);
            let phi = contributions(&forest, &row);
            let total = base + phi.iter().sum::<f64>();
            assert!(
                (total - forest.log_odds_row(&row)).abs() < 1e-9,
                "{total} vs {}",
                forest.log_odds_row(&row)
            );
        }
        // The noise features matter far less than x0 and x1 on average.
        let mut mean_abs = vec![0.0; 6];
        for r in 0..500 {
            for (m, p) in mean_abs.iter_mut().zip(contributions(&forest, &x.row(r))) {
                *m += p.abs();
            }
        }
        assert!(
            mean_abs[0] > 3.0 * mean_abs[3] && mean_abs[1] > 3.0 * mean_abs[4],
            "{mean_abs:?}"
        );
    }
}
