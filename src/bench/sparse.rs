//! The per-precision benchmark's sparse rows (issue 23): the same random weights pruned to
//! each requested pattern by one method, then stored and run at each precision.
//!
//! - N:M rows store the weights compressed ([`SparseWeights`]) and run the sparse kernels
//!   (`gemv-sparse` for one activation row, `matmul-sparse` otherwise); their kernel error is
//!   against the twin on the same kept values, their `quant err` against the f64 product
//!   of the original dense f32 weights: what pruning and the precision cost together.
//! - Unstructured rows are accuracy only: the pruned weights stored dense (zeros kept) and
//!   run by the dense kernel, labelled `(masked dense)`.
//! - A precision with no sparse kernel gives a skipped row with the reason.
//!
//! Calibration (Wanda's norms, SparseGPT's H) comes from the product's own activations A:
//! pruning then minimises the error on the very product it is measured on, as pruning a
//! model layer minimises it on that layer's calibration inputs. GFLOP/s of a sparse row
//! counts the dense product's 2mnk (effective throughput), so it compares with the dense row.

use crate::bench::matmul::MatmulRow;
use crate::bench::precision::{run_weights, PrecisionRequest};
use crate::bench::tune::{self, ShapeClass};
use crate::compare::{ErrorStats, TOL_WQ_KERNEL_REL_FROBENIUS};
use crate::error::{LabError, Result};
use crate::formats::precision::Precision;
use crate::formats::sparse::{has_sparse_kernel, SparseWeights, Sparsity};
use crate::formats::weights::Weights;
use crate::gpu::measure::measure;
use crate::gpu::Context;
use crate::kernels::matmul::{Layout, Shape};
use crate::kernels::matmul_wq::{WqKernel, WqVariant};
use crate::kernels::sparse::{PreparedSparse, SparseKernel};
use crate::prune::{self, InputStats, Method, Pruned};
use crate::reference::matmul::matmul_f64;
use crate::reference::sparse::matmul_sparse_f64;

/// Which sparsities to add to a precision run, and how to prune.
#[derive(Debug, Clone)]
pub struct SparseRequest {
    /// Patterns (dense entries are the precision run's own rows).
    pub sparsity: Vec<Sparsity>,
    /// Pruning method.
    pub method: Method,
}

/// The sparse kernel for a format and pattern at `m` activation rows: the tuned one
/// (`tune --sparsity`), else the default; and whether it came from the cache.
pub fn kernel_for(
    ctx: &Context,
    tuned: &tune::Tuned,
    format: crate::formats::weights::WeightFormat,
    pattern: crate::formats::sparse::NmPattern,
    m: usize,
) -> (SparseKernel, bool) {
    match tune::tuned_sparse(tuned, format, pattern, m) {
        Some(k) => (k, true),
        None => (SparseKernel::default_for(ctx, m), false),
    }
}

/// [`kernel_for`] for a model's compressed matrices (per layer, all of one format and
/// pattern, as `prune` stores them) at `m` activation rows.
pub fn kernel_for_layers(
    ctx: &Context,
    tuned: &tune::Tuned,
    layers: &[Vec<crate::formats::sparse::SparseWeights>],
    m: usize,
) -> crate::error::Result<(SparseKernel, bool)> {
    let first = layers.iter().flatten().next().ok_or_else(|| {
        crate::error::LabError::Shape("a pruned model with no sparse matrices".into())
    })?;
    Ok(kernel_for(ctx, tuned, first.kept.format, first.pattern, m))
}

/// Adds the sparse rows to `dense` (the rows of [`crate::bench::precision::run`] for the
/// same request and inputs): each precision's dense rows, then its sparse rows.
pub fn run(
    ctx: &Context,
    req: &PrecisionRequest,
    sreq: &SparseRequest,
    a: &[f32],
    w: &[f32],
    dense: Vec<MatmulRow>,
) -> Result<Vec<MatmulRow>> {
    let (m, n, k) = (req.m, req.n, req.k);
    let shape = Shape::new(m, n, k)?;
    shape.check(a.len(), w.len())?;
    let exact = matmul_f64(Layout::Nt, shape, a, w)?;
    let stats = if sreq.method.needs_calibration() {
        let mut s = InputStats::new(k, sreq.method.needs_hessian());
        s.add(a)?;
        Some(s)
    } else {
        None
    };
    let patterns: Vec<(Sparsity, std::result::Result<Pruned, String>)> = sreq
        .sparsity
        .iter()
        .filter(|s| **s != Sparsity::Dense)
        .map(|&s| {
            let p =
                prune::prune(sreq.method, s, w, n, k, stats.as_ref()).map_err(|e| e.to_string());
            (s, p)
        })
        .collect();
    let mut rows = Vec::new();
    for &precision in &req.precisions {
        let mine: Vec<MatmulRow> = dense
            .iter()
            .filter(|r| r.precision == precision.name())
            .cloned()
            .map(|mut r| {
                r.sparsity = Some(Sparsity::Dense.to_string());
                r
            })
            .collect();
        let best_dense = mine
            .iter()
            .filter(|r| r.skipped.is_none())
            .map(|r| r.gpu_ms_median)
            .fold(f64::INFINITY, f64::min);
        rows.extend(mine);
        for (sparsity, pruned) in &patterns {
            let outcome = match pruned {
                Err(why) => Err(why.clone()),
                Ok(p) => match sparse_row(ctx, req, precision, *sparsity, p, a) {
                    Ok(r) => Ok(r),
                    Err(e @ LabError::DeviceLost(_)) => return Err(e),
                    Err(e) => Err(e.to_string()),
                },
            };
            let mut row = match outcome {
                Ok((mut row, c)) => {
                    row.quant_rel_err = Some(ErrorStats::compare(&c, &exact).rel_frobenius);
                    row.gbps = row
                        .weight_bytes
                        .map(|b| b as f64 / (row.gpu_ms_median * 1e6));
                    if best_dense.is_finite() {
                        row.speedup_vs_dense = Some(best_dense / row.gpu_ms_median);
                    }
                    row
                }
                Err(why) => {
                    let mut row = MatmulRow::new(
                        ctx,
                        "-",
                        String::new(),
                        precision.name(),
                        Layout::Nt,
                        shape,
                    );
                    row.skipped = Some(why);
                    row
                }
            };
            row.sparsity = Some(sparsity.to_string());
            row.prune = Some(sreq.method.name().to_string());
            rows.push(row);
        }
    }
    // Against the fastest dense f32 row, as the dense rows are.
    let f32_ms = rows
        .iter()
        .filter(|r| r.precision == "f32" && r.skipped.is_none() && r.prune.is_none())
        .map(|r| r.gpu_ms_median)
        .fold(f64::INFINITY, f64::min);
    if f32_ms.is_finite() {
        for r in rows
            .iter_mut()
            .filter(|r| r.prune.is_some() && r.skipped.is_none())
        {
            r.speedup_vs_f32 = Some(f32_ms / r.gpu_ms_median);
        }
    }
    Ok(rows)
}

/// One precision at one pattern: the row and the GPU's C.
fn sparse_row(
    ctx: &Context,
    req: &PrecisionRequest,
    precision: Precision,
    sparsity: Sparsity,
    pruned: &Pruned,
    a: &[f32],
) -> Result<(MatmulRow, Vec<f32>)> {
    let (m, n, k) = (req.m, req.n, req.k);
    let shape = Shape::new(m, n, k)?;
    let format = match precision {
        Precision::Weights(f) => f,
        _ => {
            return Err(LabError::InvalidArgument(format!(
                "no sparse kernel for {} (sparsity runs the weight formats)",
                precision.name()
            )))
        }
    };
    match sparsity {
        Sparsity::Nm(p) => {
            if !has_sparse_kernel(format) {
                return Err(LabError::InvalidArgument(format!(
                    "no sparse kernel for {} (the N:M kernels take formats with blocks of 32)",
                    format.name()
                )));
            }
            let sw = SparseWeights::compress(format, p, n, k, &pruned.w, &pruned.keep)?;
            let (kernel, from_cache) = kernel_for(ctx, &req.tuned, format, p, m);
            let op = PreparedSparse::new(ctx, kernel, a, m, k, &sw)?;
            let reference = matmul_sparse_f64(a, m, k, &sw)?;
            let (t, c) = measure(ctx, &op, req.runs)?;
            let mut row = MatmulRow::new(
                ctx,
                &format!(
                    "{} ({})",
                    kernel.name(),
                    if from_cache { "tuned" } else { "default" }
                ),
                format!("{kernel:?}"),
                format.name(),
                Layout::Nt,
                shape,
            );
            row.set_timing(&t, shape.flops(), None, op.pipeline_ms);
            row.set_error(
                &ErrorStats::compare(&c, &reference),
                TOL_WQ_KERNEL_REL_FROBENIUS,
            );
            row.weight_bytes = Some(op.weight_bytes);
            Ok((row, c))
        }
        Sparsity::Unstructured { .. } => {
            let weights = Weights::encode(format, n, k, &pruned.w)?;
            let class = ShapeClass::of(m);
            let variant = if m == 1 {
                tune::tuned_gemv(&req.tuned, precision).unwrap_or(WqVariant::GEMV)
            } else {
                tune::tuned_variant(&req.tuned, precision, class).unwrap_or_else(|| {
                    WqVariant::Regblock(
                        tune::tuned_kernel(&req.tuned, precision, class)
                            .unwrap_or_else(|| WqKernel::default_for(m)),
                    )
                })
            };
            let (mut row, c) = run_weights(ctx, variant, a, m, k, &weights, req.runs)?;
            row.kernel.push_str(" (masked dense)");
            Ok((row, c))
        }
        Sparsity::Dense => unreachable!("dense rows come from the precision run"),
    }
}
