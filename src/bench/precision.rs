//! The per-precision benchmark: one activation matrix and one weight matrix, the weights
//! stored (and the product computed) at every precision; each row keeps the kernel's own
//! error apart from what the precision costs.

use crate::bench::matmul::MatmulRow;
use crate::compare::{
    ErrorStats, TOL_F16ACC_KERNEL_REL_FROBENIUS, TOL_I8_KERNEL_REL_FROBENIUS,
    TOL_WQ_KERNEL_REL_FROBENIUS,
};
use crate::error::{LabError, Result};
use crate::formats::int8::quantize_rows_with;
use crate::formats::precision::Precision;
use crate::formats::weights::Weights;
use crate::gpu::measure::{measure, GpuOp, Runs, Timed};
use crate::gpu::Context;
use crate::kernels::matmul::{Layout, Shape};
use crate::kernels::matmul_f16acc::PreparedMatmulF16Acc;
use crate::kernels::matmul_i8::{Dot4, PreparedMatmulI8};
use crate::kernels::matmul_wq::{is_gemv_name, PreparedMatmulWq, WqKernel, WqVariant};
use crate::reference::cpu_baseline;
use crate::reference::matmul::matmul_f64;
use crate::reference::matmul_f16acc::matmul_f16acc_f64;
use crate::reference::matmul_i8::matmul_i8_f64;
use crate::reference::matmul_wq::matmul_wq_f64;

/// What to run: A (m x k) times W^T (W n x k) at each precision.
#[derive(Debug, Clone)]
pub struct PrecisionRequest {
    /// Activation rows (1 = GEMV, the decode case).
    pub m: usize,
    /// Weight rows.
    pub n: usize,
    /// Inner dimension.
    pub k: usize,
    /// Precisions to run, in order; f32 among them gives the `speedup_vs_f32` baseline.
    pub precisions: Vec<Precision>,
    /// Register-block configuration for every precision (default: the tuned one from
    /// `tuned`, else [`WqKernel::default_for`]).
    pub kernel: Option<WqKernel>,
    /// Tuned configurations of this adapter ("precision/class" -> kernel), from the tune
    /// cache; empty when untuned.
    pub tuned: crate::bench::tune::Tuned,
    /// Warm-up and timed runs.
    pub runs: Runs,
    /// Time the f32 CPU baseline too.
    pub cpu_baseline: bool,
    /// More kernels for the weight formats, each its own row (e.g. the public kernel's
    /// shape beside the tuned one); other precisions ignore them.
    pub extra: Vec<WqVariant>,
}

/// Measures `op` and fills `row` (identity already set) with its timing and its error
/// against the kernel reference.
fn row_of(
    ctx: &Context,
    mut row: MatmulRow,
    op: &dyn GpuOp,
    runs: Runs,
    reference: &[f64],
    tol: f64,
) -> Result<(MatmulRow, Vec<f32>)> {
    let (t, c): (Timed, Vec<f32>) = measure(ctx, op, runs)?;
    let err = ErrorStats::compare(&c, reference);
    let flops = 2.0 * row.m as f64 * row.n as f64 * row.k as f64;
    row.set_timing(&t, flops, None, None);
    row.set_error(&err, tol);
    Ok((row, c))
}

/// Runs `matmul_wq` or `gemv_wq` on already-encoded weights (e.g. from a GGUF file);
/// returns the row and the GPU's C.
pub fn run_weights(
    ctx: &Context,
    variant: WqVariant,
    a: &[f32],
    m: usize,
    k: usize,
    weights: &Weights,
    runs: Runs,
) -> Result<(MatmulRow, Vec<f32>)> {
    let shape = Shape::new(m, weights.n, k)?;
    let p = PreparedMatmulWq::with_variant(ctx, variant, a, m, k, weights)?;
    let reference = matmul_wq_f64(a, m, k, weights)?;
    let id = MatmulRow::new(
        ctx,
        variant.name(),
        format!("{variant:?}"),
        weights.format.name(),
        Layout::Nt,
        shape,
    );
    let (mut row, c) = row_of(ctx, id, &p, runs, &reference, TOL_WQ_KERNEL_REL_FROBENIUS)?;
    row.pipeline_ms = p.pipeline_ms;
    row.weight_bytes = Some(p.weight_bytes);
    Ok((row, c))
}

/// Runs one precision (for weight formats, once per kernel in `variants`); cases the
/// adapter or the shape cannot do (a missing feature, partial blocks) come back as skipped
/// rows with the reason.
fn run_one(
    ctx: &Context,
    req: &PrecisionRequest,
    precision: Precision,
    a: &[f32],
    w: &[f32],
) -> Result<Vec<(MatmulRow, Option<Vec<f32>>)>> {
    let (m, n, k) = (req.m, req.n, req.k);
    let shape = Shape::new(m, n, k)?;
    let tuned = crate::bench::tune::tuned_kernel(
        &req.tuned,
        precision,
        crate::bench::tune::ShapeClass::of(m),
    );
    let tuned_gemv = crate::bench::tune::tuned_gemv(&req.tuned, precision);
    let tuned_wq = crate::bench::tune::tuned_variant(
        &req.tuned,
        precision,
        crate::bench::tune::ShapeClass::of(m),
    );
    let kernel = req
        .kernel
        .or(tuned)
        .unwrap_or_else(|| WqKernel::default_for(m));
    let mark = |mut rows: Vec<(MatmulRow, Option<Vec<f32>>)>| {
        for (r, _) in rows.iter_mut() {
            // Only the row of the cached configuration itself (not `extra` rows).
            let from_cache = if is_gemv_name(&r.kernel) {
                tuned_gemv.is_some_and(|g| r.config == format!("{g:?}"))
            } else if let (None, Some(v)) = (req.kernel, tuned_wq) {
                // The weight formats' and W8A8's kernel may be a tile (W8A8 rows add dot4).
                r.config == format!("{v:?}") || r.config.starts_with(&format!("{v:?} "))
            } else {
                req.kernel.is_none() && tuned.is_some()
            };
            if from_cache {
                r.config.push_str(" (tuned)");
            }
        }
        rows
    };
    let skipped = |why: String, kernel_name: &str| {
        let mut row = MatmulRow::new(
            ctx,
            kernel_name,
            format!("{kernel:?}"),
            precision.name(),
            Layout::Nt,
            shape,
        );
        row.skipped = Some(why);
        Ok(vec![(row, None)])
    };
    match precision {
        Precision::Weights(format) => {
            let weights = match Weights::encode(format, n, k, w) {
                Ok(wt) => wt,
                Err(e) => return skipped(e.to_string(), "wq"),
            };
            // The weight formats' tuned kernel may be a register block or a workgroup tile.
            let main = match (req.kernel, tuned_wq) {
                (None, Some(v)) => v,
                _ => WqVariant::Regblock(kernel),
            };
            let mut variants = vec![main];
            variants.extend(req.extra.iter().filter(|v| **v != main));
            if m == 1 {
                variants.push(tuned_gemv.unwrap_or(WqVariant::GEMV));
            }
            variants
                .into_iter()
                .map(|v| {
                    let (row, c) = run_weights(ctx, v, a, m, k, &weights, req.runs)?;
                    Ok((row, Some(c)))
                })
                .collect::<Result<Vec<_>>>()
                .map(mark)
        }
        Precision::F16Acc => {
            let variant = match (req.kernel, tuned_wq) {
                (None, Some(v @ WqVariant::Tiled(_))) => v,
                _ => WqVariant::Regblock(kernel),
            };
            let p = match PreparedMatmulF16Acc::with_variant(ctx, variant, a, w, m, n, k) {
                Err(e @ LabError::MissingFeature { .. }) => {
                    return skipped(e.to_string(), "f16acc")
                }
                r => r?,
            };
            let reference = matmul_f16acc_f64(a, w, m, n, k)?;
            let id = MatmulRow::new(
                ctx,
                match variant {
                    WqVariant::Tiled(_) => "f16acc-tiled",
                    _ => "f16acc",
                },
                format!("{variant:?}"),
                "f16acc",
                Layout::Nt,
                shape,
            );
            let (mut row, c) = row_of(
                ctx,
                id,
                &p,
                req.runs,
                &reference,
                TOL_F16ACC_KERNEL_REL_FROBENIUS,
            )?;
            row.pipeline_ms = p.pipeline_ms;
            row.weight_bytes = Some(p.weight_bytes);
            Ok(mark(vec![(row, Some(c))]))
        }
        Precision::Int8 | Precision::Int8Rot => {
            let scheme = precision.int8_scheme().expect("an int8 precision");
            let wq = quantize_rows_with(w, n, k, scheme)?;
            let dot4 = Dot4::best(ctx);
            let main = match (req.kernel, tuned_wq) {
                (None, Some(v @ WqVariant::Tiled(_))) => v,
                _ => WqVariant::Regblock(kernel),
            };
            // One activation row also goes through the int8 GEMV (the tuned one, else
            // gemv-bcast 16x8, the decoder's on CPU adapters).
            let mut variants = vec![main];
            let gemv = tuned_gemv.unwrap_or(WqVariant::Broadcast {
                lanes: 16,
                quads: 2,
            });
            if let (1, WqVariant::Broadcast { quads, .. }) = (m, gemv) {
                // Where the adapter cannot bind its uniform row, the register block stays
                // the only row (the reason is in the log).
                match crate::kernels::matmul_i8::check_broadcast(ctx, quads, wq.kp) {
                    Ok(()) => variants.push(gemv),
                    Err(e) => log::info!("no int8 GEMV row: {e}"),
                }
            }
            quantize_rows_with(a, m, k, scheme)?; // the GPU path's input checks, with messages
            let mut rows = Vec::new();
            for variant in variants {
                let p = PreparedMatmulI8::with_variant(ctx, variant, dot4, a, m, &wq)?;
                // The reference multiplies the activations as the GPU quantized them (they
                // can differ from the CPU's by a step; see formats::int8).
                p.run(ctx, None)?;
                let reference = matmul_i8_f64(&p.read_activations(ctx)?, &wq)?;
                let config = format!("{variant:?} {dot4:?}");
                let name = match variant {
                    WqVariant::Tiled(_) => "i8-tiled",
                    WqVariant::Broadcast { .. } => "gemv-bcast-i8",
                    _ => "i8",
                };
                let id = MatmulRow::new(ctx, name, config, precision.name(), Layout::Nt, shape);
                let (mut row, c) = row_of(
                    ctx,
                    id,
                    &p,
                    req.runs,
                    &reference,
                    TOL_I8_KERNEL_REL_FROBENIUS,
                )?;
                row.pipeline_ms = p.pipeline_ms;
                row.weight_bytes = Some(p.weight_bytes);
                rows.push((row, Some(c)));
            }
            Ok(mark(rows))
        }
    }
}

/// Runs every requested precision on `a` (m x k) and `w` (n x k).
pub fn run(ctx: &Context, req: &PrecisionRequest, a: &[f32], w: &[f32]) -> Result<Vec<MatmulRow>> {
    let shape = Shape::new(req.m, req.n, req.k)?;
    shape.check(a.len(), w.len())?;
    let exact = matmul_f64(Layout::Nt, shape, a, w)?;
    let mut rows = Vec::new();
    for &precision in &req.precisions {
        // The CPU baseline of this precision: the library a user would pick for it, on the
        // same inputs (`reference::cpu_baseline`). One timed run for big problems: at
        // 4096^3 a few repeats per precision would dominate a sweep.
        let cpu = if req.cpu_baseline {
            let repeat = if shape.flops() > 1e10 {
                1
            } else {
                req.runs.repeat.clamp(1, 5)
            };
            match cpu_baseline::prepare(precision, a, w, shape)? {
                Some(b) => Some((b.time(repeat)?.median, b.library.clone())),
                None => None,
            }
        } else {
            None
        };
        // A precision that cannot run here (over a limit, a device error) becomes a skipped
        // row with the reason; the others still run. A lost device stops the problem.
        let results = match run_one(ctx, req, precision, a, w) {
            Ok(r) => r,
            Err(e @ LabError::DeviceLost(_)) => return Err(e),
            Err(e) => {
                let mut row =
                    MatmulRow::new(ctx, "-", String::new(), precision.name(), Layout::Nt, shape);
                row.skipped = Some(e.to_string());
                vec![(row, None)]
            }
        };
        for (mut row, c) in results {
            if let Some(c) = c {
                row.quant_rel_err = Some(ErrorStats::compare(&c, &exact).rel_frobenius);
                row.gbps = row
                    .weight_bytes
                    .map(|b| b as f64 / (row.gpu_ms_median * 1e6));
                row.cpu_ms = cpu.as_ref().map(|c| c.0);
                row.cpu_impl = cpu.as_ref().map(|c| c.1.clone());
                row.speedup_vs_cpu = row.cpu_ms.map(|c| c / row.gpu_ms_median);
            }
            rows.push(row);
        }
    }
    // Against f32 through the same kernel where there is one (gemv vs gemv), else the
    // first f32 row.
    let f32_ms = |kernel: &str| {
        let f32_rows = || {
            rows.iter()
                .filter(|r| r.precision == "f32" && r.skipped.is_none())
        };
        f32_rows()
            .find(|r| r.kernel == kernel)
            .or_else(|| f32_rows().next())
            .map(|r| r.gpu_ms_median)
    };
    let baselines: Vec<Option<f64>> = rows.iter().map(|r| f32_ms(&r.kernel)).collect();
    for (r, base) in rows.iter_mut().zip(baselines) {
        if r.skipped.is_none() {
            r.speedup_vs_f32 = base.map(|f| f / r.gpu_ms_median);
        }
    }
    Ok(rows)
}
