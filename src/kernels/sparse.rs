//! N:M-sparse matmul (issue 23): C (m x n) = A (m x k) * W^T with W in the compressed
//! layout of [`crate::formats::sparse`], read directly (no densifying). Two kernels:
//! `gemv_sparse` for one activation row (decode: a workgroup splits a weight row) and
//! `matmul_sparse` for many (prefill: an invocation owns a weight row and TM activation
//! rows, walking the masks once for all of them). The CPU twin is
//! `reference::sparse::matmul_sparse_f64`.

use std::sync::Arc;

use serde::Serialize;

use crate::error::{LabError, Result};
use crate::formats::sparse::{has_sparse_kernel, NmPattern, SparseWeights};
use crate::formats::weights::WeightFormat;
use crate::gpu::pipeline::{self as gpu_pipeline, Binding, PipelineSpec};
use crate::gpu::timing::{self, GpuTimer, TimingSource};
use crate::gpu::{buffers, dispatch, Context};
use crate::kernels::epilogue::Epilogue;
use crate::kernels::matmul_wq::{WqKernel, WqVariant, BROADCAST_A_BYTES};
use crate::shaders::Define;

/// A sparse kernel and its tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum SparseKernel {
    /// `gemv_sparse`: `wg` invocations per weight row (m = 1 only).
    Gemv {
        /// Invocations per workgroup (a power of two: the reduction halves it).
        wg: u32,
    },
    /// `gemv_sparse_rows`: one weight row per invocation, `wg_x` per workgroup, x read
    /// uniformly a group at a time (m = 1 only).
    Rows {
        /// Invocations per workgroup.
        wg_x: u32,
    },
    /// `gemv_sparse_bcast`: 4 x `quads` weight rows per invocation, `wg` per workgroup, x
    /// read once per group for all of them from a uniform view (m = 1 only; rows of at
    /// most [`BROADCAST_A_BYTES`] / 4 values).
    Bcast {
        /// Invocations per workgroup.
        wg: u32,
        /// Quads of weight rows per invocation (1 or 2).
        quads: u32,
    },
    /// `matmul_sparse`: `wg_x` weight rows per workgroup, `tm` activation rows each.
    Matmul {
        /// Invocations per workgroup, along n.
        wg_x: u32,
        /// Activation rows per invocation.
        tm: u32,
    },
}

impl SparseKernel {
    /// The default for `m` activation rows on this adapter: for one row the broadcast GEMV
    /// on CPU adapters (measured fastest on lavapipe, see docs/results/sparsity-lavapipe.md)
    /// and the workgroup GEMV on GPUs, else 64 x 4.
    pub fn default_for(ctx: &Context, m: usize) -> Self {
        let uniform_ok = ctx.limits().max_uniform_buffer_binding_size >= BROADCAST_A_BYTES;
        if m == 1 && ctx.summary.device_type == "cpu" && uniform_ok {
            SparseKernel::Bcast { wg: 16, quads: 2 }
        } else if m == 1 {
            SparseKernel::Gemv { wg: 32 }
        } else {
            SparseKernel::Matmul { wg_x: 64, tm: 4 }
        }
    }

    /// Every candidate the tuner tries for `m` rows (the GEMV only at m = 1).
    pub fn candidates(m: usize) -> Vec<Self> {
        let mut v: Vec<Self> = Vec::new();
        if m == 1 {
            for quads in [1, 2] {
                v.extend([8, 16, 32].map(|wg| SparseKernel::Bcast { wg, quads }));
            }
            v.extend([16, 32, 64].map(|wg_x| SparseKernel::Rows { wg_x }));
            v.extend([8, 16, 32, 64, 128].map(|wg| SparseKernel::Gemv { wg }));
        }
        for wg_x in [16, 32, 64] {
            for tm in [1, 2, 4, 8] {
                v.push(SparseKernel::Matmul { wg_x, tm });
            }
        }
        v
    }

    /// The kernel as a tune-cache entry, which holds [`WqVariant`]s: the GEMV as a
    /// one-row `Gemv`, `matmul-sparse` as a one-column register block (`tn` = 1), the
    /// rows kernel as a block of no columns (`tn` = 0), the broadcast GEMV as the dense
    /// broadcast GEMV's entry. Only
    /// the `sparse/...` keys hold these ([`SparseKernel::from_entry`] reads them back).
    pub fn as_entry(&self) -> WqVariant {
        match *self {
            SparseKernel::Gemv { wg } => WqVariant::Gemv {
                wg,
                rows: 1,
                subgroup: false,
            },
            SparseKernel::Matmul { wg_x, tm } => WqVariant::Regblock(WqKernel { wg_x, tm, tn: 1 }),
            // tn = 0 marks it (no register block has it).
            SparseKernel::Rows { wg_x } => WqVariant::Regblock(WqKernel { wg_x, tm: 1, tn: 0 }),
            SparseKernel::Bcast { wg, quads } => WqVariant::Broadcast { lanes: wg, quads },
        }
    }

    /// The kernel a `sparse/...` tune-cache entry holds ([`SparseKernel::as_entry`]).
    pub fn from_entry(v: WqVariant) -> Option<Self> {
        match v {
            WqVariant::Gemv {
                wg,
                rows: 1,
                subgroup: false,
            } => Some(SparseKernel::Gemv { wg }),
            WqVariant::Regblock(WqKernel { wg_x, tm, tn: 1 }) => {
                Some(SparseKernel::Matmul { wg_x, tm })
            }
            WqVariant::Regblock(WqKernel { wg_x, tm: 1, tn: 0 }) => {
                Some(SparseKernel::Rows { wg_x })
            }
            WqVariant::Broadcast { lanes, quads } => Some(SparseKernel::Bcast { wg: lanes, quads }),
            _ => None,
        }
    }

    /// Kernel name for tables.
    pub fn name(&self) -> &'static str {
        match self {
            SparseKernel::Gemv { .. } => "gemv-sparse",
            SparseKernel::Rows { .. } => "gemv-sparse-rows",
            SparseKernel::Bcast { .. } => "gemv-sparse-bcast",
            SparseKernel::Matmul { .. } => "matmul-sparse",
        }
    }

    /// Short description with the tuning.
    pub fn describe(&self) -> String {
        match *self {
            SparseKernel::Gemv { wg } => format!("gemv-sparse {wg}"),
            SparseKernel::Rows { wg_x } => format!("gemv-sparse-rows {wg_x}"),
            SparseKernel::Bcast { wg, quads } => format!("gemv-sparse-bcast {wg}x{}", 4 * quads),
            SparseKernel::Matmul { wg_x, tm } => format!("matmul-sparse {wg_x}x{tm}"),
        }
    }

    /// Invocations per workgroup.
    pub fn invocations(&self) -> u32 {
        match *self {
            SparseKernel::Gemv { wg } | SparseKernel::Bcast { wg, .. } => wg,
            SparseKernel::Rows { wg_x } | SparseKernel::Matmul { wg_x, .. } => wg_x,
        }
    }

    /// Workgroups along n and in all, for an m x n product.
    pub fn tiles(&self, m: usize, n: usize) -> (usize, usize) {
        match *self {
            SparseKernel::Gemv { .. } => (n, n),
            SparseKernel::Rows { wg_x } => {
                let t = n.div_ceil(wg_x as usize);
                (t, t)
            }
            SparseKernel::Bcast { wg, quads } => {
                let t = n.div_ceil((4 * quads * wg) as usize);
                (t, t)
            }
            SparseKernel::Matmul { wg_x, tm } => {
                let tn = n.div_ceil(wg_x as usize);
                (tn, tn * m.div_ceil(tm as usize))
            }
        }
    }

    /// The pipeline for a format and pattern.
    pub fn spec(&self, format: WeightFormat, pattern: NmPattern) -> PipelineSpec<'static> {
        self.spec_with(format, pattern, Epilogue::None)
    }

    /// The pipeline with an output epilogue (`matmul_sparse` only: a linear layer's bias,
    /// or bias and GELU, bound after the kernel's bindings). The GEMVs take `None` only.
    pub fn spec_with(
        &self,
        format: WeightFormat,
        pattern: NmPattern,
        epilogue: Epilogue,
    ) -> PipelineSpec<'static> {
        let mut defines = vec![
            Define::U32("NM_N", pattern.n),
            Define::U32("NM_M", pattern.m),
            Define::U32("FIELD_BITS", pattern.field_bits()),
            Define::U32("FIELDS", pattern.fields_per_word()),
        ];
        match *self {
            SparseKernel::Gemv { wg } => {
                defines.push(Define::Import(format!("weights_{}", format.name())));
                PipelineSpec {
                    stem: "gemv_sparse",
                    defines,
                    entry: "main",
                    constants: vec![("WG", wg as f64)],
                    bindings: BINDINGS.to_vec(),
                }
            }
            SparseKernel::Rows { wg_x } => {
                defines.push(Define::Import(format!("weights_{}", format.name())));
                PipelineSpec {
                    stem: "gemv_sparse_rows",
                    defines,
                    entry: "main",
                    constants: vec![("WG_X", wg_x as f64)],
                    bindings: BINDINGS.to_vec(),
                }
            }
            SparseKernel::Bcast { wg, quads } => {
                let (sb, body) = bcast_superblock(pattern);
                defines.push(Define::U32("SB", sb));
                defines.push(Define::Splice("superblock", body));
                defines.push(Define::U32("QUADS", quads));
                defines.push(Define::U32("A_VEC4S", (BROADCAST_A_BYTES / 16) as u32));
                defines.push(Define::Import(format!("weights_{}", format.name())));
                PipelineSpec {
                    stem: "gemv_sparse_bcast",
                    defines,
                    entry: "main",
                    constants: vec![("WG", wg as f64)],
                    bindings: BCAST_BINDINGS.to_vec(),
                }
            }
            SparseKernel::Matmul { wg_x, tm } => {
                defines.push(Define::U32("TM", tm));
                defines.push(Define::Import(format!("weights_{}", format.name())));
                defines.extend(epilogue.defines(BINDINGS.len() as u32));
                PipelineSpec {
                    stem: "matmul_sparse",
                    defines,
                    entry: "main",
                    constants: vec![("WG_X", wg_x as f64)],
                    bindings: epilogue.bindings(&BINDINGS),
                }
            }
        }
    }
}

/// `gemv_sparse_bcast`'s superblock, written out: its blocks (lcm(N, 32) / 32 of them) and
/// per kept value the group it starts (if it does) and its place in its group, all known
/// here, so the driver compiles no `kj % N`. Returns the blocks per superblock and the code.
fn bcast_superblock(pattern: NmPattern) -> (u32, String) {
    use std::fmt::Write;
    let n = pattern.n;
    let gcd = (1..=n)
        .rev()
        .find(|d| n.is_multiple_of(*d) && 32u32.is_multiple_of(*d))
        .unwrap_or(1);
    let sb = n / gcd; // lcm(n, 32) / 32
    let groups = 32 / gcd; // groups per superblock: a multiple of FIELDS
    let fields = pattern.fields_per_word();
    let mut c = String::new();
    for bi in 0..sb {
        let _ = writeln!(
            c,
            "        {{
            let blk = sb * SB + {bi}u;"
        );
        c.push_str(
            "            if blk < p.nblk {
                let gb0 = g0 + vec4(blk);
                let gb1 = g1 + vec4(blk);
                let b0 = array(load_block(gb0.x), load_block(gb0.y), load_block(gb0.z), load_block(gb0.w));
                var b1: array<Block, 4>;
                if QUADS > 1u {
                    b1 = array(load_block(gb1.x), load_block(gb1.y), load_block(gb1.z), load_block(gb1.w));
                }
                var sums: Sums;
",
        );
        for j in 0..8 {
            let _ = writeln!(
                c,
                "                let w0_{j} = quad_values(b0, {j}u);
                var w1_{j}: Quad4;
                if QUADS > 1u {{
                    w1_{j} = quad_values(b1, {j}u);
                }}"
            );
            for e in 0..4 {
                let kl = bi * 32 + j * 4 + e;
                if kl % n == 0 {
                    let g = kl / n;
                    let reload = g.is_multiple_of(fields);
                    let _ = writeln!(
                        c,
                        "                enter(&wk, sb * {groups}u + {g}u, {reload}, m0, m1);"
                    );
                }
                let _ = writeln!(
                    c,
                    "                kept(&wk, {}u, w0_{j}.e{e}, w1_{j}.e{e}, &sums);",
                    kl % n
                );
            }
        }
        c.push_str(
            "                let sc0 = quad_scales(gb0);
                acc0 += sc0[0] * sums.dot0 + sc0[1] * sums.xs0;
                if QUADS > 1u {
                    let sc1 = quad_scales(gb1);
                    acc1 += sc1[0] * sums.dot1 + sc1[1] * sums.xs1;
                }
            }
        }
",
        );
    }
    (sb, c)
}

/// Bindings of the sparse kernels: params, A, kept words, kept scales, C, masks.
pub const BINDINGS: [Binding; 6] = [
    Binding::Uniform,
    Binding::ReadOnly,
    Binding::ReadOnly,
    Binding::ReadOnly,
    Binding::ReadWrite,
    Binding::ReadOnly,
];

/// Bindings of `gemv_sparse_bcast`: params, A as a uniform view, kept words, kept scales,
/// C, masks, and the kept words again as vec4s.
pub const BCAST_BINDINGS: [Binding; 7] = [
    Binding::Uniform,
    Binding::Uniform,
    Binding::ReadOnly,
    Binding::ReadOnly,
    Binding::ReadWrite,
    Binding::ReadOnly,
    Binding::ReadOnly,
];

impl SparseKernel {
    /// Whether the kernel takes one activation row only.
    pub fn one_row(&self) -> bool {
        !matches!(self, SparseKernel::Matmul { .. })
    }

    /// Bytes of the uniform view the kernel binds its activation row as, if it does.
    pub fn uniform_input_bytes(&self) -> Option<u64> {
        matches!(self, SparseKernel::Bcast { .. }).then_some(BROADCAST_A_BYTES)
    }

    /// Checks that the kernel takes rows of `k` values on this adapter (the broadcast
    /// GEMV's uniform view holds [`BROADCAST_A_BYTES`] / 4).
    pub fn check_row_width(&self, ctx: &Context, k: usize) -> Result<()> {
        match self.uniform_input_bytes() {
            Some(bytes) => {
                crate::kernels::matmul_wq::check_uniform_row(ctx, &self.describe(), bytes, k)
            }
            None => Ok(()),
        }
    }
}

/// Parameter block of the sparse kernels.
/// Keep in sync with `SparseParams` in shaders/shared/sparse_params.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SparseParams {
    /// Activation rows.
    pub m: u32,
    /// Weight rows.
    pub n: u32,
    /// Dense values per row.
    pub k: u32,
    /// Groups per weight row.
    pub groups: u32,
    /// Blocks of 32 kept values per weight row.
    pub nblk: u32,
    /// Mask words per weight row.
    pub mwords: u32,
    /// Workgroup tiles along n.
    pub tiles_n: u32,
    /// Workgroup tiles in all.
    pub tiles: u32,
}

impl SparseParams {
    /// The block for `kernel` at `m` activation rows times `weights`.
    pub fn new(kernel: &SparseKernel, m: usize, weights: &SparseWeights) -> Self {
        let (tiles_n, tiles) = kernel.tiles(m, weights.n);
        SparseParams {
            m: m as u32,
            n: weights.n as u32,
            k: weights.k as u32,
            groups: weights.groups() as u32,
            nblk: weights.kept.blocks_per_row() as u32,
            mwords: weights.mask_words_per_row() as u32,
            tiles_n: tiles_n as u32,
            tiles: tiles as u32,
        }
    }
}

/// Compiles (or fetches) the pipeline; checks the kernel against the adapter's limits.
pub fn pipeline(
    ctx: &Context,
    kernel: &SparseKernel,
    format: WeightFormat,
    pattern: NmPattern,
) -> Result<(Arc<wgpu::ComputePipeline>, Option<f64>)> {
    pipeline_with(ctx, kernel, format, pattern, Epilogue::None)
}

/// [`pipeline`] with an output epilogue (`matmul_sparse` only).
pub fn pipeline_with(
    ctx: &Context,
    kernel: &SparseKernel,
    format: WeightFormat,
    pattern: NmPattern,
    epilogue: Epilogue,
) -> Result<(Arc<wgpu::ComputePipeline>, Option<f64>)> {
    if epilogue != Epilogue::None && kernel.one_row() {
        return Err(LabError::InvalidArgument(format!(
            "{}: the sparse GEMVs store the product only (no {epilogue:?} epilogue)",
            kernel.describe()
        )));
    }
    if !has_sparse_kernel(format) {
        return Err(LabError::InvalidArgument(format!(
            "{}: no sparse kernel (the N:M layout takes formats with blocks of 32)",
            format.name()
        )));
    }
    let inv = kernel.invocations();
    let limit = ctx.limits().max_compute_invocations_per_workgroup;
    if inv > limit {
        return Err(LabError::OverLimit {
            what: format!("{kernel:?} workgroup"),
            asked: inv as u64,
            limit_name: "max_compute_invocations_per_workgroup",
            limit: limit as u64,
        });
    }
    match *kernel {
        SparseKernel::Gemv { wg } if !wg.is_power_of_two() => {
            return Err(LabError::InvalidArgument(format!(
                "{kernel:?}: the GEMV's workgroup must be a power of two"
            )))
        }
        SparseKernel::Bcast { quads, .. } if !(1..=2).contains(&quads) => {
            return Err(LabError::InvalidArgument(format!(
                "{kernel:?}: quads must be 1 or 2"
            )))
        }
        SparseKernel::Matmul { tm, .. } if !(1..=16).contains(&tm) => {
            return Err(LabError::InvalidArgument(format!(
                "{kernel:?}: tm must be 1..=16"
            )))
        }
        _ => {}
    }
    gpu_pipeline::build(ctx, &kernel.spec_with(format, pattern, epilogue))
}

/// A sparse product with activations and weights on the GPU, ready to run.
pub struct PreparedSparse {
    /// The kernel.
    pub kernel: SparseKernel,
    /// Storage format of the kept values.
    pub format: WeightFormat,
    /// The N:M pattern.
    pub pattern: NmPattern,
    /// Activation rows.
    pub m: usize,
    /// Weight rows.
    pub n: usize,
    /// Inner (dense) dimension.
    pub k: usize,
    /// Bytes of the compressed weights on the GPU: kept values, scales and masks.
    pub weight_bytes: u64,
    /// Host time to create the pipeline, when this call created it.
    pub pipeline_ms: Option<f64>,
    pipeline: Arc<wgpu::ComputePipeline>,
    bind_group: wgpu::BindGroup,
    c: wgpu::Buffer,
    grid: (u32, u32),
}

impl PreparedSparse {
    /// Uploads A (m x k, f32) and the compressed weights.
    pub fn new(
        ctx: &Context,
        kernel: SparseKernel,
        a: &[f32],
        m: usize,
        k: usize,
        weights: &SparseWeights,
    ) -> Result<Self> {
        if kernel.one_row() && m != 1 {
            return Err(LabError::Shape(format!(
                "{} takes one activation row, got m = {m}",
                kernel.name()
            )));
        }
        if m == 0 || k == 0 || a.len() != m * k {
            return Err(LabError::Shape(format!(
                "activations: {} values for m={m} x k={k}",
                a.len()
            )));
        }
        if k != weights.k {
            return Err(LabError::Shape(format!(
                "activations have k = {k} but the sparse weights' rows {}",
                weights.k
            )));
        }
        kernel.check_row_width(ctx, k)?;
        let (pipeline, pipeline_ms) = pipeline(ctx, &kernel, weights.kept.format, weights.pattern)?;
        let (w_words, s_words) = weights.kept.gpu_words();
        // Empty scale buffers (float formats) still need a binding.
        let s_words = if s_words.is_empty() { vec![0] } else { s_words };
        // A uniform view needs the buffer at least as long as the view.
        let view = kernel.uniform_input_bytes();
        let mut ap = a.to_vec();
        ap.resize(ap.len().max(view.unwrap_or(0) as usize / 4), 0.0);
        let a_buf = buffers::upload(ctx, "sparse.a", &ap)?;
        let w_buf = buffers::upload(ctx, "sparse.w", &w_words)?;
        let s_buf = buffers::upload(ctx, "sparse.s", &s_words)?;
        let m_buf = buffers::upload(ctx, "sparse.masks", &weights.masks)?;
        let c = buffers::storage(ctx, "sparse.c", (m * weights.n * 4) as u64)?;
        let params = SparseParams::new(&kernel, m, weights);
        let grid = dispatch::grid(
            params.tiles as u64,
            ctx.limits().max_compute_workgroups_per_dimension,
        )?;
        let u = buffers::uniform(ctx, "sparse.params", &params)?;
        let mut parts = vec![
            (&u, None),
            (&a_buf, view),
            (&w_buf, None),
            (&s_buf, None),
            (&c, None),
            (&m_buf, None),
        ];
        if view.is_some() {
            parts.push((&w_buf, None));
        }
        let bind_group = gpu_pipeline::bind_group_parts(ctx, &pipeline, "sparse", &parts)?;
        Ok(Self {
            kernel,
            format: weights.kept.format,
            pattern: weights.pattern,
            m,
            n: weights.n,
            k,
            weight_bytes: weights.bytes() as u64,
            pipeline_ms,
            pipeline,
            bind_group,
            c,
            grid,
        })
    }

    /// Fills the output with NaN.
    pub fn poison(&self, ctx: &Context) {
        buffers::poison(ctx, &self.c);
    }

    /// Runs once; returns the duration (ms) and how it was timed.
    pub fn run(&self, ctx: &Context, timer: Option<&GpuTimer>) -> Result<(f64, TimingSource)> {
        timing::time_pass(ctx, timer, self.kernel.name(), |pass| {
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &self.bind_group, &[]);
            pass.dispatch_workgroups(self.grid.0, self.grid.1, 1);
        })
    }

    /// Reads C (m x n) back.
    pub fn read(&self, ctx: &Context) -> Result<Vec<f32>> {
        buffers::read(ctx, &self.c, self.m * self.n)
    }
}

impl crate::gpu::measure::GpuOp for PreparedSparse {
    fn poison(&self, ctx: &Context) {
        PreparedSparse::poison(self, ctx)
    }
    fn run(&self, ctx: &Context, timer: Option<&GpuTimer>) -> Result<(f64, TimingSource)> {
        PreparedSparse::run(self, ctx, timer)
    }
    fn read(&self, ctx: &Context) -> Result<Vec<f32>> {
        PreparedSparse::read(self, ctx)
    }
}
