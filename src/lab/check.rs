//! Validating a user's kernel: run it on a battery of shapes (the sizes that break tiles,
//! m = 1, a partial tile of its own), each against the float64 twin with the precision's
//! tolerance; on failure, the shape, the first wrong element, the expected and the actual.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::compare::ErrorStats;
use crate::error::{LabError, Result};
use crate::gpu::measure::GpuOp;
use crate::gpu::pipeline as gpu_pipeline;
use crate::gpu::timing::{self, GpuTimer, TimingSource};
use crate::gpu::{buffers, dispatch, Context};
use crate::lab::contract::Op;
use crate::lab::kernel::Kernel;
use crate::lab::problem::Problem;

/// A shape to validate on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShapeSpec {
    /// m x n x k.
    Fixed(usize, usize, usize),
    /// Two tiles and one row of the kernel's own tile along m, and along n, partial:
    /// (2 rows + 1) x (3 cols - 1) x 71.
    PartialTiles,
}

/// The shapes a kernel is validated on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shapes(pub Vec<ShapeSpec>);

impl Shapes {
    /// The battery the built-in kernels pass: 1x1x1, 7x13x5, 33x65x17, 257x129x300,
    /// m = 1 (1x1000x1000), the kernel's partial tiles, and 1000x1000x1000.
    pub fn battery() -> Self {
        use ShapeSpec::*;
        Shapes(vec![
            Fixed(1, 1, 1),
            Fixed(7, 13, 5),
            Fixed(33, 65, 17),
            Fixed(257, 129, 300),
            Fixed(1, 1000, 1000),
            PartialTiles,
            Fixed(1000, 1000, 1000),
        ])
    }

    /// The battery without its largest shape (for a quick loop while editing, and for the
    /// candidates of `tune --kernel`, whose winner then passes the full battery).
    pub fn quick() -> Self {
        let mut s = Self::battery();
        s.0.retain(|x| *x != ShapeSpec::Fixed(1000, 1000, 1000));
        s
    }

    /// One shape.
    pub fn one(m: usize, n: usize, k: usize) -> Self {
        Shapes(vec![ShapeSpec::Fixed(m, n, k)])
    }
}

/// The first element past the tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Wrong {
    /// Row of C.
    pub row: usize,
    /// Column of C.
    pub col: usize,
    /// What the kernel wrote (NaN: never written, the output was poisoned).
    pub got: f64,
    /// What the twin computed.
    pub want: f64,
}

/// The verdict on one shape.
#[derive(Debug, Clone, Serialize)]
pub struct ShapeResult {
    /// Rows of C.
    pub m: usize,
    /// Columns of C.
    pub n: usize,
    /// Inner dimension (as asked; the kernel sees it padded as the contract says).
    pub k: usize,
    /// Relative Frobenius error against the twin (NaN when an element was not written).
    pub rel_err: f64,
    /// The tolerance it is held to.
    pub tolerance: f64,
    /// rel_err <= tolerance.
    pub passed: bool,
    /// The first element (row-major) whose error is past `tolerance` x the RMS of C
    /// (x 10, so rounding never trips it), or that is not finite.
    pub first_wrong: Option<Wrong>,
    /// Submit to completion of the one run, wall clock, ms (includes the driver's compile
    /// on the first shape).
    pub run_ms: f64,
}

impl ShapeResult {
    /// One line: the shape, pass/fail, and on failure the first wrong element.
    pub fn describe(&self) -> String {
        let shape = format!("{}x{}x{}", self.m, self.n, self.k);
        if self.passed {
            return format!("{shape:>14}  ok    rel. error {:.2e}", self.rel_err);
        }
        let wrong = self.first_wrong.map_or(String::new(), |w| {
            format!(
                "; first wrong C[{}][{}]: expected {}, got {}",
                w.row, w.col, w.want, w.got
            )
        });
        format!(
            "{shape:>14}  FAIL  rel. error {:.2e} > tolerance {:.0e}{wrong}",
            self.rel_err, self.tolerance
        )
    }
}

/// What [`check`] found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The kernel file.
    pub kernel: String,
    /// `op/precision`.
    pub op: String,
    /// The adapter it ran on.
    pub adapter: String,
    /// The override constants its pipeline got.
    pub constants: std::collections::BTreeMap<String, f64>,
    /// Rows x columns of C per workgroup.
    pub tile: (u32, u32),
    /// Per shape, in battery order.
    pub shapes: Vec<ShapeResult>,
    /// Why nothing ran (a feature the adapter lacks), if so.
    pub skipped: Option<String>,
}

impl Report {
    /// True when it ran and every shape passed.
    pub fn passed(&self) -> bool {
        self.skipped.is_none() && self.shapes.iter().all(|s| s.passed)
    }

    /// The first failing shape, if any.
    pub fn first_failure(&self) -> Option<&ShapeResult> {
        self.shapes.iter().find(|s| !s.passed)
    }

    /// The per-shape lines.
    pub fn describe(&self) -> String {
        if let Some(why) = &self.skipped {
            return format!("skipped: {why}\n");
        }
        self.shapes.iter().map(|s| s.describe() + "\n").collect()
    }
}

/// A user's kernel with one problem's buffers bound: the [`GpuOp`] the lab validates and
/// times.
pub struct Prepared {
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    c: wgpu::Buffer,
    grid: (u32, u32),
    len: usize,
}

impl Prepared {
    /// Compiles `kernel` for the problem's op and binds the problem's buffers.
    pub fn new(ctx: &Context, kernel: &Kernel, problem: &Problem) -> Result<Self> {
        let pipeline = kernel.pipeline(ctx, problem.op)?;
        Self::with_pipeline(ctx, kernel, problem, pipeline)
    }

    fn with_pipeline(
        ctx: &Context,
        kernel: &Kernel,
        problem: &Problem,
        pipeline: wgpu::ComputePipeline,
    ) -> Result<Self> {
        let tile = kernel.tile()?;
        let (uniform, tiles) = problem.uniform(tile);
        let grid = dispatch::grid(tiles, ctx.limits().max_compute_workgroups_per_dimension)?;
        let names = problem.op.bindings();
        let u = buffers::uniform(ctx, "lab.p", &uniform)?;
        let mut owned = Vec::new();
        for (i, data) in problem.inputs.iter().enumerate() {
            // Whole vec4s, so a kernel may bind any input as vec4s.
            let mut d = data.clone();
            d.resize(d.len().div_ceil(4).max(1) * 4, 0);
            owned.push(buffers::upload(
                ctx,
                &format!("lab.{}", names[i + 1].name),
                &d,
            )?);
        }
        let len = problem.m * problem.n;
        let c = buffers::storage(ctx, "lab.c", (len.div_ceil(4) * 16) as u64)?;
        let mut all: Vec<&wgpu::Buffer> = vec![&u];
        all.extend(owned.iter());
        all.push(&c);
        let bind_group =
            gpu_pipeline::bind_group(ctx, &pipeline, &kernel.path, &all).map_err(|e| {
                LabError::Kernel {
                    path: kernel.path.clone(),
                    message: format!("binding the contract's buffers failed: {e}"),
                }
            })?;
        Ok(Self {
            pipeline,
            bind_group,
            c,
            grid,
            len,
        })
    }
}

impl GpuOp for Prepared {
    fn poison(&self, ctx: &Context) {
        buffers::poison(ctx, &self.c);
    }
    fn run(&self, ctx: &Context, timer: Option<&GpuTimer>) -> Result<(f64, TimingSource)> {
        timing::time_pass(ctx, timer, "lab kernel", |pass| {
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &self.bind_group, &[]);
            pass.dispatch_workgroups(self.grid.0, self.grid.1, 1);
        })
    }
    fn read(&self, ctx: &Context) -> Result<Vec<f32>> {
        buffers::read(ctx, &self.c, self.len)
    }
}

/// Compares `got` with the problem's twin.
pub fn verdict(problem: &Problem, got: &[f32], run_ms: f64) -> ShapeResult {
    let err = ErrorStats::compare(got, &problem.want);
    let rms = (problem.want.iter().map(|w| w * w).sum::<f64>() / problem.want.len().max(1) as f64)
        .sqrt()
        .max(f64::MIN_POSITIVE);
    let bound = 10.0 * problem.tolerance * rms;
    let first_wrong = got
        .iter()
        .zip(&problem.want)
        .position(|(&g, &w)| !g.is_finite() || (g as f64 - w).abs() > bound)
        .map(|i| Wrong {
            row: i / problem.n,
            col: i % problem.n,
            got: got[i] as f64,
            want: problem.want[i],
        });
    ShapeResult {
        m: problem.m,
        n: problem.n,
        k: problem.k,
        rel_err: err.rel_frobenius,
        tolerance: problem.tolerance,
        passed: err.passes(problem.tolerance),
        first_wrong,
        run_ms,
    }
}

/// The most one run of a user's kernel may take before it is reported as hung: far past
/// what any sane kernel needs on the battery's largest shape on a software adapter
/// (lavapipe's naive f32 kernel: ~2 s at 1000^3).
pub const DEFAULT_RUN_LIMIT: Duration = Duration::from_secs(120);

/// Validates `kernel` as `op` on `shapes`: compiles once, then per shape poisons C, runs
/// once and compares with the twin. A kernel whose code needs a feature the adapter lacks
/// is skipped with the reason. A run past `limit` is an error ([`LabError::Timeout`]) and
/// leaves the device busy: a caller should end the process rather than go on.
pub fn check_with_limit(
    ctx: &Context,
    kernel: &Kernel,
    op: Op,
    shapes: &Shapes,
    limit: Duration,
) -> Result<Report> {
    kernel.check_contract(op)?;
    let mut report = Report {
        kernel: kernel.path.clone(),
        op: op.label(),
        adapter: ctx.summary.name.clone(),
        constants: kernel.constants()?,
        tile: kernel.tile()?,
        shapes: Vec::new(),
        skipped: kernel.unsupported(ctx),
    };
    if report.skipped.is_some() {
        return Ok(report);
    }
    let pipeline = kernel.pipeline(ctx, op)?;
    let saved = ctx.wait_timeout();
    ctx.set_wait_timeout(limit);
    let out = (|| {
        for (i, spec) in shapes.0.iter().enumerate() {
            let (m, n, k) = match *spec {
                ShapeSpec::Fixed(m, n, k) => (m, n, k),
                ShapeSpec::PartialTiles => {
                    let (r, c) = report.tile;
                    (
                        2 * r as usize + 1,
                        (3 * c as usize).saturating_sub(1).max(1),
                        71,
                    )
                }
            };
            let problem = Problem::new(op, m, n, k, 0x1ab + i as u64)?;
            let prepared = Prepared::with_pipeline(ctx, kernel, &problem, pipeline.clone())?;
            prepared.poison(ctx);
            let t = Instant::now();
            prepared.run(ctx, None)?;
            let ms = t.elapsed().as_secs_f64() * 1e3;
            let got = prepared.read(ctx)?;
            report.shapes.push(verdict(&problem, &got, ms));
        }
        Ok(())
    })();
    ctx.set_wait_timeout(saved);
    out.map(|()| report)
}

/// [`check_with_limit`] with [`DEFAULT_RUN_LIMIT`]: the call a user's `cargo test` makes
/// (examples/lab_check.rs is a whole test file around it).
///
/// ```
/// use wgpu_lab::lab::{check, Kernel, Op, Shapes};
/// use wgpu_lab::formats::weights::WeightFormat;
///
/// let ctx = wgpu_lab::Context::new(&Default::default())?;
/// let kernel = Kernel::from_file("examples/kernels/matmul_q4_0_nt.wgsl")?;
/// let op = Op::MatmulNt { precision: WeightFormat::Q4_0 };
/// // Shapes::battery() adds 1000 x 1000 x 1000; quick() keeps a doc test quick.
/// let report = check(&ctx, &kernel, op, &Shapes::quick())?;
/// assert!(report.passed(), "{}", report.describe());
/// # Ok::<(), wgpu_lab::LabError>(())
/// ```
pub fn check(ctx: &Context, kernel: &Kernel, op: Op, shapes: &Shapes) -> Result<Report> {
    check_with_limit(ctx, kernel, op, shapes, DEFAULT_RUN_LIMIT)
}
