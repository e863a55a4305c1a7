//! Timing a user's kernel at one size next to the best built-in kernel of its op and
//! precision (the tune cache's) and the CPU library, on the same inputs, each row placed
//! on the measured roofline of the memory level its working set streams from.

use serde::Serialize;

use crate::bench::ceilings::Ceilings;
use crate::bench::matmul::{self as bench_matmul, MatmulRequest, MatmulRow};
use crate::bench::precision::{self, PrecisionRequest};
use crate::bench::suite::{cpu_row, suite_row, SuiteRow};
use crate::bench::tune::{self, Tuned};
use crate::compare::ErrorStats;
use crate::error::Result;
use crate::formats::precision::Precision;
use crate::gpu::measure::{measure, Runs};
use crate::gpu::Context;
use crate::kernels::matmul::{Kernel as BuiltinF32, Layout, Shape};
use crate::lab::check::{verdict, Prepared};
use crate::lab::contract::Op;
use crate::lab::kernel::Kernel;
use crate::lab::problem::Problem;

/// What to time.
#[derive(Debug, Clone)]
pub struct TimeRequest {
    /// Rows of C (1: the GEMV case).
    pub m: usize,
    /// Columns of C.
    pub n: usize,
    /// Inner dimension.
    pub k: usize,
    /// Warm-up and timed runs of every GPU kernel.
    pub runs: Runs,
    /// Time the CPU library too.
    pub cpu_baseline: bool,
    /// The adapter's tune-cache entries: the built-in row runs the tuned kernel.
    pub tuned: Tuned,
}

/// The rows of one timing.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    /// The user's kernel, then the built-in kernels of the op (each validated).
    pub rows: Vec<MatmulRow>,
    /// The same rows and the CPU library's, on the roofline (the CPU's row last).
    pub roofline: Vec<SuiteRow>,
    /// The best built-in's median / the user kernel's median (> 1: the user's is faster).
    pub vs_builtin: Option<f64>,
}

/// The built-in rows of `op` on the problem's inputs (the tuned kernel, validated, with the
/// CPU library's time).
fn builtin_rows(ctx: &Context, op: Op, p: &Problem, req: &TimeRequest) -> Result<Vec<MatmulRow>> {
    let shape = Shape::new(p.m, p.n, p.k)?;
    let (a, b) = (&p.a, &p.b);
    match (op, op.f32_layout()) {
        (_, Some(layout)) => {
            let tuned = tune::tuned_f32(&req.tuned, layout);
            let kernel = match tuned {
                Some(k) => k,
                None => BuiltinF32::named("regblock", layout)?,
            };
            let r = MatmulRequest {
                shape,
                layout,
                kernels: vec![kernel],
                warmup: req.runs.warmup,
                repeat: req.runs.repeat,
                cpu_baseline: req.cpu_baseline,
                b_f16: false,
            };
            let (mut rows, _) = bench_matmul::run(ctx, &r, a, b)?;
            for row in &mut rows {
                let t = if tuned.is_some() { "tuned" } else { "default" };
                row.tuning = Some(t.into());
            }
            Ok(rows)
        }
        (Op::MatmulNt { precision }, None) => {
            precision_rows(ctx, Precision::Weights(precision), p, req)
        }
        (_, None) => precision_rows(ctx, Precision::Int8, p, req),
    }
}

fn precision_rows(
    ctx: &Context,
    precision: Precision,
    p: &Problem,
    req: &TimeRequest,
) -> Result<Vec<MatmulRow>> {
    let r = PrecisionRequest {
        m: p.m,
        n: p.n,
        k: p.k,
        precisions: vec![precision],
        kernel: None,
        tuned: req.tuned.clone(),
        runs: req.runs,
        cpu_baseline: req.cpu_baseline,
        extra: Vec::new(),
    };
    let mut rows = precision::run(ctx, &r, &p.a, &p.b)?;
    for row in &mut rows {
        let t = if row.config.ends_with(" (tuned)") {
            "tuned"
        } else {
            "default"
        };
        row.tuning.get_or_insert_with(|| t.into());
    }
    Ok(rows)
}

/// Times `kernel` as `op` at the request's size (validated on that problem too), then the
/// built-in kernels and the CPU library on the same inputs; places every row on `gpu`'s
/// (the adapter's) or `cpu`'s roofline (unmeasured ceilings leave the roofline empty).
pub fn time(
    ctx: &Context,
    kernel: &Kernel,
    op: Op,
    req: &TimeRequest,
    gpu: &Ceilings,
    cpu: &Ceilings,
) -> Result<Timing> {
    let problem = Problem::new(op, req.m, req.n, req.k, 0x7153)?;
    let prepared = Prepared::new(ctx, kernel, &problem)?;
    let (t, got) = measure(ctx, &prepared, req.runs)?;
    let name = std::path::Path::new(&kernel.path)
        .file_stem()
        .map_or(kernel.path.clone(), |s| s.to_string_lossy().into_owned());
    let constants: Vec<String> = kernel
        .constants()?
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let shape = Shape::new(req.m, req.n, req.k)?;
    let layout = op.f32_layout().unwrap_or(Layout::Nt);
    let mut yours = MatmulRow::new(
        ctx,
        &format!("{name} (yours)"),
        constants.join(" "),
        op.precision(),
        layout,
        shape,
    );
    yours.set_timing(&t, problem.flops(), None, None);
    let v = verdict(&problem, &got, t.first_run_ms);
    yours.set_error(&ErrorStats::compare(&got, &problem.want), v.tolerance);
    yours.weight_bytes = Some(problem.weight_bytes);
    yours.gbps = Some(problem.weight_bytes as f64 / (t.gpu.median * 1e6));
    let builtin = builtin_rows(ctx, op, &problem, req)?;
    let ran: Vec<&MatmulRow> = builtin
        .iter()
        .filter(|r| r.skipped.is_none() && r.passed)
        .collect();
    let cpu_ms = builtin.iter().find_map(|r| r.cpu_ms);
    yours.cpu_ms = cpu_ms;
    yours.speedup_vs_cpu = cpu_ms.map(|c| c / t.gpu.median);
    yours.cpu_impl = builtin.iter().find_map(|r| r.cpu_impl.clone());
    let best = ran
        .iter()
        .map(|r| r.gpu_ms_median)
        .min_by(|a, b| a.total_cmp(b));
    let mut rows = vec![yours];
    rows.extend(builtin.iter().cloned());
    let mut roofline: Vec<SuiteRow> = rows.iter().map(|r| suite_row(r, gpu)).collect();
    if let Some(c) = builtin.iter().find_map(|r| cpu_row(r, cpu)) {
        roofline.push(c);
    }
    Ok(Timing {
        vs_builtin: best.map(|b| b / rows[0].gpu_ms_median),
        rows,
        roofline,
    })
}
