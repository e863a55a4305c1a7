//! SparseGPT (Frantar & Alistarh 2023, "Massive language models can be accurately pruned in
//! one shot"), as its reference implementation runs it, in f64:
//!
//! 1. H = X^T X over the layer's calibration inputs; a feature never seen (H_jj = 0) gets
//!    H_jj = 1 and its weights zeroed; H += 1% of the mean diagonal (damping).
//! 2. U = the upper Cholesky factor of H^-1 (H^-1 = U^T U).
//! 3. Columns in blocks of 128 (rounded down to whole groups of M): for each column i of a
//!    block, N:M picks the group's pruned weights when i starts a group, by the score
//!    w^2 / U_ii^2 (unstructured: each row's share of the block at the block's start); the
//!    pruned weight's error (w - q) / U_ii is spread over the row's later columns of the
//!    block through row i of U, and after the block over the rest of the row at once.
//!
//! Unstructured sparsity removes the same share of every row in every block (the paper's
//! reference takes one threshold over the whole block; per row keeps the masks per output
//! row like the other methods).

use faer::linalg::solvers::DenseSolveCore;
use faer::{Mat, Side};

use crate::error::{LabError, Result};
use crate::formats::sparse::Sparsity;
use crate::prune::mask::{keep_best, pruned_per_row};
use crate::prune::{InputStats, Pruned, MIN_SPARSEGPT_ROWS};

/// Damping added to H's diagonal, as a fraction of its mean (the paper's 1%).
pub const DAMP: f64 = 0.01;
/// Columns per block (the paper's 128).
pub const BLOCK: usize = 128;

/// Prunes the n x k matrix `w` with SparseGPT from `stats.xtx`.
pub fn prune(
    sparsity: Sparsity,
    w: &[f32],
    n: usize,
    k: usize,
    stats: &InputStats,
) -> Result<Pruned> {
    let Some(xtx) = &stats.xtx else {
        return Err(LabError::InvalidArgument(
            "sparsegpt needs H = X^T X of the layer's inputs; the calibration collected only \
             the column norms"
                .into(),
        ));
    };
    if stats.rows < MIN_SPARSEGPT_ROWS {
        return Err(LabError::InvalidArgument(format!(
            "sparsegpt: {} calibration rows (tokens) is too little data; it needs at least \
             {MIN_SPARSEGPT_ROWS} to fit H = X^T X (use more calibration text)",
            stats.rows
        )));
    }
    let mut h = xtx.clone();
    let mut wd: Vec<f64> = w.iter().map(|&v| v as f64).collect();
    for j in 0..k {
        if h[(j, j)] == 0.0 {
            h[(j, j)] = 1.0;
            for r in 0..n {
                wd[r * k + j] = 0.0;
            }
        }
    }
    let mean_diag = (0..k).map(|j| h[(j, j)]).sum::<f64>() / k as f64;
    for j in 0..k {
        h[(j, j)] += DAMP * mean_diag;
    }
    let not_pd = |what: &str| {
        LabError::InvalidArgument(format!(
            "sparsegpt: {what} is not positive definite (non-finite calibration activations?)"
        ))
    };
    let hinv = h.llt(Side::Lower).map_err(|_| not_pd("H"))?.inverse();
    let l = hinv.llt(Side::Lower).map_err(|_| not_pd("H^-1"))?;
    // U = L^T: U[i][j] = L[j][i].
    let lm = l.L();
    let u = |i: usize, j: usize| lm[(j, i)];

    let m = sparsity.pattern().map_or(1, |p| p.m as usize);
    let block = BLOCK - BLOCK % m;
    let mut keep = vec![true; n * k];
    let mut i1 = 0;
    while i1 < k {
        let i2 = (i1 + block).min(k);
        let count = i2 - i1;
        let mut err = vec![0f64; n * count];
        if let Sparsity::Unstructured { percent } = sparsity {
            let drop = pruned_per_row(count, percent);
            let mut kb = vec![false; count];
            for r in 0..n {
                let scores: Vec<f64> = (0..count)
                    .map(|j| wd[r * k + i1 + j].powi(2) / u(i1 + j, i1 + j).powi(2))
                    .collect();
                keep_best(&scores, count - drop, &mut kb);
                keep[r * k + i1..r * k + i2].copy_from_slice(&kb);
            }
        }
        for i in 0..count {
            let col = i1 + i;
            if let Sparsity::Nm(p) = sparsity {
                if i % m == 0 {
                    let mut kg = vec![false; m];
                    for r in 0..n {
                        let scores: Vec<f64> = (0..m)
                            .map(|j| wd[r * k + col + j].powi(2) / u(col + j, col + j).powi(2))
                            .collect();
                        keep_best(&scores, p.n as usize, &mut kg);
                        keep[r * k + col..r * k + col + m].copy_from_slice(&kg);
                    }
                }
            }
            let d = u(col, col);
            for r in 0..n {
                if keep[r * k + col] {
                    continue;
                }
                let row = &mut wd[r * k..(r + 1) * k];
                let e = row[col] / d;
                err[r * count + i] = e;
                for (j, v) in row.iter_mut().enumerate().take(i2).skip(col) {
                    *v -= e * u(col, j);
                }
                row[col] = 0.0;
            }
        }
        if i2 < k {
            // W[:, i2..] -= Err (n x count) * U[i1..i2, i2..].
            let e = Mat::<f64>::from_fn(n, count, |r, i| err[r * count + i]);
            let ub = Mat::<f64>::from_fn(count, k - i2, |i, j| u(i1 + i, i2 + j));
            let upd = &e * &ub;
            for r in 0..n {
                for j in 0..k - i2 {
                    wd[r * k + i2 + j] -= upd[(r, j)];
                }
            }
        }
        i1 = i2;
    }
    let w = wd
        .iter()
        .zip(&keep)
        .map(|(&v, &kp)| if kp { v as f32 } else { 0.0 })
        .collect();
    Ok(Pruned { w, keep })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::sparse::NmPattern;
    use crate::prune::mask::follows;
    use crate::rng::Rng;

    /// Output error ||X W^T - X Wp^T||^2 over the calibration rows.
    fn out_err(x: &[f32], t: usize, k: usize, w: &[f32], wp: &[f32], n: usize) -> f64 {
        let mut e = 0.0;
        for i in 0..t {
            for r in 0..n {
                let (mut a, mut b) = (0.0, 0.0);
                for j in 0..k {
                    a += x[i * k + j] as f64 * w[r * k + j] as f64;
                    b += x[i * k + j] as f64 * wp[r * k + j] as f64;
                }
                e += (a - b).powi(2);
            }
        }
        e
    }

    #[test]
    fn sparsegpt_beats_magnitude_and_wanda_on_correlated_inputs() {
        // Correlated input features (a shared component), odd sizes: SparseGPT's updates
        // must lower the layer's output error below the mask-only methods'.
        let (n, k, t) = (13, 264, 200);
        let mut rng = Rng::new(7);
        let shared: Vec<f32> = (0..t).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
        let x: Vec<f32> = (0..t * k)
            .map(|i| {
                shared[i / k]
                    + 0.5 * (rng.next_f32() * 2.0 - 1.0) * (1.0 + (i % k) as f32 / k as f32)
            })
            .collect();
        let w: Vec<f32> = (0..n * k).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
        let mut stats = InputStats::new(k, true);
        stats.add(&x).unwrap();
        for sp in [
            Sparsity::Nm(NmPattern::new(2, 4).unwrap()),
            Sparsity::Nm(NmPattern::new(6, 8).unwrap()),
            Sparsity::Unstructured { percent: 50 },
        ] {
            let s =
                crate::prune::prune(crate::prune::Method::Sparsegpt, sp, &w, n, k, Some(&stats))
                    .unwrap();
            if let Some(p) = sp.pattern() {
                assert!(follows(&s.keep, p), "{sp}");
            }
            assert!(s.w.iter().zip(&s.keep).all(|(&v, &kp)| kp || v == 0.0));
            let mg =
                crate::prune::prune(crate::prune::Method::Magnitude, sp, &w, n, k, None).unwrap();
            let wa = crate::prune::prune(crate::prune::Method::Wanda, sp, &w, n, k, Some(&stats))
                .unwrap();
            let (es, em, ew) = (
                out_err(&x, t, k, &w, &s.w, n),
                out_err(&x, t, k, &w, &mg.w, n),
                out_err(&x, t, k, &w, &wa.w, n),
            );
            assert!(
                es < 0.7 * em.min(ew),
                "{sp}: sparsegpt {es} magnitude {em} wanda {ew}"
            );
        }
    }

    #[test]
    fn too_little_data_is_an_error() {
        let mut stats = InputStats::new(8, true);
        stats.add(&[1.0; 8 * 10]).unwrap();
        let sp = Sparsity::Nm(NmPattern::new(2, 4).unwrap());
        let e = prune(sp, &[1.0; 16], 2, 8, &stats).unwrap_err().to_string();
        assert!(e.contains("too little"), "{e}");
        let no_h = InputStats::new(8, false);
        assert!(prune(sp, &[1.0; 16], 2, 8, &no_h).is_err());
    }
}
