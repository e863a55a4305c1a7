//! CPU twin of `kernels::matmul_wq`: the f64 product with the weights' dequantized values.
//!
//! It consumes exactly the values the GPU decodes (ggml's dequantization), so comparing
//! with it measures the kernel's error alone; comparing it with the product on the original
//! f32 weights measures the quantization error alone.

use crate::error::{LabError, Result};
use crate::formats::weights::Weights;
use crate::kernels::matmul::{Layout, Shape};
use crate::reference::matmul::matmul_f64;

/// C (m x n) = A (m x k) * W^T in f64, W dequantized (rows padded past k are ignored).
pub fn matmul_wq_f64(a: &[f32], m: usize, k: usize, weights: &Weights) -> Result<Vec<f64>> {
    if k > weights.k {
        return Err(LabError::Shape(format!(
            "activations have k = {k}, weights rows {}",
            weights.k
        )));
    }
    let w = weights.dequantize_cols(k);
    matmul_f64(Layout::Nt, Shape::new(m, weights.n, k)?, a, &w)
}
