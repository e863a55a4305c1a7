//! Which weights a pattern keeps, given a score per weight (higher = more important).
//!
//! Ties: of two equal scores the lower index (along k) is kept. Every method goes through
//! here or follows the same rule, so a pruned model does not depend on sort stability.

use std::cmp::Ordering;

use crate::error::{LabError, Result};
use crate::formats::sparse::{NmPattern, Sparsity};

/// Orders candidates for keeping: higher score first, then lower index. NaN scores rank
/// last (a NaN weight is never worth keeping over a number).
fn keep_order(a: (usize, f64), b: (usize, f64)) -> Ordering {
    match (a.1.is_nan(), b.1.is_nan()) {
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    b.1.partial_cmp(&a.1)
        .unwrap_or(Ordering::Equal)
        .then(a.0.cmp(&b.0))
}

/// Keeps the `n` best of `scores` (a group or a row); writes `keep`.
pub fn keep_best(scores: &[f64], n: usize, keep: &mut [bool]) {
    let mut idx: Vec<(usize, f64)> = scores.iter().copied().enumerate().collect();
    idx.sort_by(|&a, &b| keep_order(a, b));
    keep.fill(false);
    for &(i, _) in &idx[..n.min(idx.len())] {
        keep[i] = true;
    }
}

/// Values of a row of `k` that unstructured sparsity of `percent` removes (rounded to
/// nearest).
pub fn pruned_per_row(k: usize, percent: u32) -> usize {
    (k * percent as usize + 50) / 100
}

/// The keep mask (n x k, row-major) of `sparsity` over `scores`: per row, per group of M
/// the N best; or per row the best `k - pruned_per_row`; or everything when dense.
pub fn keep_mask(scores: &[f64], n: usize, k: usize, sparsity: Sparsity) -> Result<Vec<bool>> {
    if scores.len() != n * k {
        return Err(LabError::Shape(format!(
            "pruning scores: {} values for n={n} x k={k}",
            scores.len()
        )));
    }
    let mut keep = vec![true; n * k];
    match sparsity {
        Sparsity::Dense => {}
        Sparsity::Nm(p) => {
            p.check_k(k)?;
            let m = p.m as usize;
            for (s, kp) in scores.chunks_exact(m).zip(keep.chunks_exact_mut(m)) {
                keep_best(s, p.n as usize, kp);
            }
        }
        Sparsity::Unstructured { percent } => {
            let keep_n = k - pruned_per_row(k, percent);
            for (s, kp) in scores.chunks_exact(k).zip(keep.chunks_exact_mut(k)) {
                keep_best(s, keep_n, kp);
            }
        }
    }
    Ok(keep)
}

/// Checks that `keep` follows `pattern` (exactly N per group): the invariant the compressed
/// layout needs.
pub fn follows(keep: &[bool], pattern: NmPattern) -> bool {
    keep.chunks(pattern.m as usize)
        .all(|g| g.iter().filter(|&&x| x).count() == pattern.n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_keep_the_lower_index() {
        let mut keep = [false; 4];
        keep_best(&[1.0, 1.0, 1.0, 1.0], 2, &mut keep);
        assert_eq!(keep, [true, true, false, false]);
        keep_best(&[0.5, 2.0, 0.5, 2.0], 3, &mut keep);
        assert_eq!(keep, [true, true, false, true]);
        keep_best(&[f64::NAN, 0.0, 1.0, f64::NAN], 2, &mut keep);
        assert_eq!(keep, [false, true, true, false]);
    }

    #[test]
    fn masks_follow_their_pattern() {
        let scores: Vec<f64> = (0..2 * 16).map(|i| ((i * 7) % 5) as f64).collect();
        let p = NmPattern::new(2, 4).unwrap();
        let keep = keep_mask(&scores, 2, 16, Sparsity::Nm(p)).unwrap();
        assert!(follows(&keep, p));
        let u = keep_mask(&scores, 2, 16, Sparsity::Unstructured { percent: 50 }).unwrap();
        assert_eq!(u.iter().filter(|&&x| x).count(), 16);
        assert!(keep_mask(&scores, 2, 16, Sparsity::Nm(NmPattern::new(2, 3).unwrap())).is_err());
    }
}
