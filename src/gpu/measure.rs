//! Validated, timed runs of a GPU operation: the [`GpuOp`] trait every kernel implements
//! and [`measure`], which poisons, runs once (paying any JIT), reads back, warms up and
//! times. It lives in `gpu` so that kernels implement it without looking up at `bench`.

use std::time::Instant;

use crate::error::Result;
use crate::gpu::timing::{GpuTimer, TimingSource};
use crate::gpu::Context;
use crate::stats::Summary;

/// A GPU operation with its inputs uploaded: what [`measure`] needs to validate and time it.
pub trait GpuOp {
    /// Fills the output with NaN, so an element the kernel fails to write is caught.
    fn poison(&self, ctx: &Context);
    /// Runs once; returns the duration (ms) and how it was timed.
    fn run(&self, ctx: &Context, timer: Option<&GpuTimer>) -> Result<(f64, TimingSource)>;
    /// Reads the output back (for validation; never inside a timed region).
    fn read(&self, ctx: &Context) -> Result<Vec<f32>>;
}

/// How many times to run: untimed warm-up runs after the validated first run, then timed.
#[derive(Debug, Clone, Copy)]
pub struct Runs {
    /// Untimed runs.
    pub warmup: usize,
    /// Timed runs (at least 1 is made).
    pub repeat: usize,
}

/// Timings of one operation, first run apart from steady state.
#[derive(Debug, Clone, Copy)]
pub struct Timed {
    /// First dispatch, submit to completion, wall clock (includes driver JIT), ms.
    pub first_run_ms: f64,
    /// Steady-state runs.
    pub gpu: Summary,
    /// How the steady-state runs were timed.
    pub timing: TimingSource,
    /// Number of steady-state runs.
    pub repeat: usize,
}

/// Poisons the output, runs once (timed on the wall clock: this run pays any driver JIT),
/// reads the result for validation, then `warmup` untimed and `repeat` timed runs (GPU
/// timestamps when the adapter has them). Returns the timings and the first run's output.
pub fn measure(ctx: &Context, op: &dyn GpuOp, runs: Runs) -> Result<(Timed, Vec<f32>)> {
    let Runs { warmup, repeat } = runs;
    op.poison(ctx);
    let t = Instant::now();
    op.run(ctx, None)?;
    let first_run_ms = t.elapsed().as_secs_f64() * 1e3;
    let out = op.read(ctx)?;
    let timer = GpuTimer::new(ctx);
    for _ in 0..warmup {
        op.run(ctx, timer.as_ref())?;
    }
    let mut samples = Vec::with_capacity(repeat.max(1));
    let mut timing = TimingSource::WallClock;
    for _ in 0..repeat.max(1) {
        let (ms, source) = op.run(ctx, timer.as_ref())?;
        samples.push(ms);
        timing = source;
    }
    let gpu = Summary::of(&samples).expect("at least one sample");
    Ok((
        Timed {
            first_run_ms,
            gpu,
            timing,
            repeat: samples.len(),
        },
        out,
    ))
}
