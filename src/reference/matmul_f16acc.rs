//! CPU twin of `kernels::matmul_f16acc`: the f64 product of the f16-rounded operands, so
//! the comparison isolates the f16 accumulation.

use half::f16;

use crate::error::Result;
use crate::kernels::matmul::{Layout, Shape};
use crate::reference::matmul::matmul_f64;

/// C (m x n) = round16(A) * round16(W)^T in f64; A is m x k, W n x k.
pub fn matmul_f16acc_f64(a: &[f32], w: &[f32], m: usize, n: usize, k: usize) -> Result<Vec<f64>> {
    let r = |x: &[f32]| -> Vec<f32> { x.iter().map(|&v| f16::from_f32(v).to_f32()).collect() };
    matmul_f64(Layout::Nt, Shape::new(m, n, k)?, &r(a), &r(w))
}
