//! CPU twin of `kernels::sparse`: the f64 product with the compressed weights' kept values
//! as their format decodes them, in their dense positions (zeros elsewhere).
//!
//! Comparing the GPU with it measures the kernel's error alone; the pruning error (and the
//! quantization of the kept values) shows against the product with the dense weights.

use crate::error::{LabError, Result};
use crate::formats::sparse::SparseWeights;
use crate::kernels::matmul::{Layout, Shape};
use crate::reference::matmul::matmul_f64;

/// C (m x n) = A (m x k) * W^T in f64, W the densified compressed weights.
pub fn matmul_sparse_f64(a: &[f32], m: usize, k: usize, w: &SparseWeights) -> Result<Vec<f64>> {
    if k != w.k {
        return Err(LabError::Shape(format!(
            "activations have k = {k}, the sparse weights' rows {}",
            w.k
        )));
    }
    matmul_f64(Layout::Nt, Shape::new(m, w.n, k)?, a, &w.densify())
}
