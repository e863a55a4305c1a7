//! The `matmul` benchmark: every requested kernel on the same inputs, validated against the
//! f64 reference and timed against the CPU baseline.

use std::time::Instant;

use serde::Serialize;

use crate::compare::{ErrorStats, TOL_F32_REL_FROBENIUS};
use crate::error::Result;
use crate::gpu::timing::{GpuTimer, TimingSource};
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
        MatmulOptions::default(),
    )?;
    prepared.poison(ctx);
    let t = Instant::now();
    prepared.run(ctx, None)?;
    let first_run_ms = t.elapsed().as_secs_f64() * 1e3;
    let c = prepared.read(ctx)?;
    let err = ErrorStats::compare(&c, reference);

    let timer = GpuTimer::new(ctx);
    for _ in 0..req.warmup {
        prepared.run(ctx, timer.as_ref())?;
    }
    let mut samples = Vec::with_capacity(req.repeat);
    let mut source = TimingSource::WallClock;
    for _ in 0..req.repeat.max(1) {
        let (ms, s) = prepared.run(ctx, timer.as_ref())?;
        samples.push(ms);
        source = s;
    }
    let gpu = Summary::of(&samples).expect("at least one sample");
    let tol = TOL_F32_REL_FROBENIUS;
    let row = MatmulRow {
        adapter: ctx.summary.name.clone(),
        backend: ctx.summary.backend.clone(),
        kernel: kernel.name().to_string(),
        config: format!("{kernel:?}"),
        precision: "f32".into(),
        layout: req.layout,
        m: shape.m,
        n: shape.n,
        k: shape.k,
        gpu_ms_median: gpu.median,
        gpu_ms_min: gpu.min,
        gpu_ms_max: gpu.max,
        gflops: shape.flops() / (gpu.median * 1e6),
        cpu_ms: cpu.map(|c| c.median),
        speedup_vs_cpu: cpu.map(|c| c.median / gpu.median),
        rel_err: err.rel_frobenius,
        max_abs_err: err.max_abs,
        tolerance: tol,
        passed: err.passes(tol),
        timing: source,
        pipeline_ms: prepared.pipeline_ms,
        first_run_ms,
        repeat: samples.len(),
        chunks: prepared.chunk_count(),
    };
    Ok((row, c))
}

/// Runs every requested kernel on `a`, `b`; returns the rows and the last kernel's C.
pub fn run(
    ctx: &Context,
    req: &MatmulRequest,
    a: &[f32],
    b: &[f32],
) -> Result<(Vec<MatmulRow>, Vec<f32>)> {
    req.shape.check(a.len(), b.len())?;
    let reference = matmul_f64(req.layout, req.shape, a, b)?;
    let cpu = if req.cpu_baseline {
        Some(time_cpu(req.layout, req.shape, a, b, req.repeat.min(5))?)
    } else {
        None
    };
    let mut rows = Vec::new();
    let mut last = Vec::new();
    for &kernel in &req.kernels {
        let (row, c) = run_kernel(ctx, kernel, req, a, b, &reference, cpu)?;
        rows.push(row);
        last = c;
    }
    Ok((rows, last))
}
