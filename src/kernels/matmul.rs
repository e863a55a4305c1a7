//! f32 matrix multiply on the GPU: `naive`, `tiled`, `regblock`, layouts `nn` and `nt`.
//!
//! Any M, N, K >= 1. Problems whose operands exceed the adapter's binding limit are split on
//! the host into row blocks of A/C and column blocks of B, each an independent dispatch.

use std::sync::Arc;

use serde::Serialize;

use crate::error::{LabError, Result};
use crate::gpu::pipeline::{self as gpu_pipeline, Binding, PipelineSpec};
use crate::gpu::timing::{self, GpuTimer, TimingSource};
use crate::gpu::{buffers, dispatch, Context};
use crate::shaders::Define;

/// Storage layout of B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// B is K x N row-major: C = A * B.
    Nn,
    /// B is N x K row-major (`nn.Linear` weights): C = A * B^T.
    Nt,
}

impl Layout {
    /// Both layouts.
    pub const ALL: [Layout; 2] = [Layout::Nn, Layout::Nt];

    /// `nn` or `nt`.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Nn => "nn",
            Layout::Nt => "nt",
        }
    }

    /// Parses `nn` / `nt`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "nn" => Ok(Layout::Nn),
            "nt" => Ok(Layout::Nt),
            _ => Err(LabError::UnknownName {
                kind: "layout",
                name: s.into(),
                expected: "nn, nt".into(),
            }),
        }
    }
}

/// Matrix sizes: C is m x n, the inner dimension is k.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shape {
    /// Rows of A and C.
    pub m: usize,
    /// Columns of C.
    pub n: usize,
    /// Inner dimension.
    pub k: usize,
}

impl Shape {
    /// A shape; every dimension must be at least 1.
    pub fn new(m: usize, n: usize, k: usize) -> Result<Self> {
        if m == 0 || n == 0 || k == 0 {
            return Err(LabError::Shape(format!(
                "every dimension must be >= 1, got m={m} n={n} k={k}"
            )));
        }
        if [m, n, k].iter().any(|&d| d > u32::MAX as usize / 2) {
            return Err(LabError::Shape(format!(
                "dimensions must fit in 31 bits, got m={m} n={n} k={k}"
            )));
        }
        Ok(Self { m, n, k })
    }

    /// Checks operand lengths: A is m*k, B is k*n.
    pub fn check(&self, a_len: usize, b_len: usize) -> Result<()> {
        if a_len != self.m * self.k {
            return Err(LabError::Shape(format!(
                "A has {a_len} elements but m*k = {}*{} = {}",
                self.m,
                self.k,
                self.m * self.k
            )));
        }
        if b_len != self.k * self.n {
            return Err(LabError::Shape(format!(
                "B has {b_len} elements but k*n = {}*{} = {}",
                self.k,
                self.n,
                self.k * self.n
            )));
        }
        Ok(())
    }

    /// Floating-point operations of one multiply: 2*m*n*k.
    pub fn flops(&self) -> f64 {
        2.0 * self.m as f64 * self.n as f64 * self.k as f64
    }
}

/// An f32 matmul kernel and its tuning parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Kernel {
    /// One output per invocation from global memory; workgroup `wg x wg`.
    Naive {
        /// Workgroup side.
        wg: u32,
    },
    /// Workgroup-memory tiles of `tile x tile`, one output per invocation.
    Tiled {
        /// Tile side (= workgroup side).
        tile: u32,
    },
    /// Register blocks of `tm x tn` outputs per invocation, `wg_x` invocations per workgroup.
    Regblock {
        /// Invocations per workgroup, along n.
        wg_x: u32,
        /// Rows per invocation.
        tm: u32,
        /// Columns per invocation.
        tn: u32,
    },
    /// Register blocks of `tm x tn` scalar outputs per invocation (adjacent columns), A and
    /// B read one f32 at a time, `wg_x` invocations per workgroup: surfgrad's block shape,
    /// the winner on Mesa 25's lavapipe, where the vec4 blocks plateau.
    Scalarblock {
        /// Invocations per workgroup, along n.
        wg_x: u32,
        /// Rows per invocation.
        tm: u32,
        /// Columns per invocation (scalars).
        tn: u32,
    },
    /// The register blocks of `Regblock` with A's rows shared through the subgroup: lane i
    /// loads row i and `subgroupBroadcast` hands it to the others, one load where the
    /// register block has `tm` (on lavapipe every load runs once per SIMD lane). Needs
    /// SUBGROUP and subgroups of at least `tm` invocations.
    Sgblock {
        /// Invocations per workgroup, along n.
        wg_x: u32,
        /// Rows per invocation (at most the adapter's smallest subgroup).
        tm: u32,
        /// Column groups per invocation (vec4s in nn, columns in nt).
        tn: u32,
    },
}

impl Kernel {
    /// Kernel names accepted by `--kernel`.
    pub const NAMES: [&'static str; 5] = ["naive", "tiled", "regblock", "scalarblock", "sgblock"];

    /// The default configuration of each kernel for `layout`, in the order of [`Kernel::NAMES`].
    pub fn all(layout: Layout) -> Vec<Kernel> {
        Self::NAMES
            .iter()
            .map(|n| Self::named(n, layout).expect("NAMES are all valid"))
            .collect()
    }

    /// The default configuration of the kernel called `name` for `layout`.
    ///
    /// The regblock defaults are the fastest of a sweep at 1024^3 on lavapipe (2 cores,
    /// 256-bit): nn (16, 6, 2) ~16 GFLOP/s, nt (16, 6, 4) ~14.5 GFLOP/s; see docs/results.
    /// The scalarblock default is surfgrad's 8x8 block in 64 invocations (12.9-13.3
    /// GFLOP/s on Mesa 25.0.7, where the best vec4 block ran 11). The sgblock default, 8
    /// rows x 4 columns per invocation in workgroups of 8, ran 30 GFLOP/s there and 19-21 on
    /// Mesa 22.3.6 (docs/results/public-gemm-lavapipe.md).
    pub fn named(name: &str, layout: Layout) -> Result<Self> {
        match name {
            "naive" => Ok(Kernel::Naive { wg: 8 }),
            "tiled" => Ok(Kernel::Tiled { tile: 16 }),
            "regblock" => Ok(Kernel::Regblock {
                wg_x: 16,
                tm: 6,
                tn: match layout {
                    Layout::Nn => 2,
                    Layout::Nt => 4,
                },
            }),
            "scalarblock" => Ok(Kernel::Scalarblock {
                wg_x: 64,
                tm: 8,
                tn: 8,
            }),
            "sgblock" => Ok(Kernel::Sgblock {
                wg_x: 8,
                tm: 8,
                tn: match layout {
                    Layout::Nn => 1,
                    Layout::Nt => 4,
                },
            }),
            _ => Err(LabError::UnknownName {
                kind: "kernel",
                name: name.into(),
                expected: Self::NAMES.join(", "),
            }),
        }
    }

    /// The kernel's name (also its shader stem after `matmul_`).
    pub fn name(&self) -> &'static str {
        match self {
            Kernel::Naive { .. } => "naive",
            Kernel::Tiled { .. } => "tiled",
            Kernel::Regblock { .. } => "regblock",
            Kernel::Scalarblock { .. } => "scalarblock",
            Kernel::Sgblock { .. } => "sgblock",
        }
    }

    /// Shader file stem (the subgroup block is `matmul_regblock` with other splices).
    pub fn stem(&self) -> String {
        match self {
            Kernel::Sgblock { .. } => "matmul_regblock".into(),
            _ => format!("matmul_{}", self.name()),
        }
    }

    /// Output rows and columns one workgroup covers.
    pub fn block(&self, layout: Layout) -> (u32, u32) {
        match (*self, layout) {
            (Kernel::Naive { wg }, _) => (wg, wg),
            (Kernel::Tiled { tile }, _) => (tile, tile),
            (Kernel::Regblock { wg_x, tm, tn } | Kernel::Sgblock { wg_x, tm, tn }, Layout::Nn) => {
                (tm, wg_x * tn * 4)
            }
            (Kernel::Regblock { wg_x, tm, tn } | Kernel::Sgblock { wg_x, tm, tn }, Layout::Nt) => {
                (tm, wg_x * tn)
            }
            (Kernel::Scalarblock { wg_x, tm, tn }, _) => (tm, wg_x * tn),
        }
    }

    /// Whether operands are uploaded as whole vec4s (rows zero-padded to a multiple of 4;
    /// the scalar block reads the same padded rows).
    pub fn vec4_operands(&self) -> bool {
        matches!(
            self,
            Kernel::Regblock { .. } | Kernel::Scalarblock { .. } | Kernel::Sgblock { .. }
        )
    }

    /// Whether the kernel can read B stored as f16 (`MatmulOptions::b_f16`).
    pub fn reads_f16_b(&self) -> bool {
        matches!(self, Kernel::Regblock { .. })
    }

    /// The shader entry point for `layout`.
    pub fn entry_point(&self, layout: Layout) -> &'static str {
        match (self, layout) {
            (Kernel::Regblock { .. } | Kernel::Sgblock { .. }, Layout::Nn) => "main_nn",
            (Kernel::Regblock { .. } | Kernel::Sgblock { .. }, Layout::Nt) => "main_nt",
            _ => "main",
        }
    }

    /// Invocations per workgroup.
    pub fn invocations(&self) -> u32 {
        match *self {
            Kernel::Naive { wg } => wg * wg,
            Kernel::Tiled { tile } => tile * tile,
            Kernel::Regblock { wg_x, .. }
            | Kernel::Scalarblock { wg_x, .. }
            | Kernel::Sgblock { wg_x, .. } => wg_x,
        }
    }

    /// Workgroup memory used, bytes.
    pub fn workgroup_bytes(&self) -> u32 {
        match *self {
            Kernel::Tiled { tile } => 2 * tile * tile * 4,
            _ => 0,
        }
    }

    /// The `const` prefix of this variant (see [`crate::shaders`]); `b_f16` stores B as
    /// f16 (regblock only).
    pub fn defines(&self, b_f16: bool) -> Vec<Define> {
        match *self {
            Kernel::Naive { .. } => vec![],
            Kernel::Tiled { tile } => vec![Define::U32("TILE", tile)],
            Kernel::Regblock { tm, tn, .. } => {
                let mut d = vec![
                    Define::U32("TM", tm),
                    Define::U32("TN", tn),
                    Define::Alias("ELEM", "f32"),
                    Define::Import(
                        if b_f16 {
                            "regblock_b_f16"
                        } else {
                            "regblock_b_f32"
                        }
                        .into(),
                    ),
                ];
                d.extend(regblock_splices(tm, tn));
                d
            }
            Kernel::Scalarblock { tm, tn, .. } => {
                vec![
                    Define::U32("TM", tm),
                    Define::U32("TN", tn),
                    scalarblock_splice(tm, tn),
                ]
            }
            Kernel::Sgblock { tm, tn, .. } => {
                let mut d = vec![
                    Define::U32("TM", tm),
                    Define::U32("TN", tn),
                    Define::Alias("ELEM", "f32"),
                    Define::Import("regblock_b_f32".into()),
                ];
                d.extend(block_splices(tm, tn, ARows::Broadcast));
                d
            }
        }
    }

    /// Pipeline-overridable constants for this variant and layout.
    pub fn overrides(&self, layout: Layout) -> Vec<(&'static str, f64)> {
        let b_t = ("B_T", if layout == Layout::Nt { 1.0 } else { 0.0 });
        match *self {
            Kernel::Naive { wg } => vec![b_t, ("WG_X", wg as f64), ("WG_Y", wg as f64)],
            Kernel::Tiled { .. } => vec![b_t],
            Kernel::Regblock { wg_x, .. } | Kernel::Sgblock { wg_x, .. } => {
                vec![("WG_X", wg_x as f64)]
            }
            Kernel::Scalarblock { wg_x, .. } => vec![b_t, ("WG_X", wg_x as f64)],
        }
    }

    /// Why this kernel cannot run on `ctx`'s adapter, if it cannot (the subgroup block:
    /// [`subgroup_block_unsupported`]).
    pub fn unsupported(&self, ctx: &Context) -> Option<String> {
        let Kernel::Sgblock { wg_x, tm, .. } = *self else {
            return None;
        };
        subgroup_block_unsupported(ctx, wg_x, tm)
    }

    /// Cache key: everything that changes the compiled pipeline.
    pub fn pipeline_key(&self, layout: Layout) -> String {
        format!("{:?}/{}", self, layout.name())
    }
}

/// Why a block that shares `tm` rows of A through the subgroup (the `sgblock` variants of
/// `matmul_regblock` and `matmul_wq`) in workgroups of `wg_x` cannot run on `ctx`'s adapter, if it cannot: it
/// needs SUBGROUP, subgroups of at least `tm` invocations (lanes 0..tm-1 hold the rows),
/// and a workgroup that is a whole number of the largest subgroups, so that no subgroup is
/// partial (a partial one could lack the lanes that hold rows).
pub fn subgroup_block_unsupported(ctx: &Context, wg_x: u32, tm: u32) -> Option<String> {
    let s = &ctx.summary;
    if !ctx.has(wgpu::Features::SUBGROUP) {
        Some(format!("sgblock needs SUBGROUP, which {} lacks", s.name))
    } else if s.subgroup_min_size < tm {
        Some(format!(
            "sgblock with {tm} rows needs subgroups of at least {tm} invocations; {} may run \
             subgroups of {}",
            s.name, s.subgroup_min_size
        ))
    } else if s.subgroup_max_size == 0 || !wg_x.is_multiple_of(s.subgroup_max_size) {
        Some(format!(
            "sgblock's workgroup of {wg_x} must be a multiple of {}'s largest subgroup ({})",
            s.name, s.subgroup_max_size
        ))
    } else {
        None
    }
}

/// How a written-out vec4 block gets its rows of A each k step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ARows {
    /// Every invocation loads all `tm` rows (`regblock`, the weight formats' `wq`).
    Loaded,
    /// Lane i of the subgroup loads row i once and the rows reach the other lanes through
    /// `subgroupBroadcast` (`sgblock`, in the same shaders).
    Broadcast,
}

impl ARows {
    /// The entry point's extra parameter, as the splice `name` in its parameter list: the
    /// subgroup_invocation_id builtin for [`ARows::Broadcast`], nothing otherwise (a module
    /// that names a subgroup builtin needs SUBGROUP to compile at all).
    pub fn lane_splice(self, name: &'static str) -> Define {
        Define::Splice(
            name,
            match self {
                ARows::Loaded => String::new(),
                ARows::Broadcast => "    @builtin(subgroup_invocation_id) lane: u32,\n".into(),
            },
        )
    }
}

/// The written-out register block of `matmul_regblock` for `tm` rows x `tn` column groups:
/// the code of its `#splice regblock_nn` and `#splice regblock_nt` lines (see the shader's
/// header for why it is generated rather than looped), and of `#splice regblock_lane`
/// (empty here; the subgroup variant's builtin with [`ARows::Broadcast`]).
pub fn regblock_splices(tm: u32, tn: u32) -> Vec<Define> {
    block_splices(tm, tn, ARows::Loaded)
}

/// [`regblock_splices`] with A's rows from `a_rows`.
pub fn block_splices(tm: u32, tn: u32, a_rows: ARows) -> Vec<Define> {
    use std::fmt::Write;
    let (rows, cols) = (0..tm, 0..tn);
    let mut nn = String::new();
    let mut nt = String::new();
    let w = |s: &mut String, line: String| {
        s.push_str("    ");
        s.push_str(&line);
        s.push('\n');
    };
    for s in [&mut nn, &mut nt] {
        match a_rows {
            ARows::Loaded => {
                for i in rows.clone() {
                    w(s, format!("let ar{i} = clamped(row0 + {i}u, p.m, lda4);"));
                }
            }
            // The row this lane loads for the others (lanes past TM repeat the last one).
            ARows::Broadcast => w(
                s,
                "let lane_row = clamped(row0 + min(lane, TM - 1u), p.m, lda4);".into(),
            ),
        }
    }
    for j in cols.clone() {
        w(
            &mut nn,
            format!("let bc{j} = min(col4 + {j}u * WG_X, ldb4 - 1u);"),
        );
        w(
            &mut nt,
            format!("let br{j} = clamped(col0 + {j}u * WG_X, p.n, ldb4);"),
        );
    }
    for i in rows.clone() {
        for j in cols.clone() {
            for s in [&mut nn, &mut nt] {
                w(s, format!("var acc{i}_{j} = vec4<ELEM>();"));
            }
        }
    }
    for s in [&mut nn, &mut nt] {
        w(s, "for (var kq = 0u; kq < k4; kq++) {".into());
    }
    let b_row = |q: usize| {
        if q == 0 {
            "kb".to_string()
        } else {
            format!("kb + {q}u * ldb4")
        }
    };
    w(&mut nn, "    let kb = kq * 4u * ldb4;".into());
    match a_rows {
        ARows::Loaded => {
            for s in [&mut nn, &mut nt] {
                for i in rows.clone() {
                    w(s, format!("    let a{i} = a[ar{i} + kq];"));
                }
            }
            // nn: B rows 4kq .. 4kq+3, each vec4 of B used by every row as soon as it is
            // loaded.
            for (q, comp) in ["x", "y", "z", "w"].iter().enumerate() {
                for j in cols.clone() {
                    let _ = writeln!(nn, "        let b{q}_{j} = load_b({} + bc{j});", b_row(q));
                    for i in rows.clone() {
                        let _ = writeln!(
                            nn,
                            "        acc{i}_{j} = fma(vec4(a{i}.{comp}), b{q}_{j}, acc{i}_{j});"
                        );
                    }
                }
            }
            // nt: one vec4 of each B row, multiplied into every A row's running sums.
            for j in cols.clone() {
                let _ = writeln!(nt, "        let b{j} = load_b(br{j} + kq);");
                for i in rows.clone() {
                    let _ = writeln!(nt, "        acc{i}_{j} = fma(a{i}, b{j}, acc{i}_{j});");
                }
            }
        }
        ARows::Broadcast => {
            // B's vec4s of the step first, then one A row at a time: its broadcast is used
            // by all of its FMAs and dies, so only one row is live beside B and the
            // accumulators (broadcasting all rows first measured ~20% slower on Mesa 25).
            for q in 0..4 {
                for j in cols.clone() {
                    let _ = writeln!(nn, "        let b{q}_{j} = load_b({} + bc{j});", b_row(q));
                }
            }
            for j in cols.clone() {
                let _ = writeln!(nt, "        let b{j} = load_b(br{j} + kq);");
            }
            for s in [&mut nn, &mut nt] {
                w(s, "    let a_lane = a[lane_row + kq];".into());
            }
            for i in rows.clone() {
                for s in [&mut nn, &mut nt] {
                    w(
                        s,
                        format!("    let a{i} = subgroupBroadcast(a_lane, {i}u);"),
                    );
                }
                for (q, comp) in ["x", "y", "z", "w"].iter().enumerate() {
                    for j in cols.clone() {
                        let _ = writeln!(
                            nn,
                            "        acc{i}_{j} = fma(vec4(a{i}.{comp}), b{q}_{j}, acc{i}_{j});"
                        );
                    }
                }
                for j in cols.clone() {
                    let _ = writeln!(nt, "        acc{i}_{j} = fma(a{i}, b{j}, acc{i}_{j});");
                }
            }
        }
    }
    for s in [&mut nn, &mut nt] {
        w(s, "}".into());
    }
    for i in rows {
        for j in cols.clone() {
            w(
                &mut nn,
                format!("store_nn(row0 + {i}u, col4 + {j}u * WG_X, acc{i}_{j});"),
            );
            w(
                &mut nt,
                format!("store_nt(row0 + {i}u, col0 + {j}u * WG_X, acc{i}_{j});"),
            );
        }
    }
    vec![
        Define::Splice("regblock_nn", nn),
        Define::Splice("regblock_nt", nt),
        a_rows.lane_splice("regblock_lane"),
    ]
}

/// The written-out block of `matmul_scalarblock` for `tm` rows x `tn` adjacent columns:
/// the code of its `#splice scalarblock` line, for either layout (B's strides come from the
/// shader's B_T). Per k step each invocation loads its `tn` values of B and `tm` of A, one
/// f32 each, and does `tm * tn` FMAs.
pub fn scalarblock_splice(tm: u32, tn: u32) -> Define {
    use std::fmt::Write;
    let mut s = String::new();
    for i in 0..tm {
        let _ = writeln!(s, "    let ar{i} = min(row0 + {i}u, p.m - 1u) * p.lda;");
    }
    for j in 0..tn {
        let _ = writeln!(
            s,
            "    let bc{j} = min(col0 + {j}u, p.n - 1u) * col_stride;"
        );
    }
    for i in 0..tm {
        for j in 0..tn {
            let _ = writeln!(s, "    var acc{i}_{j} = 0.0;");
        }
    }
    s.push_str("    for (var kk = 0u; kk < p.k; kk++) {\n        let kb = kk * k_stride;\n");
    for j in 0..tn {
        let _ = writeln!(s, "        let b{j} = b[kb + bc{j}];");
    }
    for i in 0..tm {
        let _ = writeln!(s, "        let a{i} = a[ar{i} + kk];");
        for j in 0..tn {
            let _ = writeln!(s, "        acc{i}_{j} = fma(a{i}, b{j}, acc{i}_{j});");
        }
    }
    s.push_str("    }\n");
    for i in 0..tm {
        for j in 0..tn {
            let _ = writeln!(s, "    store(row0 + {i}u, col0 + {j}u, acc{i}_{j});");
        }
    }
    Define::Splice("scalarblock", s)
}

/// Parameter block of every matmul shader.
/// Keep in sync with `MatmulParams` in shaders/shared/matmul_params.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MatmulParams {
    /// Rows of this chunk of C.
    pub m: u32,
    /// Columns of this chunk of C.
    pub n: u32,
    /// Inner dimension.
    pub k: u32,
    /// Workgroup tiles along n.
    pub tiles_n: u32,
    /// Workgroup tiles in all.
    pub tiles: u32,
    /// Row stride of A as stored, elements.
    pub lda: u32,
    /// Row stride of B as stored, elements.
    pub ldb: u32,
    /// Padding to 32 bytes.
    pub _pad: u32,
}

/// Bindings of every f32 matmul kernel: params, A, B, C.
const BINDINGS: [Binding; 4] = [
    Binding::Uniform,
    Binding::ReadOnly,
    Binding::ReadOnly,
    Binding::ReadWrite,
];

/// Checks a kernel's workgroup against the device limits.
fn check_kernel_limits(ctx: &Context, kernel: &Kernel) -> Result<()> {
    let l = ctx.limits();
    if kernel.invocations() > l.max_compute_invocations_per_workgroup {
        return Err(LabError::OverLimit {
            what: format!("kernel {kernel:?} workgroup (invocations)"),
            asked: kernel.invocations() as u64,
            limit_name: "max_compute_invocations_per_workgroup",
            limit: l.max_compute_invocations_per_workgroup as u64,
        });
    }
    if kernel.workgroup_bytes() > l.max_compute_workgroup_storage_size {
        return Err(LabError::OverLimit {
            what: format!("kernel {kernel:?} workgroup memory"),
            asked: kernel.workgroup_bytes() as u64,
            limit_name: "max_compute_workgroup_storage_size",
            limit: l.max_compute_workgroup_storage_size as u64,
        });
    }
    Ok(())
}

/// Compiles (or fetches from the cache) the pipeline of `kernel` for `layout`.
///
/// Returns the pipeline and the host time spent creating it (`None` when cached).
pub fn pipeline(
    ctx: &Context,
    kernel: &Kernel,
    layout: Layout,
    b_f16: bool,
) -> Result<(Arc<wgpu::ComputePipeline>, Option<f64>)> {
    check_kernel_limits(ctx, kernel)?;
    if let Some(why) = kernel.unsupported(ctx) {
        return Err(LabError::Unsupported(why));
    }
    if b_f16 && !kernel.reads_f16_b() {
        return Err(LabError::UnknownName {
            kind: "kernel for f16 B",
            name: kernel.name().into(),
            expected: "regblock".into(),
        });
    }
    let stem = kernel.stem();
    gpu_pipeline::build(
        ctx,
        &PipelineSpec {
            stem: &stem,
            defines: kernel.defines(b_f16),
            entry: kernel.entry_point(layout),
            constants: kernel.overrides(layout),
            bindings: BINDINGS.to_vec(),
        },
    )
}

/// Options that change how a problem is laid out on the device.
#[derive(Debug, Clone, Copy, Default)]
pub struct MatmulOptions {
    /// Pretend the adapter's binding limit is this many bytes (forces splitting; for tests).
    pub max_binding_bytes: Option<u64>,
    /// Store B as f16 (rounded to nearest even), accumulate in f32: the `f16` precision in
    /// either layout. regblock only.
    pub b_f16: bool,
}

struct Chunk {
    m0: usize,
    m_len: usize,
    n0: usize,
    n_len: usize,
    c: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    grid: (u32, u32),
}

/// A matmul with operands uploaded and pipeline built, ready to run repeatedly.
pub struct PreparedMatmul {
    /// The kernel it runs.
    pub kernel: Kernel,
    /// B's layout.
    pub layout: Layout,
    /// Problem size.
    pub shape: Shape,
    /// Host time to create the pipeline, if this call created it (not cached).
    pub pipeline_ms: Option<f64>,
    pipeline: Arc<wgpu::ComputePipeline>,
    chunks: Vec<Chunk>,
}

impl PreparedMatmul {
    /// Uploads A (m x k) and B (k x n for `nn`, n x k for `nt`) and builds the pipeline.
    pub fn new(
        ctx: &Context,
        kernel: Kernel,
        layout: Layout,
        shape: Shape,
        a: &[f32],
        b: &[f32],
        opts: MatmulOptions,
    ) -> Result<Self> {
        shape.check(a.len(), b.len())?;
        let (pipeline, pipeline_ms) = pipeline(ctx, &kernel, layout, opts.b_f16)?;
        let Shape { m, n, k } = shape;
        let l = ctx.limits();
        let limit = opts
            .max_binding_bytes
            .unwrap_or(u64::MAX)
            .min(l.max_storage_buffer_binding_size)
            .min(l.max_buffer_size);
        let (bm, bn) = kernel.block(layout);
        let pad = |x: usize| {
            if kernel.vec4_operands() {
                x.div_ceil(4) * 4
            } else {
                x
            }
        };
        let lda = pad(k);
        // Every A or B block is at most `rows x lda` floats, plus up to 3 padding rows
        // (vec4 kernels, layout nn), so `rows_fit - 3` rows of either always fit one binding.
        let row_bytes = lda as u64 * 4;
        let rows_fit = (limit / row_bytes).saturating_sub(3) as usize;
        if rows_fit == 0 {
            return Err(LabError::OverLimit {
                what: format!("a few rows of A or B (k = {k})"),
                asked: 4 * row_bytes,
                limit_name: "max_storage_buffer_binding_size",
                limit,
            });
        }
        let n_len = n.min(rows_fit);
        let m_len = m
            .min(rows_fit)
            .min((limit / (n_len as u64 * 4)).max(1) as usize);

        let a_bufs = (0..m)
            .step_by(m_len)
            .map(|m0| {
                let m1 = (m0 + m_len).min(m);
                let block = Block::of(a, k, m0..m1, 0..k);
                buffers::upload(ctx, "matmul.a", &block.padded(m1 - m0, lda))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut ldbs = Vec::new();
        let b_bufs = (0..n)
            .step_by(n_len)
            .map(|n0| {
                let n1 = (n0 + n_len).min(n);
                // B's block for output columns n0..n1, padded as the kernel wants.
                let (block, rows, ldb) = match layout {
                    Layout::Nt => (Block::of(b, k, n0..n1, 0..k), n1 - n0, pad(k)),
                    Layout::Nn => (Block::of(b, n, 0..k, n0..n1), pad(k), pad(n1 - n0)),
                };
                ldbs.push(ldb);
                let padded = block.padded(rows, ldb);
                if opts.b_f16 {
                    let halves: Vec<half::f16> =
                        padded.iter().map(|&v| half::f16::from_f32(v)).collect();
                    buffers::upload(ctx, "matmul.b", &halves)
                } else {
                    buffers::upload(ctx, "matmul.b", &padded)
                }
            })
            .collect::<Result<Vec<_>>>()?;

        let mut chunks = Vec::new();
        for (ai, m0) in (0..m).step_by(m_len).enumerate() {
            for (bi, n0) in (0..n).step_by(n_len).enumerate() {
                let ml = m_len.min(m - m0);
                let nl = n_len.min(n - n0);
                let tiles_n = nl.div_ceil(bn as usize);
                let tiles = ml.div_ceil(bm as usize) * tiles_n;
                let grid = dispatch::grid(tiles as u64, l.max_compute_workgroups_per_dimension)?;
                let params = MatmulParams {
                    m: ml as u32,
                    n: nl as u32,
                    k: k as u32,
                    tiles_n: tiles_n as u32,
                    tiles: tiles as u32,
                    lda: lda as u32,
                    ldb: ldbs[bi] as u32,
                    _pad: 0,
                };
                let ubuf = buffers::uniform(ctx, "matmul.params", &params)?;
                let c = buffers::storage(ctx, "matmul.c", (ml * nl * 4) as u64)?;
                let bind_group = gpu_pipeline::bind_group(
                    ctx,
                    &pipeline,
                    "matmul",
                    &[&ubuf, &a_bufs[ai], &b_bufs[bi], &c],
                )?;
                chunks.push(Chunk {
                    m0,
                    m_len: ml,
                    n0,
                    n_len: nl,
                    c,
                    bind_group,
                    grid,
                });
            }
        }
        Ok(Self {
            kernel,
            layout,
            shape,
            pipeline_ms,
            pipeline,
            chunks,
        })
    }

    /// How many independent dispatches the problem was split into.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Fills the output with NaN so any element the kernel fails to write is caught.
    pub fn poison(&self, ctx: &Context) {
        for ch in &self.chunks {
            buffers::poison(ctx, &ch.c);
        }
    }

    /// Runs the multiply once; returns its duration (ms) and how it was timed.
    pub fn run(&self, ctx: &Context, timer: Option<&GpuTimer>) -> Result<(f64, TimingSource)> {
        let label = self.kernel.stem();
        timing::time_pass(ctx, timer, &label, |pass| {
            pass.set_pipeline(&self.pipeline);
            for ch in &self.chunks {
                pass.set_bind_group(0, &ch.bind_group, &[]);
                pass.dispatch_workgroups(ch.grid.0, ch.grid.1, 1);
            }
        })
    }

    /// Reads C (m x n, row-major) back to the host.
    pub fn read(&self, ctx: &Context) -> Result<Vec<f32>> {
        let Shape { m, n, .. } = self.shape;
        if self.chunks.len() == 1 {
            return buffers::read(ctx, &self.chunks[0].c, m * n);
        }
        let mut c = vec![0f32; m * n];
        for ch in &self.chunks {
            let part: Vec<f32> = buffers::read(ctx, &ch.c, ch.m_len * ch.n_len)?;
            for r in 0..ch.m_len {
                let dst = (ch.m0 + r) * n + ch.n0;
                c[dst..dst + ch.n_len].copy_from_slice(&part[r * ch.n_len..(r + 1) * ch.n_len]);
            }
        }
        Ok(c)
    }
}

/// A rectangular block of a row-major matrix, copied out with zero padding on demand.
struct Block<'a> {
    src: &'a [f32],
    ld: usize,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
}

impl<'a> Block<'a> {
    fn of(
        src: &'a [f32],
        ld: usize,
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
    ) -> Self {
        Self {
            src,
            ld,
            rows,
            cols,
        }
    }

    /// The block as `out_rows x out_ld` (>= its own size), zeros outside it. Borrows the
    /// source when it is already exactly that.
    fn padded(&self, out_rows: usize, out_ld: usize) -> std::borrow::Cow<'a, [f32]> {
        let (r, c) = (self.rows.len(), self.cols.len());
        if out_rows == r && out_ld == c && c == self.ld {
            return std::borrow::Cow::Borrowed(
                &self.src[self.rows.start * self.ld..self.rows.end * self.ld],
            );
        }
        let mut out = vec![0f32; out_rows * out_ld];
        for (i, row) in self.rows.clone().enumerate() {
            let s = row * self.ld;
            out[i * out_ld..i * out_ld + c]
                .copy_from_slice(&self.src[s + self.cols.start..s + self.cols.end]);
        }
        std::borrow::Cow::Owned(out)
    }
}

/// One-shot C = A * B (or A * B^T for `nt`) with `kernel`; returns C row-major.
pub fn matmul(
    ctx: &Context,
    kernel: Kernel,
    layout: Layout,
    shape: Shape,
    a: &[f32],
    b: &[f32],
) -> Result<Vec<f32>> {
    let prepared = PreparedMatmul::new(ctx, kernel, layout, shape, a, b, MatmulOptions::default())?;
    prepared.run(ctx, None)?;
    prepared.read(ctx)
}

impl crate::gpu::measure::GpuOp for PreparedMatmul {
    fn poison(&self, ctx: &Context) {
        PreparedMatmul::poison(self, ctx)
    }
    fn run(&self, ctx: &Context, timer: Option<&GpuTimer>) -> Result<(f64, TimingSource)> {
        PreparedMatmul::run(self, ctx, timer)
    }
    fn read(&self, ctx: &Context) -> Result<Vec<f32>> {
        PreparedMatmul::read(self, ctx)
    }
}
