//! Per-adapter autotuning: search the register-block configurations of the precision
//! kernels for each shape class, and the workgroup size and rows per workgroup of the GEMV
//! kernel of the weight formats; validate every candidate against its reference, keep the
//! fastest that passes, and remember it in a cache keyed by adapter, backend and driver.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bench::precision::{self, PrecisionRequest};
use crate::error::{LabError, Result};
use crate::formats::precision::Precision;
use crate::formats::sparse::{NmPattern, SparseWeights, Sparsity};
use crate::formats::weights::WeightFormat;
use crate::gpu::measure::Runs;
use crate::gpu::Context;
use crate::kernels::matmul::Layout;
use crate::kernels::matmul_wq::{
    is_gemv_name, TiledKernel, WqKernel, WqVariant, BROADCAST_A_BYTES,
};
use crate::kernels::sparse::{PreparedSparse, SparseKernel};

/// Shape classes tuned separately: the compute-bound GEMM and the memory-bound GEMV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShapeClass {
    /// m > 1.
    Gemm,
    /// m = 1.
    Gemv,
}

impl ShapeClass {
    /// The class of a problem with `m` activation rows.
    pub fn of(m: usize) -> Self {
        if m == 1 {
            ShapeClass::Gemv
        } else {
            ShapeClass::Gemm
        }
    }

    /// `gemm` or `gemv`, as cache keys name it.
    pub fn name(self) -> &'static str {
        match self {
            ShapeClass::Gemm => "gemm",
            ShapeClass::Gemv => "gemv",
        }
    }

    /// The problem the class is tuned on (m, n, k).
    pub fn problem(self) -> (usize, usize, usize) {
        match self {
            ShapeClass::Gemm => (256, 512, 512),
            ShapeClass::Gemv => (1, 2048, 2048),
        }
    }
}

/// Candidate register blocks, all within any adapter's limits (<= 64 invocations).
pub fn candidates(class: ShapeClass) -> Vec<WqKernel> {
    let mut v = Vec::new();
    let tms: &[u32] = match class {
        ShapeClass::Gemm => &[2, 4, 6, 8],
        ShapeClass::Gemv => &[1],
    };
    for &wg_x in &[8, 16, 32, 64] {
        for &tm in tms {
            for &tn in &[1, 2, 4] {
                v.push(WqKernel { wg_x, tm, tn });
            }
        }
    }
    v
}

/// Candidate `gemv_wq` configurations: workgroup sizes 32..256 (a warp to a few on GPUs)
/// times 1..8 weight rows per workgroup, within the adapter's invocation and
/// workgroup-memory limits (the reduction holds WG x ROWS f32); each with the
/// workgroup-tree reduction and, where the adapter has SUBGROUP, the subgroup one; then
/// `gemv_wq_broadcast` at 8..64 lanes x 4 or 8 rows each, where the adapter binds its
/// 64 KiB uniform row.
pub fn gemv_candidates(ctx: &Context) -> Vec<WqVariant> {
    let l = ctx.limits();
    let mut v = Vec::new();
    for wg in [32u32, 64, 128, 256] {
        for rows in [1u32, 2, 4, 8] {
            if wg <= l.max_compute_invocations_per_workgroup
                && wg <= l.max_compute_workgroup_size_x
                && wg * rows * 4 <= l.max_compute_workgroup_storage_size
            {
                for subgroup in [false, true] {
                    if !subgroup || ctx.has(wgpu::Features::SUBGROUP) {
                        v.push(WqVariant::Gemv { wg, rows, subgroup });
                    }
                }
            }
        }
    }
    if l.max_uniform_buffer_binding_size >= BROADCAST_A_BYTES {
        for lanes in [8u32, 16, 32, 64] {
            for quads in [1u32, 2] {
                if lanes <= l.max_compute_invocations_per_workgroup {
                    v.push(WqVariant::Broadcast { lanes, quads });
                }
            }
        }
    }
    v
}

/// One measured candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trial {
    /// The configuration.
    pub kernel: WqVariant,
    /// Median time, ms.
    pub ms: f64,
    /// Whether its output passed validation.
    pub passed: bool,
    /// The problem it ran on (m, n, k).
    pub problem: (usize, usize, usize),
}

/// The problem a GEMM winner is confirmed on: the tuning problem doubled along each
/// dimension. Why: on lavapipe a Q4_K workgroup tile that won at 256x512x512 took 739 ms at
/// 1024^3 against the default register block's 474 ms.
pub fn confirm_problem((m, n, k): (usize, usize, usize)) -> (usize, usize, usize) {
    (2 * m, 2 * n, 2 * k)
}

/// The configuration to keep: `winner` (fastest on the tuning problem) unless the untuned
/// `default`, timed next to it on the confirmation problem (`confirm`), was faster there or
/// the winner failed validation there. So a tuned kernel never loses to the untuned one at
/// sizes past the one it was tuned on, as far as one larger size shows.
pub fn confirmed(winner: Trial, default: Trial, confirm: &[Trial]) -> Trial {
    let at = |v: WqVariant| {
        confirm
            .iter()
            .find(|t| t.kernel == v && t.passed && t.ms.is_finite())
    };
    match (at(winner.kernel), at(default.kernel)) {
        (Some(w), Some(d)) if d.ms < w.ms => default,
        (None, Some(_)) => default,
        _ => winner,
    }
}

/// The fastest candidate that passed validation; a failing one is never chosen, however
/// fast.
pub fn choose(trials: &[Trial]) -> Option<Trial> {
    trials
        .iter()
        .filter(|t| t.passed && t.ms.is_finite())
        .min_by(|a, b| a.ms.total_cmp(&b.ms))
        .copied()
}

/// The tuned configurations of one adapter: "precision/class" -> register block, and
/// "precision/gemv-kernel" -> the GEMV kernel's configuration.
pub type Tuned = BTreeMap<String, WqVariant>;

/// The cache file: adapter key ("name | backend | driver") -> its tuned configurations.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TuneCache {
    /// Entries per adapter.
    pub adapters: BTreeMap<String, Tuned>,
    /// Per adapter, the entries a first-use autotune wrote (`bench::autotune`: a short
    /// search) rather than `tune`; tables label their rows `(autotuned)`.
    #[serde(default)]
    pub autotuned: BTreeMap<String, std::collections::BTreeSet<String>>,
    /// Per adapter, the `override` constants `tune --kernel` chose for a user's kernel
    /// (`lab::tune::cache_key`: op, shape class and a hash of the file) -> name -> value.
    #[serde(default)]
    pub kernels: BTreeMap<String, BTreeMap<String, Constants>>,
}

/// A user kernel's `override` constants, name -> value.
pub type Constants = BTreeMap<String, f64>;

/// The cache key of an adapter: name, backend, driver, and for a CPU adapter the host CPU
/// it runs on (a cache tuned for lavapipe on one CPU is no guide on another: a stale cache's
/// q4_0 decode GEMV, tuned on another CPU, decoded SmolLM2 at 11 tok/s where the default ran
/// 21; docs/results/sparsity-lavapipe.md).
pub fn adapter_key(ctx: &Context) -> String {
    let s = &ctx.summary;
    match &s.host_cpu {
        Some(cpu) => format!("{} | {} | {} | {cpu}", s.name, s.backend, s.driver),
        None => format!("{} | {} | {}", s.name, s.backend, s.driver),
    }
}

/// The entry key of a precision and class.
pub fn entry_key(p: Precision, class: ShapeClass) -> String {
    format!("{}/{}", p.name(), class.name())
}

/// The entry key of the f32 kernel of the nn layout (B k x n), `matmul_regblock`: its
/// register block stored as a `WqKernel` (the same three sizes).
pub const F32_NN_KEY: &str = "f32/gemm-nn";

/// The entry key of `matmul_regblock` in the nt layout (B n x k), stored as [`F32_NN_KEY`]
/// is. (`f32/gemm` is the f32-weights kernel, `matmul_wq`.)
pub const F32_NT_KEY: &str = "f32/gemm-nt";

/// The entry key of `matmul_regblock` in `layout`.
pub fn f32_key(layout: Layout) -> &'static str {
    match layout {
        Layout::Nn => F32_NN_KEY,
        Layout::Nt => F32_NT_KEY,
    }
}

/// The tuned f32 nn register block, if any.
pub fn tuned_nn(tuned: &Tuned) -> Option<crate::kernels::matmul::Kernel> {
    tuned_f32(tuned, Layout::Nn)
}

/// The tuned f32 kernel of `layout` (a `matmul_regblock` or `matmul_scalarblock` block),
/// if any.
pub fn tuned_f32(tuned: &Tuned, layout: Layout) -> Option<crate::kernels::matmul::Kernel> {
    tuned.get(f32_key(layout)).and_then(|v| f32_kernel(*v))
}

/// The f32 kernel a `f32/gemm-nn` or `-nt` entry names ([`WqVariant::f32_kernel`]).
pub fn f32_kernel(v: WqVariant) -> Option<crate::kernels::matmul::Kernel> {
    v.f32_kernel()
}

/// Candidate register blocks of the f32 kernel, either layout (`tn` counts vec4 columns in
/// nn, columns in nt): workgroups
/// of 8 to 64 invocations, 1 to 16 rows, 1 to 8 vec4 columns, at most 64 vec4
/// accumulators. The blocks are written out (`matmul_regblock`), so the large ones stay in
/// registers where the driver has them: on lavapipe 8x16x4 blocks ran 27 GFLOP/s at 1024^3
/// against 15 for the default 16x6x2; on the H100 the smallest blocks won.
pub fn f32_candidates() -> Vec<WqKernel> {
    let mut v = Vec::new();
    for wg_x in [8, 16, 32, 64] {
        for tm in [1, 2, 4, 6, 8, 12, 16] {
            for tn in [1, 2, 4, 8] {
                if tm * tn <= 64 {
                    v.push(WqKernel { wg_x, tm, tn });
                }
            }
        }
    }
    v
}

/// The default f32 register block of `layout` as a `WqKernel`.
pub fn f32_default(layout: Layout) -> WqKernel {
    use crate::kernels::matmul::Kernel;
    match Kernel::named("regblock", layout) {
        Ok(Kernel::Regblock { wg_x, tm, tn }) => WqKernel { wg_x, tm, tn },
        _ => unreachable!("regblock names a register block"),
    }
}

/// Register blocks (wg_x, tm, tn) a budgeted search on a CPU adapter tries right after the
/// default, cheapest to compile first: 8x8x2 won on Mesa 25.0.7's lavapipe (18.6 GFLOP/s
/// at 1024^3, compiled in 1 s), 8x16x4, 8x12x4 and 8x8x8 on Mesa 22.3.6 (27-29 GFLOP/s;
/// 8x16x4 compiles in 1.2 s there but 4.6 s on Mesa 25, so it comes second).
/// docs/results/public-gemm-lavapipe.md.
const CPU_PRIOR_NN: [(u32, u32, u32); 6] = [
    (8, 8, 2),
    (8, 16, 4),
    (8, 12, 4),
    (16, 8, 2),
    (8, 8, 8),
    (8, 8, 4),
];

/// The same for the nt layout: 8x8x8 won on both drivers (17.7 and 15.9 GFLOP/s at
/// 1024^3 against 12.3 and 11.9 for the default 16x6x4), then 8x16x4 and 8x8x4 on Mesa 22.
const CPU_PRIOR_NT: [(u32, u32, u32); 3] = [(8, 8, 8), (8, 16, 4), (8, 8, 4)];

/// Candidate scalar blocks of the f32 kernel (`matmul_scalarblock`), either layout: 8x8
/// (surfgrad's block), 16x8 and 8x4 scalars, in workgroups of 16 and 64. On Mesa 25.0.7's
/// lavapipe 8x8 ran 12.9-13.3 GFLOP/s at 1024^3 in any workgroup shape, against 11 for the
/// best vec4 block; on Mesa 22.3.6 it loses 2.6x (docs/results/public-gemm-lavapipe.md).
pub fn f32_scalar_candidates() -> Vec<WqKernel> {
    let mut v = Vec::new();
    for wg_x in [64, 16] {
        for (tm, tn) in [(8, 8), (16, 8), (8, 4)] {
            v.push(WqKernel { wg_x, tm, tn });
        }
    }
    v
}

/// Candidate subgroup blocks of the f32 kernel (`matmul_regblock`'s sgblock variant),
/// either layout (`tn` counts vec4 columns in nn, columns in nt): 4 or 8 rows (lanes 0..tm-1 load them, so at
/// most the smallest subgroup), 1 to 8 column groups with at most 32 accumulators, in
/// workgroups of 8, 16 and 64. On lavapipe (8-lane subgroups) 8 rows x 1 vec4 in 8
/// invocations ran 30 GFLOP/s at 1024^3 on Mesa 25.0.7, 2.4x the best public kernel
/// (docs/results/public-gemm-lavapipe.md).
pub fn f32_sg_candidates() -> Vec<WqKernel> {
    let mut v = Vec::new();
    for wg_x in [8, 16, 64] {
        for tm in [8, 4] {
            for tn in [1, 2, 4, 8] {
                if tm * tn <= 32 {
                    v.push(WqKernel { wg_x, tm, tn });
                }
            }
        }
    }
    v
}

/// The default subgroup block of `layout` as a `WqKernel`.
pub fn f32_sg_default(layout: Layout) -> WqKernel {
    use crate::kernels::matmul::Kernel;
    match Kernel::named("sgblock", layout) {
        Ok(Kernel::Sgblock { wg_x, tm, tn }) => WqKernel { wg_x, tm, tn },
        _ => unreachable!("sgblock names a subgroup block"),
    }
}

/// Every f32 candidate of `layout`'s search: the register blocks, the scalar blocks, then
/// the subgroup blocks.
pub fn f32_search_space() -> Vec<WqVariant> {
    f32_candidates()
        .into_iter()
        .map(WqVariant::Regblock)
        .chain(
            f32_scalar_candidates()
                .into_iter()
                .map(|scalar| WqVariant::Scalar { scalar }),
        )
        .chain(
            f32_sg_candidates()
                .into_iter()
                .map(|sgblock| WqVariant::Sgblock { sgblock }),
        )
        .collect()
}

/// [`f32_search_space`] in the order a budgeted search tries it for `layout`: the default
/// register block first (a baseline), then the prior learnt from earlier tunings for the
/// adapter's kind. On CPU adapters (lavapipe, WARP: 8-wide SIMD lanes, every load run
/// once per lane) the default subgroup block (the winner on both Mesa 22.3.6 and 25.0.7),
/// the first block of [`CPU_PRIOR_NN`] or [`CPU_PRIOR_NT`], the scalar 8x8 block (Mesa
/// 25's winner before the subgroup block), the rest of the prior, then the most outputs
/// per invocation with the narrowest workgroups; on GPUs the smallest blocks in the widest
/// workgroups first, where 16x2x1 and 32x2x1 won on the H100
/// (docs/results/bench-h100/tune.txt), then the default subgroup block. The other scalar
/// and subgroup blocks come last. Adapters without subgroups skip the subgroup blocks
/// ([`f32_prior_on`]).
pub fn f32_prior(cpu_adapter: bool, layout: Layout) -> Vec<WqVariant> {
    let blocks = f32_block_prior(cpu_adapter, layout);
    let mut scalars = f32_scalar_candidates()
        .into_iter()
        .map(|scalar| WqVariant::Scalar { scalar });
    let first_scalar = scalars.next();
    let sg_default = f32_sg_default(layout);
    let first_sg = WqVariant::Sgblock {
        sgblock: sg_default,
    };
    let sgs = f32_sg_candidates()
        .into_iter()
        .filter(|k| *k != sg_default)
        .map(|sgblock| WqVariant::Sgblock { sgblock });
    let mut v: Vec<WqVariant> = Vec::new();
    let mut blocks = blocks.into_iter().map(WqVariant::Regblock);
    v.extend(blocks.next()); // the default
    if cpu_adapter {
        v.push(first_sg);
        v.extend(blocks.next());
        v.extend(first_scalar);
        v.extend(blocks);
    } else {
        v.extend(blocks);
        v.push(first_sg);
        v.extend(first_scalar);
    }
    v.extend(scalars);
    v.extend(sgs);
    v
}

/// [`f32_prior`] for `ctx`'s adapter, without the kernels it cannot run (the subgroup
/// blocks without SUBGROUP, or with subgroups smaller than their rows).
pub fn f32_prior_on(ctx: &Context, layout: Layout) -> Vec<WqVariant> {
    let mut v = f32_prior(is_cpu_adapter(ctx), layout);
    v.retain(|c| c.f32_kernel().is_none_or(|k| k.unsupported(ctx).is_none()));
    v
}

/// The register blocks of [`f32_candidates`] in the order [`f32_prior`] tries them.
fn f32_block_prior(cpu_adapter: bool, layout: Layout) -> Vec<WqKernel> {
    let default = f32_default(layout);
    let mut v = f32_candidates();
    v.retain(|k| *k != default);
    if cpu_adapter {
        let prior: &[(u32, u32, u32)] = match layout {
            Layout::Nn => &CPU_PRIOR_NN,
            Layout::Nt => &CPU_PRIOR_NT,
        };
        let rank = |k: &WqKernel| {
            prior
                .iter()
                .position(|&(w, m, n)| (w, m, n) == (k.wg_x, k.tm, k.tn))
                .unwrap_or(prior.len())
        };
        v.sort_by_key(|k| {
            (
                rank(k),
                std::cmp::Reverse(k.tm * k.tn),
                k.wg_x,
                std::cmp::Reverse(k.tn),
            )
        });
    } else {
        v.sort_by_key(|k| (k.tm * k.tn, std::cmp::Reverse(k.wg_x)));
    }
    std::iter::once(default).chain(v).collect()
}

/// Whether `ctx` is a CPU adapter (lavapipe, llvmpipe, WARP), for the search's prior.
pub fn is_cpu_adapter(ctx: &Context) -> bool {
    ctx.summary.device_type == "cpu"
}

/// Tunes the f32 kernel (`matmul_regblock`) of `layout` on a GEMM problem (m, n, k): every candidate
/// validated (against f64, as `matmul` does) and timed; a winner other than the default
/// register block is timed again next to it on [`confirm_problem`] and kept only if it
/// wins there too (on lavapipe the 8x8x4 block that won at 256x512x512 once lost to the
/// default 16x6x2 at 1024^3, 718-758 against 622-686 ms, when the blocks were loops).
/// Returns all trials (the confirmation's last) and the chosen one.
pub fn tune_f32(
    ctx: &Context,
    layout: Layout,
    runs: Runs,
    problem: (usize, usize, usize),
) -> Result<(Vec<Trial>, Option<Trial>)> {
    search_f32(
        ctx,
        layout,
        runs,
        problem,
        f32_prior_on(ctx, layout),
        None,
        &mut || {},
    )
}

/// The search of [`tune_f32`] over `cands` in order, starting no candidate once the mean
/// candidate so far would end past `deadline` (the first always runs); the confirmation
/// of a winner other than the default (when the default ran) always runs.
#[allow(clippy::too_many_arguments)]
pub fn search_f32(
    ctx: &Context,
    layout: Layout,
    runs: Runs,
    problem: (usize, usize, usize),
    cands: Vec<WqVariant>,
    deadline: Option<std::time::Instant>,
    done: &mut dyn FnMut(),
) -> Result<(Vec<Trial>, Option<Trial>)> {
    let mut trials = time_f32(ctx, layout, runs, problem, &cands, deadline, done)?;
    let best = choose(&trials);
    let default = WqVariant::Regblock(f32_default(layout));
    let default_trial = trials.iter().find(|t| t.kernel == default).copied();
    match (best, default_trial) {
        (Some(b), Some(d)) if b.kernel != d.kernel => {
            let confirm = time_f32(
                ctx,
                layout,
                runs,
                confirm_problem(problem),
                &[b.kernel, default],
                None,
                &mut || {},
            )?;
            let chosen = confirmed(b, d, &confirm);
            trials.extend(confirm);
            Ok((trials, Some(chosen)))
        }
        _ => Ok((trials, best)),
    }
}

/// Times and validates each register block of `layout` on (m, n, k), in order, until
/// `deadline`.
fn time_f32(
    ctx: &Context,
    layout: Layout,
    runs: Runs,
    (m, n, k): (usize, usize, usize),
    cands: &[WqVariant],
    deadline: Option<std::time::Instant>,
    done: &mut dyn FnMut(),
) -> Result<Vec<Trial>> {
    use crate::bench::matmul::{self as bench_matmul, MatmulRequest};
    use crate::kernels::matmul::Shape;
    let shape = Shape::new(m, n, k)?;
    let mut rng = crate::rng::Rng::new(7);
    let a = rng.vec_f32(m * k);
    let b = rng.vec_f32(k * n);
    let reference = crate::reference::matmul::matmul_f64(layout, shape, &a, &b)?;
    let mut trials = Vec::new();
    let start = std::time::Instant::now();
    // A candidate's cost (compiling dominates on CPU adapters) grows with its block: the
    // time per unit of `4 + tm * tn` so far predicts the next one, and a candidate predicted
    // to end past the deadline is skipped (a smaller one later may still fit).
    let units = |v: &WqVariant| match *v {
        WqVariant::Regblock(k)
        | WqVariant::Scalar { scalar: k }
        | WqVariant::Sgblock { sgblock: k } => (4 + k.tm * k.tn) as f64,
        _ => 4.0,
    };
    let mut spent_units = 0.0;
    for (i, &cand) in cands.iter().enumerate() {
        if let (Some(d), true) = (deadline, i > 0) {
            let per_unit = start.elapsed().as_secs_f64() / spent_units;
            let predicted = std::time::Duration::from_secs_f64(per_unit * units(&cand));
            if std::time::Instant::now() + predicted > d {
                continue;
            }
        }
        let Some(kernel) = f32_kernel(cand) else {
            return Err(LabError::InvalidArgument(format!(
                "{} is not an f32 kernel",
                cand.describe()
            )));
        };
        spent_units += units(&cand);
        let req = MatmulRequest {
            shape,
            layout,
            kernels: vec![kernel],
            warmup: runs.warmup,
            repeat: runs.repeat,
            cpu_baseline: false,
            b_f16: false,
        };
        let (row, _) = bench_matmul::run_kernel(ctx, kernel, &req, &a, &b, &reference, None)?;
        trials.push(Trial {
            kernel: cand,
            ms: row.gpu_ms_median,
            passed: row.passed,
            problem: (m, n, k),
        });
        done();
    }
    Ok(trials)
}

/// The entry key of a weight format's GEMV kernel.
pub fn gemv_key(p: Precision) -> String {
    format!("{}/gemv-kernel", p.name())
}

/// The tuned register block of a precision and class, if any.
pub fn tuned_kernel(tuned: &Tuned, p: Precision, class: ShapeClass) -> Option<WqKernel> {
    match tuned.get(&entry_key(p, class)) {
        Some(WqVariant::Regblock(k)) => Some(*k),
        _ => None,
    }
}

/// The tuned kernel of a weight format and class, any family but GEMV (a register block, a
/// subgroup block (weight formats only) or a workgroup tile), if any.
pub fn tuned_variant(tuned: &Tuned, p: Precision, class: ShapeClass) -> Option<WqVariant> {
    match tuned.get(&entry_key(p, class)) {
        Some(v) if v.is_gemv() || matches!(v, WqVariant::Scalar { .. }) => None,
        Some(WqVariant::Sgblock { .. }) if !matches!(p, Precision::Weights(_)) => None,
        None => None,
        Some(v) => Some(*v),
    }
}

/// Candidate subgroup blocks of the weight formats' GEMM (`matmul_wq`'s sgblock variant): 4 or 8
/// activation rows x 1, 2 or 4 weight rows per invocation, workgroups of 8, 16, 64.
pub fn wq_sg_candidates() -> Vec<WqKernel> {
    let mut v = Vec::new();
    for wg_x in [8, 16, 64] {
        for tm in [8, 4] {
            for tn in [4, 2, 1] {
                v.push(WqKernel { wg_x, tm, tn });
            }
        }
    }
    v
}

/// The subgroup blocks of [`wq_sg_candidates`] that `ctx`'s adapter can run, as variants.
pub fn wq_sg_variants(ctx: &Context) -> Vec<WqVariant> {
    wq_sg_candidates()
        .into_iter()
        .filter(|k| crate::kernels::matmul::subgroup_block_unsupported(ctx, k.wg_x, k.tm).is_none())
        .map(|sgblock| WqVariant::Sgblock { sgblock })
        .collect()
}

/// The tuned GEMV kernel of a precision, if any.
pub fn tuned_gemv(tuned: &Tuned, p: Precision) -> Option<WqVariant> {
    match tuned.get(&gemv_key(p)) {
        Some(g) if g.is_gemv() => Some(*g),
        _ => None,
    }
}

/// The platform's cache file: `$XDG_CACHE_HOME/wgpu-lab/tune.json`, else
/// `~/.cache/wgpu-lab/tune.json` (`%LOCALAPPDATA%` on Windows).
pub fn default_path() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("LOCALAPPDATA").map(PathBuf::from))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("wgpu-lab").join("tune.json")
}

impl TuneCache {
    /// Reads the cache; a missing file is an empty cache, and a corrupt one is ignored with
    /// a warning on standard error (it is rebuilt by the next `tune`).
    pub fn load(path: &Path) -> Self {
        match std::fs::read_to_string(path) {
            Err(_) => Self::default(),
            Ok(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
                eprintln!(
                    "warning: ignoring the corrupt tune cache {} ({e}); run `wgpu-lab tune` to rebuild it",
                    path.display()
                );
                Self::default()
            }),
        }
    }

    /// Writes the whole cache (creating its folder), atomically: it replaces what is on
    /// disk; [`Self::update`] merges into it instead.
    pub fn save(&self, path: &Path) -> Result<()> {
        let io = |source| LabError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        crate::atomic::write(
            path,
            serde_json::to_string_pretty(self).expect("serialises"),
        )
        .map_err(io)
    }

    /// Sets `entries` of `adapter` in the cache at `path` as it is on disk now, marked as
    /// first-use autotuned or not, and returns the merged cache. Under an exclusive lock on
    /// `<path>.lock`, so concurrent runs (two `tune`s on different precisions, a `tune` and
    /// a first-use autotune) each keep their entries; written atomically (`crate::atomic`),
    /// so a run killed mid-write leaves the previous file whole.
    pub fn update(path: &Path, adapter: &str, entries: &Tuned, autotuned: bool) -> Result<Self> {
        Self::locked_update(path, |cache| {
            let marks = cache.autotuned.entry(adapter.to_string()).or_default();
            for key in entries.keys() {
                if autotuned {
                    marks.insert(key.clone());
                } else {
                    marks.remove(key);
                }
            }
            if marks.is_empty() {
                cache.autotuned.remove(adapter);
            }
            cache
                .adapters
                .entry(adapter.to_string())
                .or_default()
                .extend(entries.iter().map(|(k, v)| (k.clone(), *v)));
        })
    }

    /// Sets a user kernel's tuned constants (`key` from `lab::tune::cache_key`) for
    /// `adapter` in the cache at `path`, as [`Self::update`] does (locked, merged, atomic).
    pub fn update_kernel(
        path: &Path,
        adapter: &str,
        key: &str,
        constants: &Constants,
    ) -> Result<Self> {
        Self::locked_update(path, |cache| {
            cache
                .kernels
                .entry(adapter.to_string())
                .or_default()
                .insert(key.to_string(), constants.clone());
        })
    }

    /// This adapter's tuned constants of a user kernel, if `tune --kernel` stored some.
    pub fn kernel_constants(&self, ctx: &Context, key: &str) -> Option<&Constants> {
        self.kernels.get(&adapter_key(ctx))?.get(key)
    }

    /// Applies `change` to the cache at `path` as it is on disk now, under an exclusive
    /// lock on `<path>.lock`, and writes it back atomically.
    fn locked_update(path: &Path, change: impl FnOnce(&mut Self)) -> Result<Self> {
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |source| LabError::Io { path: p, source }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let lock_path = path.with_file_name(format!(
            "{}.lock",
            path.file_name()
                .map_or("tune".into(), |n| n.to_string_lossy())
        ));
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        lock.lock().map_err(io(&lock_path))?;
        let mut cache = Self::load(path);
        change(&mut cache);
        let text = serde_json::to_string_pretty(&cache).expect("serialises");
        crate::atomic::write(path, text).map_err(io(path))?;
        Ok(cache)
    }

    /// This adapter's tuned configurations (empty when it was never tuned).
    pub fn for_adapter(&self, ctx: &Context) -> Tuned {
        self.adapters
            .get(&adapter_key(ctx))
            .cloned()
            .unwrap_or_default()
    }

    /// The tuned register block for this adapter, precision and problem, if any.
    pub fn lookup(&self, ctx: &Context, p: Precision, m: usize) -> Option<WqKernel> {
        tuned_kernel(self.adapters.get(&adapter_key(ctx))?, p, ShapeClass::of(m))
    }
}

/// Candidate workgroup tiles of `matmul_wq_tiled` for the GEMM class, within the
/// adapter's limits: 64 to 256 invocations, 4x4 to 8x8 outputs each, 8, 16 or 32 values of
/// k staged per step; the public kernel's shape ([`TiledKernel::PUBLIC_SHAPE`]) included.
pub fn tiled_candidates(ctx: &Context) -> Vec<TiledKernel> {
    let l = ctx.limits();
    let mut v = Vec::new();
    for (bm, bn) in [(32, 64), (64, 64), (64, 128), (128, 64), (128, 128)] {
        for (tm, tn) in [(4, 4), (4, 8), (8, 4), (8, 8)] {
            for kv in [2, 4, 8] {
                let t = TiledKernel { bm, bn, tm, tn, kv };
                let inv = t.invocations();
                if (64..=256).contains(&inv) && t.fits(&l) {
                    v.push(t);
                }
            }
        }
    }
    v
}

/// Tunes one precision and class on `ctx`: every register-block candidate (and, for GEMM,
/// every workgroup tile: weight formats, f16acc, W8A8) is validated and timed; a GEMM
/// winner other than the default register block is timed again next to the default on
/// [`confirm_problem`] and kept only if it wins there too ([`confirmed`]). Returns all
/// trials (the confirmation's last) and the chosen one.
pub fn tune_one(
    ctx: &Context,
    p: Precision,
    class: ShapeClass,
    runs: Runs,
) -> Result<(Vec<Trial>, Option<Trial>)> {
    tune_one_at(ctx, p, class, runs, class.problem())
}

/// [`tune_one`] on a given problem (m, n, k) instead of the class's default (a GPU's GEMM
/// is best tuned near the sizes it will run).
pub fn tune_one_at(
    ctx: &Context,
    p: Precision,
    class: ShapeClass,
    runs: Runs,
    problem: (usize, usize, usize),
) -> Result<(Vec<Trial>, Option<Trial>)> {
    let mut cands: Vec<WqVariant> = candidates(class)
        .into_iter()
        .map(WqVariant::Regblock)
        .collect();
    // Tiles for every GEMM family (every candidate's kv is even, as the W8A8 tile needs:
    // whole 32-value blocks of int8 per step).
    let tiled = matches!(
        p,
        Precision::Weights(_) | Precision::F16Acc | Precision::Int8 | Precision::Int8Rot
    );
    if tiled && class == ShapeClass::Gemm {
        cands.extend(tiled_candidates(ctx).into_iter().map(WqVariant::Tiled));
    }
    if matches!(p, Precision::Weights(_)) && class == ShapeClass::Gemm {
        cands.extend(wq_sg_variants(ctx));
    }
    let (mut trials, best) = search(ctx, p, class, runs, cands, problem)?;
    let default = WqVariant::Regblock(WqKernel::default_for(problem.0));
    let default_trial = trials.iter().find(|t| t.kernel == default).copied();
    match (best, default_trial) {
        (Some(b), Some(d)) if class == ShapeClass::Gemm && b.kernel != default => {
            let at = confirm_problem(problem);
            let (confirm, _) = search(ctx, p, class, runs, vec![b.kernel, default], at)?;
            let chosen = confirmed(b, d, &confirm);
            trials.extend(confirm);
            Ok((trials, Some(chosen)))
        }
        _ => Ok((trials, best)),
    }
}

/// Tunes the GEMV kernel of a weight format or of W8A8 (its broadcast kernels; other
/// precisions have none: empty result):
/// every candidate of [`gemv_candidates`] is validated and timed on the GEMV class problem.
pub fn tune_gemv(ctx: &Context, p: Precision, runs: Runs) -> Result<(Vec<Trial>, Option<Trial>)> {
    tune_gemv_at(ctx, p, runs, ShapeClass::Gemv.problem())
}

/// [`tune_gemv`] on a given problem (1, n, k).
pub fn tune_gemv_at(
    ctx: &Context,
    p: Precision,
    runs: Runs,
    problem: (usize, usize, usize),
) -> Result<(Vec<Trial>, Option<Trial>)> {
    let cands = match p {
        Precision::Weights(_) => gemv_candidates(ctx),
        // W8A8's GEMV is the broadcast kernel only (gemv_i8_broadcast).
        Precision::Int8 | Precision::Int8Rot => gemv_candidates(ctx)
            .into_iter()
            .filter(|v| matches!(v, WqVariant::Broadcast { .. }))
            .collect(),
        _ => return Ok((Vec::new(), None)),
    };
    search(ctx, p, ShapeClass::Gemv, runs, cands, problem)
}

/// Runs each candidate through the precision benchmark on the class problem (so it is
/// validated like any row) and keeps the row of that candidate's kernel.
fn search(
    ctx: &Context,
    p: Precision,
    class: ShapeClass,
    runs: Runs,
    candidates: Vec<WqVariant>,
    problem: (usize, usize, usize),
) -> Result<(Vec<Trial>, Option<Trial>)> {
    search_until(ctx, p, class, runs, candidates, problem, None, &mut || {})
}

/// [`search`] that starts no candidate that would end past `deadline` at the mean time of
/// those before it (the first always runs), calling `done` after each candidate (a
/// progress bar).
#[allow(clippy::too_many_arguments)]
pub(crate) fn search_until(
    ctx: &Context,
    p: Precision,
    class: ShapeClass,
    runs: Runs,
    candidates: Vec<WqVariant>,
    (m, n, k): (usize, usize, usize),
    deadline: Option<std::time::Instant>,
    done: &mut dyn FnMut(),
) -> Result<(Vec<Trial>, Option<Trial>)> {
    let mut rng = crate::rng::Rng::new(7);
    let a = rng.vec_f32(m * k);
    let w = rng.vec_f32(n * k);
    let mut trials: Vec<Trial> = Vec::new();
    let start = std::time::Instant::now();
    for (i, cand) in candidates.into_iter().enumerate() {
        if let (Some(d), true) = (deadline, i > 0) {
            let mean = start.elapsed() / i as u32;
            if std::time::Instant::now() + mean > d {
                break;
            }
        }
        // A register block is asked for directly; a GEMV configuration through the tuned
        // map, which is where the benchmark looks for it.
        let (kernel, tuned, is_gemv) = match cand {
            WqVariant::Regblock(k) => (Some(k), Tuned::new(), false),
            WqVariant::Gemv { .. } | WqVariant::Broadcast { .. } => {
                (None, Tuned::from([(gemv_key(p), cand)]), true)
            }
            WqVariant::Tiled(_) | WqVariant::Scalar { .. } | WqVariant::Sgblock { .. } => {
                (None, Tuned::from([(entry_key(p, class), cand)]), false)
            }
        };
        let req = PrecisionRequest {
            m,
            n,
            k,
            precisions: vec![p],
            kernel,
            runs,
            cpu_baseline: false,
            tuned,
            extra: Vec::new(),
        };
        for row in precision::run(ctx, &req, &a, &w)?
            .into_iter()
            .filter(|r| is_gemv_name(&r.kernel) == is_gemv && r.skipped.is_none())
        {
            trials.push(Trial {
                kernel: cand,
                ms: row.gpu_ms_median,
                passed: row.passed,
                problem: (m, n, k),
            });
        }
        done();
    }
    let best = choose(&trials);
    Ok((trials, best))
}

/// Cache key of the sparse kernels of a format, pattern and shape class:
/// `sparse/<format>/<N:M>/<class>` (the entry is [`SparseKernel::as_entry`]).
pub fn sparse_key(format: WeightFormat, pattern: NmPattern, class: ShapeClass) -> String {
    format!("sparse/{}/{pattern}/{}", format.name(), class.name())
}

/// The tuned sparse kernel for `m` activation rows, if the cache has one.
pub fn tuned_sparse(
    tuned: &Tuned,
    format: WeightFormat,
    pattern: NmPattern,
    m: usize,
) -> Option<SparseKernel> {
    let k = tuned
        .get(&sparse_key(format, pattern, ShapeClass::of(m)))
        .and_then(|v| SparseKernel::from_entry(*v))?;
    // A GEMV entry serves one row only.
    (m == 1 || !matches!(k, SparseKernel::Gemv { .. } | SparseKernel::Rows { .. })).then_some(k)
}

/// Tunes the sparse kernels of a format and pattern for a shape class on `problem`:
/// every candidate of [`SparseKernel::candidates`] runs on the same magnitude-pruned
/// random weights, validated against the twin as any row is; the fastest that passes wins.
pub fn tune_sparse(
    ctx: &Context,
    format: WeightFormat,
    pattern: NmPattern,
    runs: Runs,
    (m, n, k): (usize, usize, usize),
) -> Result<(Vec<Trial>, Option<Trial>)> {
    use crate::compare::{ErrorStats, TOL_WQ_KERNEL_REL_FROBENIUS};
    // Whole groups: the class problem's k rounded down to a multiple of M.
    let k = (k / pattern.m as usize).max(1) * pattern.m as usize;
    let mut rng = crate::rng::Rng::new(11);
    let a = rng.vec_f32(m * k);
    let w = rng.vec_f32(n * k);
    let pruned = crate::prune::prune(
        crate::prune::Method::Magnitude,
        Sparsity::Nm(pattern),
        &w,
        n,
        k,
        None,
    )?;
    let sw = SparseWeights::compress(format, pattern, n, k, &pruned.w, &pruned.keep)?;
    let reference = crate::reference::sparse::matmul_sparse_f64(&a, m, k, &sw)?;
    let mut trials = Vec::new();
    for cand in SparseKernel::candidates(m) {
        let op = match PreparedSparse::new(ctx, cand, &a, m, k, &sw) {
            Ok(op) => op,
            Err(e @ LabError::DeviceLost(_)) => return Err(e),
            Err(e) => {
                log::info!("sparse candidate {cand:?} cannot run here: {e}");
                continue;
            }
        };
        let (t, c) = crate::gpu::measure::measure(ctx, &op, runs)?;
        trials.push(Trial {
            kernel: cand.as_entry(),
            ms: t.gpu.median,
            passed: ErrorStats::compare(&c, &reference).passes(TOL_WQ_KERNEL_REL_FROBENIUS),
            problem: (m, n, k),
        });
    }
    let best = choose(&trials);
    Ok((trials, best))
}
