//! The per-precision benchmark: one activation matrix, the same weights stored in every
//! format, each run through `matmul_wq`; kernel error and quantization error kept apart.

use crate::bench::matmul::{time_cpu, MatmulRow};
use crate::bench::{measure, Runs};
use crate::compare::{ErrorStats, TOL_WQ_KERNEL_REL_FROBENIUS};
use crate::error::Result;
use crate::formats::weights::{WeightFormat, Weights};
use crate::gpu::Context;
use crate::kernels::matmul::{Layout, Shape};
use crate::kernels::matmul_wq::{PreparedMatmulWq, WqKernel};
use crate::reference::matmul::matmul_f64;
use crate::reference::matmul_wq::matmul_wq_f64;

/// What to run: A (m x k) times W^T (W n x k) in each format.
#[derive(Debug, Clone)]
pub struct PrecisionRequest {
    /// Activation rows (1 = GEMV, the decode case).
    pub m: usize,
    /// Weight rows.
    pub n: usize,
    /// Inner dimension.
    pub k: usize,
    /// Formats to run, in order; f32 first gives the `speedup_vs_f32` baseline.
    pub formats: Vec<WeightFormat>,
    /// Kernel configuration (default: [`WqKernel::default_for`]).
    pub kernel: Option<WqKernel>,
    /// Untimed runs after the validated first run.
    pub warmup: usize,
    /// Timed runs.
    pub repeat: usize,
    /// Time the f32 CPU baseline too.
    pub cpu_baseline: bool,
}

/// Runs one format on already-encoded weights; returns the row and the GPU's C (for the
/// quantization error, which needs the product on the original weights).
pub fn run_weights(
    ctx: &Context,
    kernel: WqKernel,
    a: &[f32],
    m: usize,
    k: usize,
    weights: &Weights,
    runs: Runs,
) -> Result<(MatmulRow, Vec<f32>)> {
    let shape = Shape::new(m, weights.n, k)?;
    let prepared = PreparedMatmulWq::new(ctx, kernel, a, m, k, weights)?;
    let (t, c) = measure(ctx, &prepared, runs)?;
    let reference = matmul_wq_f64(a, m, k, weights)?;
    let err = ErrorStats::compare(&c, &reference);
    let mut row = MatmulRow::new(
        ctx,
        "wq",
        format!("{kernel:?}"),
        weights.format.name(),
        Layout::Nt,
        shape,
    );
    row.set_timing(&t, shape.flops(), None, prepared.pipeline_ms);
    row.set_error(&err, TOL_WQ_KERNEL_REL_FROBENIUS);
    row.weight_bytes = Some(prepared.weight_bytes);
    row.gbps = Some(prepared.weight_bytes as f64 / (t.gpu.median * 1e6));
    Ok((row, c))
}

/// Runs every requested format on `a` (m x k) and `w` (n x k).
pub fn run(ctx: &Context, req: &PrecisionRequest, a: &[f32], w: &[f32]) -> Result<Vec<MatmulRow>> {
    let shape = Shape::new(req.m, req.n, req.k)?;
    shape.check(a.len(), w.len())?;
    let exact = matmul_f64(Layout::Nt, shape, a, w)?;
    let cpu = if req.cpu_baseline {
        Some(time_cpu(Layout::Nt, shape, a, w, req.repeat.min(5))?)
    } else {
        None
    };
    let kernel = req.kernel.unwrap_or_else(|| WqKernel::default_for(req.m));
    let mut rows = Vec::new();
    for &format in &req.formats {
        let weights = match Weights::encode(format, req.n, req.k, w) {
            Ok(wt) => wt,
            Err(e) => {
                let mut row = MatmulRow::new(
                    ctx,
                    "wq",
                    format!("{kernel:?}"),
                    format.name(),
                    Layout::Nt,
                    shape,
                );
                row.skipped = Some(e.to_string());
                rows.push(row);
                continue;
            }
        };
        let (mut row, c) = run_weights(
            ctx,
            kernel,
            a,
            req.m,
            req.k,
            &weights,
            Runs {
                warmup: req.warmup,
                repeat: req.repeat,
            },
        )?;
        row.quant_rel_err = Some(ErrorStats::compare(&c, &exact).rel_frobenius);
        row.cpu_ms = cpu.map(|c| c.median);
        row.speedup_vs_cpu = cpu.map(|c| c.median / row.gpu_ms_median);
        rows.push(row);
    }
    let f32_ms = rows
        .iter()
        .find(|r| r.precision == "f32" && r.skipped.is_none())
        .map(|r| r.gpu_ms_median);
    for r in rows.iter_mut().filter(|r| r.skipped.is_none()) {
        r.speedup_vs_f32 = f32_ms.map(|f| f / r.gpu_ms_median);
    }
    Ok(rows)
}
