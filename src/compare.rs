//! Comparing a GPU result with its reference: error metrics and per-precision tolerances.

use serde::Serialize;

/// f32 kernels vs the f64 reference, relative Frobenius error.
///
/// Why 1e-5: an f32 dot product of length k accumulated sequentially has a worst-case
/// relative error near k * 2^-24 but a typical (random-walk) error near sqrt(k) * 2^-24 per
/// element; for k = 1000 that is ~2e-6, and the Frobenius norm averages over elements.
/// Reordering (tiles, register blocks, fma vs mul+add) changes the rounding but not this
/// scale. 1e-5 leaves ~5x headroom at k ~ 1000 while catching any real indexing bug, which
/// produces errors of order 1.
pub const TOL_F32_REL_FROBENIUS: f64 = 1e-5;

/// Kernel error of `matmul_wq` (f32 activations, weights in any format, f32 accumulation)
/// against the f64 product over the *dequantized* weights, relative Frobenius.
///
/// Same reasoning as [`TOL_F32_REL_FROBENIUS`]: the decoded weights are exact f32 values,
/// so only f32 accumulation rounding remains; applying each block's scale once
/// (d·Σaq + m·Σa) adds one rounding per 32 products, well inside the bound.
pub const TOL_WQ_KERNEL_REL_FROBENIUS: f64 = 1e-5;

/// Kernel error of `matmul_i8` (W8A8) against the f64 product of the same int8 operands
/// and scales, relative Frobenius.
///
/// The i32 accumulation is exact; what remains is converting the sum to f32 (1 rounding)
/// and two f32 multiplies by the scales (2 more): at most ~3 x 2^-24 relative per element.
/// 1e-5 is the same bar as the f32 kernels and far below any real bug (a wrong byte order or
/// scale is off by O(1)). The quantization error (vs f32 inputs) is reported, not bounded.
pub const TOL_I8_KERNEL_REL_FROBENIUS: f64 = 1e-5;

/// Kernel error of `matmul_f16acc` (f16 operands, f16 accumulation) against the f64
/// product of the same f16-rounded operands, relative Frobenius. Valid for k <= 4096.
///
/// Each vec4<f16> accumulator lane adds k/4 products with a rounding of up to 2^-11
/// relative each; the errors add like a random walk, ~sqrt(k/4) x 2^-11 relative:
/// 7.8e-3 at k = 1024, 1.6e-2 at k = 4096. 2e-2 bounds that range; the f32-accumulating
/// kernels stay at 1e-5.
pub const TOL_F16ACC_KERNEL_REL_FROBENIUS: f64 = 2e-2;

/// A CPU baseline that rounds activations (and its output) to f16 (`gemm`'s f16 path)
/// against the f64 product over the f32 activations and f16 weights, relative Frobenius.
///
/// Rounding to f16 costs at most 2^-12 relative per value (about 2^-12/sqrt(3) RMS): once
/// for each activation, once for each output; f32 accumulation inside adds nothing at this
/// scale. The two add to ~2e-4 relative; 2e-3 leaves ~10x headroom and catches a wrong
/// stride or transpose (O(1) errors).
pub const TOL_CPU_BASELINE_F16_REL_FROBENIUS: f64 = 2e-3;

/// A CPU baseline that rounds activations to bf16 (ggml's bf16 `mul_mat`, as llama.cpp runs
/// bf16 weights) against the f64 product over the f32 activations and bf16 weights,
/// relative Frobenius.
///
/// bf16 keeps 8 significant bits: rounding costs at most 2^-9 relative per activation, an
/// RMS of about 2^-9/sqrt(3) = 1.1e-3, and the products' errors are independent, so the
/// output's relative error is of that order (measured 1.5e-3). 1e-2 leaves ~7x headroom and
/// catches a wrong stride or transpose (O(1) errors).
pub const TOL_CPU_BASELINE_BF16_REL_FROBENIUS: f64 = 1e-2;

/// A CPU baseline that quantizes activations to 8 bits per 32-value block (ggml's and
/// candle's q8_0/q8_1 `vec_dot` path; q8_K per 256 for the K-quants) against the f64 product over the f32 activations and
/// the dequantized weights, relative Frobenius.
///
/// The step is max|a|/127 per block, the rounding error uniform within half a step: an RMS
/// of max/(127·sqrt(12)), about 0.4% of the RMS of uniform activations; the products'
/// errors are independent, so the output's relative error is of that order too (measured
/// 0.3-0.5% on the test's inputs). 2e-2 leaves ~5x headroom and catches a wrong block or
/// scale (O(1) errors).
pub const TOL_CPU_BASELINE_Q8_ACT_REL_FROBENIUS: f64 = 2e-2;

/// llama.cpp's logits (the `llm-bench` CPU column) against the f32 twin on the same Q8_0
/// tensors: mean KL divergence per position, nats, teacher-forced.
///
/// The two see the same weights; llama.cpp quantizes every activation to q8_0 before each
/// product and keeps its KV cache in f16, the twin keeps both f32. Measured: 4.2e-3 over 48
/// passage tokens (the order of llama.cpp's own Q8_0-vs-f16 KLD, 0.0037). 2e-2 leaves ~5x
/// headroom; a wrong layer, RoPE or head layout gives KLDs of order 1.
pub const TOL_LLAMA_CPP_Q8_KLD: f64 = 2e-2;

/// llama.cpp at f32 weights against the f32 twin, relative Frobenius error per position's
/// logits: the only differences are llama.cpp's f16 KV cache and summation order.
/// Measured: at most 1.8e-3 over 24 passage tokens; 1e-2 leaves ~5x headroom, far below the
/// O(1) error of any wrong layer.
pub const TOL_LLAMA_CPP_F32_REL: f64 = 1e-2;

/// Errors of a result against its reference.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct ErrorStats {
    /// ||got - want||_F / ||want||_F (NaN anywhere makes it NaN).
    pub rel_frobenius: f64,
    /// max |got - want|.
    pub max_abs: f64,
    /// Index of the largest absolute error (or of the first NaN).
    pub worst_index: usize,
    /// The result at the worst index.
    pub worst_got: f64,
    /// The reference at the worst index.
    pub worst_want: f64,
}

impl ErrorStats {
    /// Compares `got` with `want` element-wise. A NaN or infinity in `got` is the worst
    /// possible error: it is reported at its index and the relative error becomes NaN.
    pub fn compare(got: &[f32], want: &[f64]) -> Self {
        assert_eq!(got.len(), want.len(), "compare: lengths differ");
        let (mut num, mut den) = (0f64, 0f64);
        let mut worst = (0usize, -1f64);
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let g = g as f64;
            let d = (g - w).abs();
            num += d * d;
            den += w * w;
            if !d.is_finite() {
                if worst.1.is_finite() {
                    worst = (i, f64::NAN);
                }
            } else if worst.1.is_finite() && d > worst.1 {
                worst = (i, d);
            }
        }
        let rel = if den > 0.0 {
            (num / den).sqrt()
        } else {
            num.sqrt()
        };
        Self {
            rel_frobenius: rel,
            max_abs: worst.1,
            worst_index: worst.0,
            worst_got: got.get(worst.0).map_or(f64::NAN, |&g| g as f64),
            worst_want: want.get(worst.0).copied().unwrap_or(f64::NAN),
        }
    }

    /// True when the relative error is finite and at most `tol`.
    pub fn passes(&self, tol: f64) -> bool {
        self.rel_frobenius.is_finite() && self.rel_frobenius <= tol
    }

    /// A one-line explanation of a failure: worst index, got, want.
    pub fn describe(&self, cols: usize, tol: f64) -> String {
        format!(
            "rel. Frobenius error {:.3e} (tolerance {tol:.1e}); worst at [{}, {}]: got {}, want {}",
            self.rel_frobenius,
            self.worst_index / cols.max(1),
            self.worst_index % cols.max(1),
            self.worst_got,
            self.worst_want
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_results_have_zero_error() {
        let e = ErrorStats::compare(&[1.0, -2.0], &[1.0, -2.0]);
        assert_eq!(e.rel_frobenius, 0.0);
        assert!(e.passes(0.0));
    }

    #[test]
    fn nan_fails_and_is_located() {
        let e = ErrorStats::compare(&[1.0, f32::NAN, 3.0], &[1.0, 2.0, 3.0]);
        assert!(!e.passes(1.0));
        assert_eq!(e.worst_index, 1);
    }

    #[test]
    fn worst_element_is_found() {
        let e = ErrorStats::compare(&[1.0, 2.5, 3.0], &[1.0, 2.0, 3.1]);
        assert_eq!(e.worst_index, 1);
        assert!((e.max_abs - 0.5).abs() < 1e-12);
    }
}
