//! Pruning (issue 23): which weights of a linear layer to remove, by three methods, for a
//! [`Sparsity`] pattern. Masks are per output row, with N:M groups along k (the reduction
//! axis), as the sparse kernels and the compressed layout ([`crate::formats::sparse`]) need.
//!
//! - `magnitude`: score |w|.
//! - `wanda` (Sun et al. 2023): score |w_ij| * ||x_j||_2 over calibration activations.
//! - `sparsegpt` (Frantar & Alistarh 2023): prunes column block by column block and updates
//!   the kept weights of each row to compensate, from H = X^T X ([`sparsegpt`]).
//!
//! Equal scores keep the lower index ([`mask`]). The calibration activations come from the
//! model's CPU twin; a model prunes its layers in order, each calibrated on the outputs of
//! the layers already pruned (the model's own module drives that).

pub mod mask;
pub mod sparsegpt;

use faer::Mat;
use serde::Serialize;

use crate::error::{LabError, Result};
use crate::formats::sparse::{SparseWeights, Sparsity};
use crate::formats::weights::{WeightFormat, Weights};

/// How weights are scored for pruning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// |w|: needs no data.
    Magnitude,
    /// |w| times the input feature's L2 norm over calibration data.
    Wanda,
    /// Optimal-brain-surgeon pruning with weight updates, from the inputs' H = X^T X.
    Sparsegpt,
}

impl Method {
    /// Every method, in table order.
    pub const ALL: [Method; 3] = [Method::Magnitude, Method::Wanda, Method::Sparsegpt];

    /// Name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Method::Magnitude => "magnitude",
            Method::Wanda => "wanda",
            Method::Sparsegpt => "sparsegpt",
        }
    }

    /// Parses a method name.
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s.trim())
            .ok_or_else(|| LabError::UnknownName {
                kind: "pruning method",
                name: s.into(),
                expected: Self::ALL.map(|m| m.name()).join(", "),
            })
    }

    /// Whether the method needs calibration activations.
    pub fn needs_calibration(self) -> bool {
        !matches!(self, Method::Magnitude)
    }

    /// Whether it needs the full H = X^T X (not just the column norms).
    pub fn needs_hessian(self) -> bool {
        matches!(self, Method::Sparsegpt)
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The fewest calibration rows (tokens) `sparsegpt` accepts: with fewer, H = X^T X has rank
/// below this and its inverse is mostly the 1% damping, so the "optimal" updates would be
/// fitted to a handful of activations.
pub const MIN_SPARSEGPT_ROWS: usize = 64;

/// What a linear layer's inputs looked like over calibration data: the sum of squares of
/// each input feature (Wanda's ||x_j||^2) and, when asked for, H = X^T X (SparseGPT).
#[derive(Debug, Clone)]
pub struct InputStats {
    /// Input features.
    pub k: usize,
    /// Activation rows seen.
    pub rows: usize,
    /// Sum over rows of x_j^2, per feature.
    pub sq: Vec<f64>,
    /// X^T X (k x k), when collected.
    pub xtx: Option<Mat<f64>>,
}

impl InputStats {
    /// Empty statistics for `k` features; `hessian` collects X^T X as well.
    pub fn new(k: usize, hessian: bool) -> Self {
        Self {
            k,
            rows: 0,
            sq: vec![0.0; k],
            xtx: hessian.then(|| Mat::zeros(k, k)),
        }
    }

    /// Adds activation rows (`x.len() / k` rows of k values).
    pub fn add(&mut self, x: &[f32]) -> Result<()> {
        if !x.len().is_multiple_of(self.k) {
            return Err(LabError::Shape(format!(
                "calibration rows: {} values are not rows of {}",
                x.len(),
                self.k
            )));
        }
        let rows = x.len() / self.k;
        for row in x.chunks_exact(self.k) {
            for (s, &v) in self.sq.iter_mut().zip(row) {
                *s += v as f64 * v as f64;
            }
        }
        if let Some(h) = &mut self.xtx {
            let xm = Mat::<f64>::from_fn(rows, self.k, |i, j| x[i * self.k + j] as f64);
            faer::linalg::matmul::matmul(
                h.as_mut(),
                faer::Accum::Add,
                xm.transpose(),
                xm.as_ref(),
                1.0,
                faer::Par::Seq,
            );
        }
        self.rows += rows;
        Ok(())
    }
}

/// A pruned weight matrix: its values (zeros where pruned; `sparsegpt` also changes kept
/// ones) and the keep mask, both n x k row-major.
#[derive(Debug, Clone)]
pub struct Pruned {
    /// The weights after pruning.
    pub w: Vec<f32>,
    /// true where a weight is kept.
    pub keep: Vec<bool>,
}

/// Prunes the n x k matrix `w` to `sparsity` by `method`; `stats` are the layer's input
/// statistics (required unless the method is `magnitude`).
pub fn prune(
    method: Method,
    sparsity: Sparsity,
    w: &[f32],
    n: usize,
    k: usize,
    stats: Option<&InputStats>,
) -> Result<Pruned> {
    if w.len() != n * k || n == 0 || k == 0 {
        return Err(LabError::Shape(format!(
            "pruning: {} weights for n={n} x k={k}",
            w.len()
        )));
    }
    if let Some(p) = sparsity.pattern() {
        p.check_k(k)?;
    }
    let stats = match (method.needs_calibration(), stats) {
        (false, _) => None,
        (true, Some(s)) if s.k == k && s.rows > 0 => Some(s),
        (true, Some(s)) if s.k != k => {
            return Err(LabError::Shape(format!(
                "{method}: calibration inputs have {} features, the weights {k}",
                s.k
            )))
        }
        (true, _) => {
            return Err(LabError::InvalidArgument(format!(
                "{method} needs calibration activations and got none"
            )))
        }
    };
    if sparsity == Sparsity::Dense {
        return Ok(Pruned {
            w: w.to_vec(),
            keep: vec![true; n * k],
        });
    }
    match method {
        Method::Magnitude => {
            let scores: Vec<f64> = w.iter().map(|&v| (v as f64).abs()).collect();
            apply(w, mask::keep_mask(&scores, n, k, sparsity)?)
        }
        Method::Wanda => {
            let s = stats.expect("checked above");
            let norms: Vec<f64> = s.sq.iter().map(|v| v.sqrt()).collect();
            let scores: Vec<f64> = w
                .iter()
                .enumerate()
                .map(|(i, &v)| (v as f64).abs() * norms[i % k])
                .collect();
            apply(w, mask::keep_mask(&scores, n, k, sparsity)?)
        }
        Method::Sparsegpt => sparsegpt::prune(sparsity, w, n, k, stats.expect("checked above")),
    }
}

/// A pruned matrix as a sparse run stores it at a format.
#[derive(Debug, Clone)]
pub enum Stored {
    /// N:M: compressed (kept values quantized over themselves, plus the masks).
    Sparse(SparseWeights),
    /// Unstructured: dense with zeros (rows padded to whole blocks; `k` values each
    /// before the padding).
    Dense {
        /// The encoded matrix.
        weights: Weights,
        /// Values per row as given.
        k: usize,
    },
}

impl Pruned {
    /// This n x k matrix stored at `format` under `sparsity`: N:M compressed, else masked
    /// dense.
    pub fn store(
        &self,
        sparsity: Sparsity,
        format: WeightFormat,
        n: usize,
        k: usize,
    ) -> Result<Stored> {
        Ok(match sparsity {
            Sparsity::Nm(pattern) => Stored::Sparse(SparseWeights::compress(
                format, pattern, n, k, &self.w, &self.keep,
            )?),
            _ => Stored::Dense {
                weights: Weights::encode(format, n, k, &self.w)?,
                k,
            },
        })
    }
}

impl Stored {
    /// Bytes as stored.
    pub fn bytes(&self) -> usize {
        match self {
            Stored::Sparse(s) => s.bytes(),
            Stored::Dense { weights, .. } => weights.bytes.len(),
        }
    }

    /// The n x k values it decodes to: what a kernel multiplies, and what a CPU twin
    /// holding the pruned model computes with.
    pub fn values(&self) -> Vec<f32> {
        match self {
            Stored::Sparse(s) => s.densify(),
            Stored::Dense { weights, k } => weights.dequantize_cols(*k),
        }
    }
}

fn apply(w: &[f32], keep: Vec<bool>) -> Result<Pruned> {
    let w = w
        .iter()
        .zip(&keep)
        .map(|(&v, &k)| if k { v } else { 0.0 })
        .collect();
    Ok(Pruned { w, keep })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::sparse::NmPattern;

    #[test]
    fn wanda_weighs_by_the_input_norm() {
        // Column 1's inputs are 10x larger: its small weight outranks column 0's.
        let mut s = InputStats::new(2, false);
        s.add(&[1.0, 10.0, 1.0, 10.0]).unwrap();
        let p = Sparsity::Nm(NmPattern::new(1, 2).unwrap());
        let w = [1.0, 0.2];
        let mag = prune(Method::Magnitude, p, &w, 1, 2, None).unwrap();
        let wan = prune(Method::Wanda, p, &w, 1, 2, Some(&s)).unwrap();
        assert_eq!(mag.keep, [true, false]);
        assert_eq!(wan.keep, [false, true]);
        assert_eq!(wan.w, [0.0, 0.2]);
        assert!(prune(Method::Wanda, p, &w, 1, 2, None).is_err());
        assert_eq!(Method::parse("sparsegpt").unwrap(), Method::Sparsegpt);
        assert!(Method::parse("random").is_err());
    }
}
