//! Matmul with f32 activations and weights in any storage format (`matmul_wq`):
//! C (m x n) = A (m x k) * W^T, W n x k in any `WeightFormat` (floats, ggml blocks, K-quants).

use std::sync::Arc;

use serde::Serialize;

use crate::error::{LabError, Result};
use crate::formats::weights::{WeightFormat, Weights};
use crate::gpu::pipeline::{self as gpu_pipeline, Binding, PipelineSpec};
use crate::gpu::timing::{self, GpuTimer, TimingSource};
use crate::gpu::{buffers, dispatch, Context};
use crate::kernels::epilogue::Epilogue;
use crate::kernels::matmul::ARows;
use crate::shaders::Define;

/// Tuning of `matmul_wq`: `wg_x` invocations per workgroup, each owning `tm` activation
/// rows x `tn` weight rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct WqKernel {
    /// Invocations per workgroup (along n).
    pub wg_x: u32,
    /// Activation rows per invocation.
    pub tm: u32,
    /// Weight rows per invocation.
    pub tn: u32,
}

impl WqKernel {
    /// The default for `m` activation rows: register blocks of 4 x 4 (1 x 4 for m = 1,
    /// where more rows would only repeat work).
    pub fn default_for(m: usize) -> Self {
        Self {
            wg_x: 16,
            tm: if m == 1 { 1 } else { 4 },
            tn: 4,
        }
    }

    /// Outputs (rows, columns) covered by one workgroup.
    pub fn block(&self) -> (u32, u32) {
        (self.tm, self.wg_x * self.tn)
    }

    /// The variant prefix: block sizes and the weight-decoding module (no epilogue).
    pub fn defines(&self, format: WeightFormat) -> Vec<Define> {
        let mut d = vec![
            Define::U32("TM", self.tm),
            Define::U32("TN", self.tn),
            Define::Import(format!("weights_{}", format.name())),
        ];
        d.extend(block_splice(self.tm, self.tn));
        d.extend(Epilogue::None.defines(BINDINGS.len() as u32));
        d
    }
}

/// The written-out register block of `matmul_wq` for `tm` activation rows x `tn` weight
/// rows: the code of its `#splice matmul_wq_block` line (the shader's header says why)
/// and of `#splice matmul_wq_lane` (empty: the subgroup variant's builtin).
pub fn block_splice(tm: u32, tn: u32) -> Vec<Define> {
    block_splice_rows(tm, tn, ARows::Loaded)
}

/// [`block_splice`] with the activation rows from `a_rows`: loaded by every invocation, or
/// by lane i for row i and broadcast (the `sgblock` variant).
pub fn block_splice_rows(tm: u32, tn: u32, a_rows: ARows) -> Vec<Define> {
    use std::fmt::Write;
    let mut s = String::new();
    let mut w = |indent: usize, line: String| {
        let _ = writeln!(s, "{:1$}{line}", "", 4 * indent);
    };
    match a_rows {
        ARows::Loaded => {
            for i in 0..tm {
                w(1, format!("let ar{i} = min(row0 + {i}u, p.m - 1u) * k4;"));
            }
        }
        // The activation row this lane loads for the others (lanes past TM repeat the last).
        ARows::Broadcast => w(
            1,
            "let lane_row = min(row0 + min(lane, TM - 1u), p.m - 1u) * k4;".into(),
        ),
    }
    for j in 0..tn {
        w(
            1,
            format!("let wb{j} = min(col0 + {j}u * WG_X, p.n - 1u) * p.nblk;"),
        );
    }
    for i in 0..tm {
        for j in 0..tn {
            w(1, format!("var acc{i}_{j} = 0.0;"));
        }
    }
    w(1, "for (var blk = 0u; blk < p.nblk; blk++) {".into());
    // Each weight row's block is loaded once (`load_block`), then decoded vec4 by vec4.
    for j in 0..tn {
        w(2, format!("let blk{j} = load_block(wb{j} + blk);"));
    }
    for i in 0..tm {
        w(2, format!("var asum{i} = vec4<f32>();"));
        for j in 0..tn {
            w(2, format!("var part{i}_{j} = vec4<f32>();"));
        }
    }
    w(2, "for (var v = 0u; v < 8u; v++) {".into());
    for j in 0..tn {
        w(3, format!("let q{j} = decode_in(blk{j}, v);"));
    }
    if a_rows == ARows::Broadcast {
        w(3, "let a_lane = a[lane_row + blk * 8u + v];".into());
    }
    for i in 0..tm {
        match a_rows {
            ARows::Loaded => w(3, format!("let a{i} = a[ar{i} + blk * 8u + v];")),
            ARows::Broadcast => w(3, format!("let a{i} = subgroupBroadcast(a_lane, {i}u);")),
        }
        w(3, format!("asum{i} += a{i};"));
        for j in 0..tn {
            w(3, format!("part{i}_{j} = fma(a{i}, q{j}, part{i}_{j});"));
        }
    }
    w(2, "}".into());
    for j in 0..tn {
        w(2, format!("let sc{j} = block_scale(wb{j} + blk);"));
        for i in 0..tm {
            w(
                2,
                format!("acc{i}_{j} += sc{j}.x * hsum(part{i}_{j}) + sc{j}.y * hsum(asum{i});"),
            );
        }
    }
    w(1, "}".into());
    for i in 0..tm {
        for j in 0..tn {
            w(
                1,
                format!("store(row0 + {i}u, col0 + {j}u * WG_X, acc{i}_{j});"),
            );
        }
    }
    vec![
        Define::Splice("matmul_wq_block", s),
        a_rows.lane_splice("matmul_wq_lane"),
    ]
}

/// The kernel that runs a weights-in-any-format product. Serialised untagged (a register
/// block's or a GEMV's own fields), as the tune cache stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum WqVariant {
    /// `matmul_wq`: register blocks, any m.
    Regblock(WqKernel),
    /// `gemv_wq`: one activation row; `wg` invocations split each of `rows` weight rows
    /// along k (coalesced block reads on GPUs), then reduce in workgroup memory.
    Gemv {
        /// Invocations per workgroup (a power of two).
        wg: u32,
        /// Weight rows per workgroup.
        rows: u32,
        /// Reduce with subgroup operations (`gemv_wq_subgroup`; needs SUBGROUP) instead of
        /// a tree in workgroup memory.
        #[serde(default)]
        subgroup: bool,
    },
    /// `gemv_wq_broadcast`: one activation row read from a uniform buffer (every lane reads
    /// the same values; cheaper than a storage read on CPU adapters), `lanes` invocations per workgroup each owning `4 x quads` weight rows
    /// along all of k, written out rather than looped over (built for lavapipe).
    Broadcast {
        /// Invocations per workgroup.
        lanes: u32,
        /// Groups of 4 weight rows per invocation (1 or 2).
        quads: u32,
    },
    /// `matmul_wq_tiled`: a `bm` x `bn` tile of C per workgroup, `kv` vec4s along k of A and
    /// of the decoded W staged in workgroup memory per step, `tm` x `tn` outputs per
    /// invocation.
    Tiled(TiledKernel),
    /// `matmul_scalarblock`, f32 only (the tune cache's `f32/gemm-nn` and `f32/gemm-nt`
    /// entries, beside `matmul_regblock`'s blocks): `tm` x `tn` scalar outputs per
    /// invocation, `wg_x` invocations. Stored under its own key, `scalar`, since the
    /// untagged form of a register block has the same three fields.
    Scalar {
        /// The block.
        scalar: WqKernel,
    },
    /// The register block with A's rows shared through the subgroup (lane i loads row i,
    /// `subgroupBroadcast` hands it to the others): under an f32 entry `matmul_regblock`'s
    /// `tm` x `tn` block, under a weight format's `matmul_wq` block (`tm` activation rows x
    /// `tn` weight rows), each with other splices. Stored under its own key, `sgblock`,
    /// like the scalar block.
    Sgblock {
        /// The block.
        sgblock: WqKernel,
    },
}

/// The weight formats' subgroup block for CPU adapters (8 activation rows broadcast from
/// lanes 0..7, 4 weight rows per lane, 8 invocations): the fresh-cache autotune's pick for
/// every weight format on lavapipe, Mesa 22.3.6 and 25.0.7
/// (docs/results/public-gemm-lavapipe.md).
pub const CPU_SGBLOCK: WqKernel = WqKernel {
    wg_x: 8,
    tm: 8,
    tn: 4,
};

/// The GEMM kernel a model runs its weight-format linears with on `ctx`: [`CPU_SGBLOCK`]
/// on a CPU adapter that can run it (lavapipe), the register block `fallback` elsewhere.
pub fn cpu_sgblock_or(ctx: &Context, fallback: WqKernel) -> WqVariant {
    let k = CPU_SGBLOCK;
    match crate::kernels::matmul::subgroup_block_unsupported(ctx, k.wg_x, k.tm) {
        None if ctx.summary.device_type == "cpu" => WqVariant::Sgblock { sgblock: k },
        _ => WqVariant::Regblock(fallback),
    }
}

/// Tuning of `matmul_wq_tiled` (see [`WqVariant::Tiled`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct TiledKernel {
    /// Rows of C per workgroup.
    pub bm: u32,
    /// Columns of C per workgroup.
    pub bn: u32,
    /// Rows per invocation (divides `bm`).
    pub tm: u32,
    /// Columns per invocation (divides `bn`).
    pub tn: u32,
    /// vec4s along k staged per step (2: 8 values, 8: one block of 32).
    pub kv: u32,
}

impl TiledKernel {
    /// The shape of the best public WGSL f32 kernel measured on lavapipe (16 x 16
    /// invocations, 8 x 8 outputs each, 8 values of k staged per step), as this kernel
    /// family expresses it.
    pub const PUBLIC_SHAPE: TiledKernel = TiledKernel {
        bm: 128,
        bn: 128,
        tm: 8,
        tn: 8,
        kv: 2,
    };

    /// Invocations per workgroup.
    pub fn invocations(&self) -> u32 {
        (self.bm / self.tm) * (self.bn / self.tn)
    }

    /// Workgroup memory: both staged slices, f32, kv + 1 vec4 per row.
    pub fn workgroup_bytes(&self) -> u32 {
        (self.bm + self.bn) * (self.kv + 1) * 16
    }

    /// Whether the sizes are consistent and fit the adapter's limits.
    pub fn fits(&self, l: &wgpu::Limits) -> bool {
        self.tm > 0
            && self.tn > 0
            && self.kv > 0
            && self.bm.is_multiple_of(self.tm)
            && self.bn.is_multiple_of(self.tn)
            && self.invocations() <= l.max_compute_invocations_per_workgroup
            && self.invocations() <= l.max_compute_workgroup_size_x
            && self.workgroup_bytes() <= l.max_compute_workgroup_storage_size
    }
}

impl WqVariant {
    /// The default GEMV configuration.
    pub const GEMV: WqVariant = WqVariant::Gemv {
        wg: 64,
        rows: 4,
        subgroup: false,
    };

    /// Kernel name and sizes in a few characters (`gemv-bcast 16x8`: lanes x rows).
    pub fn describe(&self) -> String {
        match *self {
            WqVariant::Regblock(k) => format!("wq {}x{}x{}", k.wg_x, k.tm, k.tn),
            WqVariant::Gemv { wg, rows, subgroup } => {
                format!(
                    "gemv {wg}x{rows}{}",
                    if subgroup { " subgroup" } else { "" }
                )
            }
            WqVariant::Broadcast { lanes, quads } => format!("gemv-bcast {lanes}x{}", 4 * quads),
            WqVariant::Tiled(t) => {
                format!("wq-tiled {}x{} {}x{} kv{}", t.bm, t.bn, t.tm, t.tn, t.kv)
            }
            WqVariant::Scalar { scalar: k } => {
                format!("scalarblock {}x{}x{}", k.wg_x, k.tm, k.tn)
            }
            WqVariant::Sgblock { sgblock: k } => {
                format!("sgblock {}x{}x{}", k.wg_x, k.tm, k.tn)
            }
        }
    }

    /// The f32 kernel an f32 tune entry (`f32/gemm-nn`, `-nt`) names: a register block, a
    /// scalar block or a subgroup block; `None` for the weight-format families.
    pub fn f32_kernel(&self) -> Option<crate::kernels::matmul::Kernel> {
        use crate::kernels::matmul::Kernel;
        match *self {
            WqVariant::Regblock(k) => Some(Kernel::Regblock {
                wg_x: k.wg_x,
                tm: k.tm,
                tn: k.tn,
            }),
            WqVariant::Scalar { scalar: k } => Some(Kernel::Scalarblock {
                wg_x: k.wg_x,
                tm: k.tm,
                tn: k.tn,
            }),
            WqVariant::Sgblock { sgblock: k } => Some(Kernel::Sgblock {
                wg_x: k.wg_x,
                tm: k.tm,
                tn: k.tn,
            }),
            _ => None,
        }
    }

    /// Whether this variant takes one activation row only (the GEMV kernels).
    pub fn is_gemv(&self) -> bool {
        matches!(self, WqVariant::Gemv { .. } | WqVariant::Broadcast { .. })
    }

    /// Bytes of the uniform view of the activations, for the variants that read them so.
    pub fn uniform_input_bytes(&self) -> Option<u64> {
        matches!(self, WqVariant::Broadcast { .. }).then_some(BROADCAST_A_BYTES)
    }

    /// Whether this variant needs the SUBGROUP feature.
    pub fn needs_subgroups(&self) -> bool {
        matches!(
            self,
            WqVariant::Gemv { subgroup: true, .. } | WqVariant::Sgblock { .. }
        )
    }

    /// Kernel name in tables: `wq`, `gemv`, `gemv-bcast` or `wq-tiled`.
    pub fn name(&self) -> &'static str {
        match self {
            WqVariant::Regblock(_) => "wq",
            WqVariant::Gemv { .. } => "gemv",
            WqVariant::Broadcast { .. } => "gemv-bcast",
            WqVariant::Tiled(_) => "wq-tiled",
            WqVariant::Scalar { .. } => "scalarblock",
            WqVariant::Sgblock { .. } => "sgblock",
        }
    }

    /// The pipeline of this variant for a weight format and output epilogue (the bias, if
    /// any, binds after the five buffers of [`PreparedMatmulWq`]).
    pub fn spec(&self, format: WeightFormat, epilogue: Epilogue) -> PipelineSpec<'static> {
        let weights = Define::Import(format!("weights_{}", format.name()));
        let mut epi = epilogue.defines(BINDINGS.len() as u32);
        let bindings = epilogue.bindings(&BINDINGS);
        match *self {
            // The register block, or with the activation rows broadcast the subgroup block.
            WqVariant::Regblock(k) | WqVariant::Sgblock { sgblock: k } => {
                let rows = match self {
                    WqVariant::Sgblock { .. } => ARows::Broadcast,
                    _ => ARows::Loaded,
                };
                let mut defines = vec![Define::U32("TM", k.tm), Define::U32("TN", k.tn), weights];
                defines.extend(block_splice_rows(k.tm, k.tn, rows));
                defines.append(&mut epi);
                PipelineSpec {
                    stem: "matmul_wq",
                    defines,
                    entry: "main",
                    constants: vec![("WG_X", k.wg_x as f64)],
                    bindings,
                }
            }
            WqVariant::Gemv { wg, rows, subgroup } => {
                let mut defines = vec![Define::U32("ROWS", rows), weights];
                defines.append(&mut epi);
                PipelineSpec {
                    stem: if subgroup {
                        "gemv_wq_subgroup"
                    } else {
                        "gemv_wq"
                    },
                    defines,
                    entry: "main",
                    constants: vec![("WG", wg as f64)],
                    bindings,
                }
            }
            WqVariant::Broadcast { lanes, quads } => {
                let first_bias = BROADCAST_BINDINGS.len() as u32;
                // Q8_0's block is two quads, loaded whole; the others go through their
                // module's load_block / decode_in.
                let row_dot = match format {
                    WeightFormat::Q8_0 => "row_dot_q8_0",
                    _ => "row_dot_generic",
                };
                let mut defines = vec![
                    Define::U32("QUADS", quads),
                    Define::U32("A_VEC4S", (BROADCAST_A_BYTES / 16) as u32),
                    weights,
                    Define::Import(row_dot.into()),
                ];
                defines.append(&mut epilogue.defines(first_bias));
                // y = W x as it is (fused_spec swaps in a decoder's neighbours).
                defines.extend([
                    Define::Import(PLAIN_IN.into()),
                    Define::Import(PLAIN_OUT.into()),
                ]);
                PipelineSpec {
                    stem: "gemv_wq_broadcast",
                    defines,
                    entry: "main",
                    constants: vec![("WG", lanes as f64)],
                    bindings: epilogue.bindings(&BROADCAST_BINDINGS),
                }
            }
            WqVariant::Tiled(t) => {
                let mut defines = vec![
                    Define::U32("BM", t.bm),
                    Define::U32("BN", t.bn),
                    Define::U32("TM", t.tm),
                    Define::U32("TN", t.tn),
                    Define::U32("KV", t.kv),
                    weights,
                ];
                defines.append(&mut epi);
                PipelineSpec {
                    stem: "matmul_wq_tiled",
                    defines,
                    entry: "main",
                    constants: vec![],
                    bindings,
                }
            }
            // The f32 scalar block's own pipeline: no weight format binds to it, and
            // `pipeline` refuses it before a spec is built.
            WqVariant::Scalar { .. } => {
                let f32_kernel = self.f32_kernel().expect("an f32 block variant");
                PipelineSpec {
                    stem: "matmul_scalarblock",
                    defines: f32_kernel.defines(false),
                    entry: f32_kernel.entry_point(crate::kernels::matmul::Layout::Nt),
                    constants: f32_kernel.overrides(crate::kernels::matmul::Layout::Nt),
                    bindings,
                }
            }
        }
    }

    /// The pipeline of `gemv_wq_broadcast` with neighbours of a decoder's product fused in
    /// ([`Fused`]: at most one on each side); their extra buffers bind after the kernel's
    /// own, the input side's first. Only this kernel takes them: each of its invocations
    /// reads the whole input row, so it can scale by the row's norm, and owns whole
    /// output rows.
    pub fn fused_spec(
        &self,
        format: WeightFormat,
        fused: &[Fused],
    ) -> Result<PipelineSpec<'static>> {
        let WqVariant::Broadcast { quads, .. } = *self else {
            return Err(LabError::InvalidArgument(format!(
                "{fused:?} fuses into gemv-bcast only, not {}",
                self.describe()
            )));
        };
        let outputs = fused.iter().filter(|f| !f.is_input()).count();
        let inputs = fused.len() - outputs;
        if inputs > 1 || outputs > 1 {
            return Err(LabError::InvalidArgument(format!(
                "{fused:?}: at most one fused neighbour on each side of a product"
            )));
        }
        let mut spec = self.spec(format, Epilogue::None);
        let mut next = BROADCAST_BINDINGS.len() as u32;
        let mut sorted = fused.to_vec();
        sorted.sort_by_key(|f| !f.is_input());
        for f in sorted {
            let swap = |spec: &mut PipelineSpec, plain: &str, module: &str| {
                spec.defines.retain(|d| *d != Define::Import(plain.into()));
                spec.defines.push(Define::Import(module.into()));
            };
            match f {
                Fused::NormIn { kp, eps, parts } => {
                    if kp == 0 || parts == 0 || !parts.is_multiple_of(4) {
                        return Err(LabError::InvalidArgument(format!(
                            "{f:?}: a norm over no values, or slots not whole vec4s"
                        )));
                    }
                    spec.defines.extend([
                        Define::U32("PARTS_BINDING", next),
                        Define::U32("PARTS4", parts / 4),
                    ]);
                    swap(&mut spec, PLAIN_IN, "gemv_in_rmsnorm");
                    spec.bindings.push(Binding::Uniform);
                    spec.constants.push(("EPS", eps as f64));
                    next += 1;
                }
                Fused::ResidualOut => {
                    spec.defines.push(Define::U32("OUT_BINDING", next));
                    swap(&mut spec, PLAIN_OUT, "gemv_out_residual_norm");
                    spec.bindings.extend([
                        Binding::ReadOnly,
                        Binding::ReadWrite,
                        Binding::ReadWrite,
                    ]);
                }
                Fused::SiluOut => {
                    if quads != 2 {
                        return Err(LabError::InvalidArgument(format!(
                            "{f:?} pairs gate and up rows in two quads: {} has {quads}",
                            self.describe()
                        )));
                    }
                    swap(&mut spec, PLAIN_OUT, "gemv_out_silu");
                }
            }
        }
        Ok(spec)
    }

    /// Workgroups of a [`Fused::SiluOut`] product over a stacked gate|up matrix of `n`
    /// rows (a workgroup owns 4 features per invocation, gate and up rows both).
    pub fn silu_tiles(&self, n: usize) -> usize {
        (n / 2).div_ceil(4 * self.invocations() as usize)
    }

    /// Slots of sums of squares a [`Fused::ResidualOut`] product of `n` rows writes (one
    /// per invocation); 0 for the other variants.
    pub fn residual_slots(&self, n: usize) -> usize {
        match self {
            WqVariant::Broadcast { lanes, .. } => self.tiles(1, n).1 * *lanes as usize,
            _ => 0,
        }
    }

    /// (tiles along n, tiles in all) for an m x n output.
    pub fn tiles(&self, m: usize, n: usize) -> (usize, usize) {
        match *self {
            WqVariant::Regblock(k) => {
                let (bm, bn) = k.block();
                let tiles_n = n.div_ceil(bn as usize);
                (tiles_n, m.div_ceil(bm as usize) * tiles_n)
            }
            WqVariant::Gemv { rows, .. } => {
                let t = n.div_ceil(rows as usize);
                (t, t)
            }
            WqVariant::Broadcast { lanes, quads } => {
                let t = n.div_ceil((lanes * 4 * quads) as usize);
                (t, t)
            }
            WqVariant::Tiled(t) => {
                let tiles_n = n.div_ceil(t.bn as usize);
                (tiles_n, m.div_ceil(t.bm as usize) * tiles_n)
            }
            WqVariant::Scalar { scalar: k } => {
                let tiles_n = n.div_ceil((k.wg_x * k.tn) as usize);
                (tiles_n, m.div_ceil(k.tm as usize) * tiles_n)
            }
            WqVariant::Sgblock { sgblock: k } => {
                let (bm, bn) = k.block();
                let tiles_n = n.div_ceil(bn as usize);
                (tiles_n, m.div_ceil(bm as usize) * tiles_n)
            }
        }
    }

    /// Invocations per workgroup.
    pub fn invocations(&self) -> u32 {
        match *self {
            WqVariant::Regblock(k) => k.wg_x,
            WqVariant::Gemv { wg, .. } => wg,
            WqVariant::Broadcast { lanes, .. } => lanes,
            WqVariant::Tiled(t) => t.invocations(),
            WqVariant::Scalar { scalar: k } | WqVariant::Sgblock { sgblock: k } => k.wg_x,
        }
    }
}

/// Parameter block of `matmul_wq`.
/// Keep in sync with `WqParams` in shaders/shared/matmul_wq_params.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct WqParams {
    /// Activation rows.
    pub m: u32,
    /// Weight rows (outputs per activation row).
    pub n: u32,
    /// Padded inner dimension (multiple of 32).
    pub kp: u32,
    /// Blocks per weight row.
    pub nblk: u32,
    /// Workgroup tiles along n.
    pub tiles_n: u32,
    /// Workgroup tiles in all.
    pub tiles: u32,
    /// Floats per row of C (n, or wider when C holds several products side by side).
    pub ldc: u32,
    /// First column of C this product writes.
    pub col0: u32,
}

impl WqParams {
    /// The params of an m x n product over rows of `kp` values with `variant`'s tiles,
    /// writing all of a C of n columns.
    pub fn new(variant: &WqVariant, m: usize, n: usize, kp: usize) -> Self {
        let (tiles_n, tiles) = variant.tiles(m, n);
        Self {
            m: m as u32,
            n: n as u32,
            kp: kp as u32,
            nblk: (kp / 32) as u32,
            tiles_n: tiles_n as u32,
            tiles: tiles as u32,
            ldc: n as u32,
            col0: 0,
        }
    }

    /// The same product writing columns `col0..col0 + n` of a C with rows of `ldc`.
    pub fn in_columns(self, ldc: usize, col0: usize) -> Self {
        Self {
            ldc: ldc as u32,
            col0: col0 as u32,
            ..self
        }
    }
}

/// Bindings of `matmul_wq` and `gemv_wq`: params, A, W words, W scales, C.
pub const BINDINGS: [Binding; 5] = [
    Binding::Uniform,
    Binding::ReadOnly,
    Binding::ReadOnly,
    Binding::ReadOnly,
    Binding::ReadWrite,
];

/// Whether a table's kernel name is one of the GEMV kernels' (`gemv`, `gemv-bcast`).
pub fn is_gemv_name(name: &str) -> bool {
    name.starts_with("gemv")
}

/// The broadcast GEMV's input and output modules for y = W x as it is.
const PLAIN_IN: &str = "gemv_in_plain";
const PLAIN_OUT: &str = "gemv_out_plain";

/// A neighbour of a decoder's one-row product fused into `gemv_wq_broadcast`
/// ([`WqVariant::fused_spec`]), so that a decode step needs no dispatch for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fused {
    /// The RMSNorm before the product. The input row is already x * gamma, and `parts`
    /// slots (whole vec4s, bound as a uniform row) hold sums of squares of x whose total
    /// gives the norm: the outputs are scaled by 1 / sqrt(total / kp + eps).
    NormIn {
        /// Values in the row (the mean's divisor).
        kp: u32,
        /// The norm's epsilon.
        eps: f32,
        /// Slots of partial sums (a multiple of 4; unused ones hold 0).
        parts: u32,
    },
    /// The residual add after the product: outputs are added onto C (the residual stream),
    /// and the next norm's inputs written: the new values times its gamma into `xg`, each
    /// invocation's sum of their squares into its slot of `parts`
    /// ([`WqVariant::residual_slots`]). Binds gamma, xg and parts.
    ResidualOut,
    /// A gated FFN's activation after the product: W is gate rows stacked on up rows
    /// (n = 2 f), and C gets f columns of silu(gate) * up. Two quads per invocation (its
    /// features' gate and up rows); launched on [`WqVariant::silu_tiles`] workgroups.
    SiluOut,
}

impl Fused {
    /// Whether it fuses into the product's input side (else its output side).
    pub fn is_input(&self) -> bool {
        matches!(self, Fused::NormIn { .. })
    }
}

/// Bytes of the activation row `gemv_wq_broadcast` reads as a uniform block: 64 KiB,
/// WebGPU's guaranteed `max_uniform_buffer_binding_size` (rows of up to 16384 values).
pub const BROADCAST_A_BYTES: u64 = 65536;

/// Bindings of `gemv_wq_broadcast`: those of [`BINDINGS`] with A as a uniform view, then
/// the weight words again as vec4s.
pub const BROADCAST_BINDINGS: [Binding; 6] = [
    Binding::Uniform,
    Binding::Uniform,
    Binding::ReadOnly,
    Binding::ReadOnly,
    Binding::ReadWrite,
    Binding::ReadOnly,
];

/// Checks that `variant` can take activation rows of `kp` values on this adapter (the
/// uniform view of `gemv_wq_broadcast` holds 16384).
pub fn check_row_width(ctx: &Context, variant: &WqVariant, kp: usize) -> Result<()> {
    match variant.uniform_input_bytes() {
        Some(bytes) => check_uniform_row(ctx, &format!("{variant:?}"), bytes, kp),
        None => Ok(()),
    }
}

/// Checks that a kernel (`what`) binding its activation row as a uniform view of `bytes`
/// can bind it here and that a row of `kp` values fits it. Shared by the broadcast GEMVs.
pub fn check_uniform_row(ctx: &Context, what: &str, bytes: u64, kp: usize) -> Result<()> {
    let limit = ctx.limits().max_uniform_buffer_binding_size;
    if limit < bytes {
        return Err(LabError::OverLimit {
            what: format!("{what}'s uniform activation row"),
            asked: bytes,
            limit_name: "max_uniform_buffer_binding_size",
            limit,
        });
    }
    if kp as u64 * 4 > bytes {
        return Err(LabError::OverLimit {
            what: format!("an activation row of {kp} values in {what}"),
            asked: kp as u64 * 4,
            limit_name: "the broadcast GEMVs' uniform row (BROADCAST_A_BYTES)",
            limit: bytes,
        });
    }
    Ok(())
}

/// Compiles (or fetches) the pipeline of `variant` for a format; returns the host time
/// spent creating it when it was not cached.
pub fn pipeline(
    ctx: &Context,
    variant: &WqVariant,
    format: WeightFormat,
) -> Result<(Arc<wgpu::ComputePipeline>, Option<f64>)> {
    let limits = ctx.limits();
    if let WqVariant::Scalar { .. } = variant {
        return Err(LabError::InvalidArgument(format!(
            "{} is an f32 kernel (matmul_scalarblock), not one for {} weights",
            variant.describe(),
            format.name()
        )));
    }
    if let WqVariant::Sgblock { sgblock: k } = variant {
        if let Some(why) = crate::kernels::matmul::subgroup_block_unsupported(ctx, k.wg_x, k.tm) {
            return Err(LabError::Unsupported(why));
        }
    }
    if variant.needs_subgroups() && !ctx.has(wgpu::Features::SUBGROUP) {
        return Err(LabError::MissingFeature {
            feature: "SUBGROUP",
            adapter: ctx.summary.name.clone(),
        });
    }
    if let WqVariant::Broadcast { quads, .. } = variant {
        if !(1..=2).contains(quads) {
            return Err(LabError::InvalidArgument(format!(
                "{variant:?}: quads must be 1 or 2"
            )));
        }
        check_row_width(ctx, variant, 0)?;
    }
    if let WqVariant::Tiled(t) = variant {
        let wg = limits.max_compute_workgroup_storage_size;
        if t.tm == 0 || t.tn == 0 || !t.bm.is_multiple_of(t.tm) || !t.bn.is_multiple_of(t.tn) {
            return Err(LabError::InvalidArgument(format!(
                "{t:?}: tm and tn must divide bm and bn"
            )));
        }
        if t.workgroup_bytes() > wg {
            return Err(LabError::OverLimit {
                what: format!("{t:?} staged slices"),
                asked: t.workgroup_bytes() as u64,
                limit_name: "max_compute_workgroup_storage_size",
                limit: wg as u64,
            });
        }
    }
    let limit = limits.max_compute_invocations_per_workgroup;
    if variant.invocations() > limit {
        return Err(LabError::OverLimit {
            what: format!("{variant:?} workgroup"),
            asked: variant.invocations() as u64,
            limit_name: "max_compute_invocations_per_workgroup",
            limit: limit as u64,
        });
    }
    gpu_pipeline::build(ctx, &variant.spec(format, Epilogue::None))
}

/// A `matmul_wq` problem with activations and weights on the GPU, ready to run.
pub struct PreparedMatmulWq {
    /// The kernel and its configuration.
    pub variant: WqVariant,
    /// Weight storage format.
    pub format: WeightFormat,
    /// Activation rows.
    pub m: usize,
    /// Weight rows.
    pub n: usize,
    /// Inner dimension as given (before padding).
    pub k: usize,
    /// Bytes of weights (and their scales) on the GPU.
    pub weight_bytes: u64,
    /// Host time to create the pipeline, when this call created it.
    pub pipeline_ms: Option<f64>,
    pipeline: Arc<wgpu::ComputePipeline>,
    bind_group: wgpu::BindGroup,
    c: wgpu::Buffer,
    grid: (u32, u32),
}

impl PreparedMatmulWq {
    /// Uploads A (m x k, f32) and the weights (n x k in their format) for `matmul_wq`.
    pub fn new(
        ctx: &Context,
        kernel: WqKernel,
        a: &[f32],
        m: usize,
        k: usize,
        weights: &Weights,
    ) -> Result<Self> {
        Self::with_variant(ctx, WqVariant::Regblock(kernel), a, m, k, weights)
    }

    /// As [`PreparedMatmulWq::new`], with either kernel (`Gemv` needs m = 1).
    pub fn with_variant(
        ctx: &Context,
        variant: WqVariant,
        a: &[f32],
        m: usize,
        k: usize,
        weights: &Weights,
    ) -> Result<Self> {
        if variant.is_gemv() && m != 1 {
            return Err(LabError::Shape(format!(
                "gemv takes one activation row, got m = {m}"
            )));
        }
        if m == 0 || k == 0 || a.len() != m * k {
            return Err(LabError::Shape(format!(
                "activations: {} values for m={m} x k={k}",
                a.len()
            )));
        }
        if k > weights.k || weights.k != k.div_ceil(32) * 32 {
            return Err(LabError::Shape(format!(
                "activations have k = {k} but the weights' rows hold {} values",
                weights.k
            )));
        }
        let (pipeline, pipeline_ms) = pipeline(ctx, &variant, weights.format)?;
        let kp = weights.k;
        check_row_width(ctx, &variant, kp)?;
        let a_bytes = variant.uniform_input_bytes();
        let mut ap = vec![0f32; (m * kp).max(a_bytes.unwrap_or(0) as usize / 4)];
        for r in 0..m {
            ap[r * kp..r * kp + k].copy_from_slice(&a[r * k..(r + 1) * k]);
        }
        let (w_words, s_words) = weights.gpu_words();
        let a_buf = buffers::upload(ctx, "matmul_wq.a", &ap)?;
        let w_buf = buffers::upload(ctx, "matmul_wq.w", &w_words)?;
        let s_buf = buffers::upload(ctx, "matmul_wq.s", &s_words)?;
        let c = buffers::storage(ctx, "matmul_wq.c", (m * weights.n * 4) as u64)?;
        let params = WqParams::new(&variant, m, weights.n, kp);
        let grid = dispatch::grid(
            params.tiles as u64,
            ctx.limits().max_compute_workgroups_per_dimension,
        )?;
        let u = buffers::uniform(ctx, "matmul_wq.params", &params)?;
        let mut parts = vec![
            (&u, None),
            (&a_buf, a_bytes),
            (&w_buf, None),
            (&s_buf, None),
        ];
        parts.push((&c, None));
        if a_bytes.is_some() {
            parts.push((&w_buf, None));
        }
        let bind_group = gpu_pipeline::bind_group_parts(ctx, &pipeline, "matmul_wq", &parts)?;
        let weight_bytes = if weights.format.is_block_quantized() {
            weights.bytes.len() as u64
        } else {
            (w_words.len() * 4) as u64
        };
        Ok(Self {
            variant,
            format: weights.format,
            m,
            n: weights.n,
            k,
            weight_bytes,
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
        timing::time_pass(ctx, timer, "matmul_wq", |pass| {
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

impl crate::gpu::measure::GpuOp for PreparedMatmulWq {
    fn poison(&self, ctx: &Context) {
        PreparedMatmulWq::poison(self, ctx)
    }
    fn run(&self, ctx: &Context, timer: Option<&GpuTimer>) -> Result<(f64, TimingSource)> {
        PreparedMatmulWq::run(self, ctx, timer)
    }
    fn read(&self, ctx: &Context) -> Result<Vec<f32>> {
        PreparedMatmulWq::read(self, ctx)
    }
}
