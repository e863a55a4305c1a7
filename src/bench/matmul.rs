//! The `matmul` benchmark: every requested kernel on the same inputs, validated against the
//! f64 reference and timed against the CPU baseline.

use std::time::Instant;

use serde::Serialize;

use crate::compare::{ErrorStats, TOL_F32_REL_FROBENIUS};
use crate::error::Result;
use crate::gpu::measure::{measure, Runs, Timed};
use crate::gpu::timing::TimingSource;
use crate::gpu::Context;
use crate::kernels::matmul::{Kernel, Layout, MatmulOptions, PreparedMatmul, Shape};
use crate::reference::matmul::{matmul_cpu_fast, matmul_f64};
use crate::stats::Summary;

/// What to run: one problem, several kernels.
#[derive(Debug, Clone)]
pub struct MatmulRequest {
    /// Problem size.
    pub shape: Shape,
    /// B's layout.
    pub layout: Layout,
    /// Kernels to run, in order.
    pub kernels: Vec<Kernel>,
    /// Untimed runs after the first (validated) run.
    pub warmup: usize,
    /// Timed runs.
    pub repeat: usize,
    /// Time the CPU baseline too.
    pub cpu_baseline: bool,
    /// Store B as f16 (precision `f16`; regblock only), accumulate in f32.
    pub b_f16: bool,
}

/// One result row (the `--json` object of `wgpu-lab matmul`).
#[derive(Debug, Clone, Serialize)]
pub struct MatmulRow {
    /// Adapter name.
    pub adapter: String,
    /// Backend name.
    pub backend: String,
    /// Kernel name.
    pub kernel: String,
    /// Kernel configuration, e.g. `Regblock { wg_x: 16, tm: 8, tn: 2 }`.
    pub config: String,
    /// Precision of the operands.
    pub precision: String,
    /// B's layout.
    pub layout: Layout,
    /// Rows of C.
    pub m: usize,
    /// Columns of C.
    pub n: usize,
    /// Inner dimension.
    pub k: usize,
    /// Median of the timed runs, ms.
    pub gpu_ms_median: f64,
    /// Fastest timed run, ms.
    pub gpu_ms_min: f64,
    /// Slowest timed run, ms.
    pub gpu_ms_max: f64,
    /// 2*m*n*k / median.
    pub gflops: f64,
    /// CPU baseline median, ms (None when not run).
    pub cpu_ms: Option<f64>,
    /// cpu_ms / gpu_ms_median.
    pub speedup_vs_cpu: Option<f64>,
    /// The library behind cpu_ms (see `reference::cpu_baseline`).
    pub cpu_impl: Option<String>,
    /// Where the kernel's configuration came from, where a command says: `tuned` (a `tune`
    /// run), `autotuned` (a first-use search, `bench::autotune`) or `default`.
    pub tuning: Option<String>,
    /// Relative Frobenius error against the f64 reference.
    pub rel_err: f64,
    /// Largest absolute error.
    pub max_abs_err: f64,
    /// The tolerance on rel_err.
    pub tolerance: f64,
    /// rel_err <= tolerance (and no NaN).
    pub passed: bool,
    /// How the GPU runs were timed.
    pub timing: TimingSource,
    /// Host time to create the pipeline, ms (None when it was already cached).
    pub pipeline_ms: Option<f64>,
    /// First dispatch, submit to completion, wall clock (includes any driver JIT), ms.
    pub first_run_ms: f64,
    /// Number of timed runs.
    pub repeat: usize,
    /// Independent dispatches the problem was split into (1 unless over binding limits).
    pub chunks: usize,
    /// Bytes of weights (B, the n x k operand) as stored on the GPU.
    pub weight_bytes: Option<u64>,
    /// Effective bandwidth: weight bytes / median time, GB/s.
    pub gbps: Option<f64>,
    /// Error against the f64 product on the original f32 inputs (quantization + kernel).
    pub quant_rel_err: Option<f64>,
    /// Median of the f32 row of the same run / this median.
    pub speedup_vs_f32: Option<f64>,
    /// Why this row did not run (e.g. a feature the adapter lacks); its numbers are null.
    pub skipped: Option<String>,
    /// The weights' sparsity (`dense`, `2:4`, `u50`...) where the run asked for sparsity.
    pub sparsity: Option<String>,
    /// The pruning method of a sparse row.
    pub prune: Option<String>,
    /// The fastest dense row of the same precision and shape / this median (sparse rows).
    pub speedup_vs_dense: Option<f64>,
}

impl MatmulRow {
    /// A row with identity filled in and every measurement empty (NaN serialises as null).
    pub fn new(
        ctx: &Context,
        kernel: &str,
        config: String,
        precision: &str,
        layout: Layout,
        shape: Shape,
    ) -> Self {
        Self {
            adapter: ctx.summary.name.clone(),
            backend: ctx.summary.backend.clone(),
            kernel: kernel.to_string(),
            config,
            precision: precision.to_string(),
            layout,
            m: shape.m,
            n: shape.n,
            k: shape.k,
            gpu_ms_median: f64::NAN,
            gpu_ms_min: f64::NAN,
            gpu_ms_max: f64::NAN,
            gflops: f64::NAN,
            cpu_ms: None,
            speedup_vs_cpu: None,
            cpu_impl: None,
            tuning: None,
            rel_err: f64::NAN,
            max_abs_err: f64::NAN,
            tolerance: f64::NAN,
            passed: false,
            timing: TimingSource::WallClock,
            pipeline_ms: None,
            first_run_ms: f64::NAN,
            repeat: 0,
            chunks: 1,
            weight_bytes: None,
            gbps: None,
            quant_rel_err: None,
            speedup_vs_f32: None,
            skipped: None,
            sparsity: None,
            prune: None,
            speedup_vs_dense: None,
        }
    }

    /// Fills the timing fields from a measurement of `flops` operations.
    pub fn set_timing(
        &mut self,
        t: &Timed,
        flops: f64,
        cpu: Option<Summary>,
        pipeline_ms: Option<f64>,
    ) {
        self.gpu_ms_median = t.gpu.median;
        self.gpu_ms_min = t.gpu.min;
        self.gpu_ms_max = t.gpu.max;
        self.gflops = flops / (t.gpu.median * 1e6);
        self.cpu_ms = cpu.map(|c| c.median);
        self.speedup_vs_cpu = cpu.map(|c| c.median / t.gpu.median);
        self.timing = t.timing;
        self.pipeline_ms = pipeline_ms;
        self.first_run_ms = t.first_run_ms;
        self.repeat = t.repeat;
    }

    /// Fills the validation fields.
    pub fn set_error(&mut self, err: &ErrorStats, tol: f64) {
        self.rel_err = err.rel_frobenius;
        self.max_abs_err = err.max_abs;
        self.tolerance = tol;
        self.passed = err.passes(tol);
    }
}

/// Times the CPU baseline: one warm-up, then `repeat` runs (at least 1).
pub fn time_cpu(
    layout: Layout,
    shape: Shape,
    a: &[f32],
    b: &[f32],
    repeat: usize,
) -> Result<Summary> {
    matmul_cpu_fast(layout, shape, a, b)?;
    let mut samples = Vec::new();
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        let c = matmul_cpu_fast(layout, shape, a, b)?;
        samples.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(c);
    }
    Ok(Summary::of(&samples).expect("at least one sample"))
}

/// Runs one kernel: prepare, poisoned first run (validated), warm-up, timed runs.
/// Returns the row and the GPU's C.
pub fn run_kernel(
    ctx: &Context,
    kernel: Kernel,
    req: &MatmulRequest,
    a: &[f32],
    b: &[f32],
    reference: &[f64],
    cpu: Option<Summary>,
) -> Result<(MatmulRow, Vec<f32>)> {
    let shape = req.shape;
    let prepared = PreparedMatmul::new(
        ctx,
        kernel,
        req.layout,
        shape,
        a,
        b,
        MatmulOptions {
            b_f16: req.b_f16,
            ..Default::default()
        },
    )?;
    let (t, c) = measure(
        ctx,
        &prepared,
        Runs {
            warmup: req.warmup,
            repeat: req.repeat,
        },
    )?;
    let err = ErrorStats::compare(&c, reference);
    let tol = TOL_F32_REL_FROBENIUS;
    let mut row = kernel_row(ctx, kernel, req);
    row.set_timing(&t, shape.flops(), cpu, prepared.pipeline_ms);
    row.set_error(&err, tol);
    let bytes_per_b = if req.b_f16 { 2 } else { 4 };
    row.weight_bytes = Some((shape.n * shape.k * bytes_per_b) as u64);
    row.gbps = row.weight_bytes.map(|b| b as f64 / (t.gpu.median * 1e6));
    row.chunks = prepared.chunk_count();
    Ok((row, c))
}

/// The row of `kernel` in `req`, identity only.
fn kernel_row(ctx: &Context, kernel: Kernel, req: &MatmulRequest) -> MatmulRow {
    MatmulRow::new(
        ctx,
        kernel.name(),
        format!("{kernel:?}"),
        if req.b_f16 { "f16" } else { "f32" },
        req.layout,
        req.shape,
    )
}

/// Runs every requested kernel on `a`, `b`; returns the rows and the last kernel's C.
pub fn run(
    ctx: &Context,
    req: &MatmulRequest,
    a: &[f32],
    b: &[f32],
) -> Result<(Vec<MatmulRow>, Vec<f32>)> {
    req.shape.check(a.len(), b.len())?;
    // The kernel's reference multiplies what the kernel multiplies (f16-rounded B for f16);
    // the exact product on the f32 inputs gives the precision's cost.
    let exact = matmul_f64(req.layout, req.shape, a, b)?;
    let reference = if req.b_f16 {
        let b16: Vec<f32> = b.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
        matmul_f64(req.layout, req.shape, a, &b16)?
    } else {
        exact.clone()
    };
    let cpu = if req.cpu_baseline {
        Some(time_cpu(req.layout, req.shape, a, b, req.repeat.min(5))?)
    } else {
        None
    };
    let mut rows = Vec::new();
    let mut last = Vec::new();
    for &kernel in &req.kernels {
        // A kernel the adapter cannot run (the subgroup block without SUBGROUP) is a row
        // that says why, not an error that hides the others.
        if let Some(why) = kernel.unsupported(ctx) {
            let mut row = kernel_row(ctx, kernel, req);
            row.skipped = Some(why);
            rows.push(row);
            continue;
        }
        let (mut row, c) = run_kernel(ctx, kernel, req, a, b, &reference, cpu)?;
        row.quant_rel_err = Some(ErrorStats::compare(&c, &exact).rel_frobenius);
        rows.push(row);
        last = c;
    }
    Ok((rows, last))
}
