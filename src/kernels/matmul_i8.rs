//! W8A8 matmul (`matmul_i8`): activations quantized on the GPU, exact i32 accumulation with
//! `dot4I8Packed` (or a shift-and-multiply fallback), f32 output. Two schemes
//! (`formats::int8::Int8Scheme`): per-row scales (`quantize_rows_i8`, weights per output
//! channel) and Hadamard-rotated 32-value blocks with a scale each (`quantize_rot32_i8`,
//! `matmul_i8` with `BLOCKS`). One activation row (decode) may instead go through
//! `gemv_i8_broadcast`, the int8 twin of `gemv_wq_broadcast` for CPU adapters.

use std::sync::Arc;

use crate::error::{LabError, Result};
use crate::formats::int8::{Int8Rows, Int8Scheme};
use crate::gpu::pipeline::{self as gpu_pipeline, Binding, PipelineSpec};
use crate::gpu::timing::{self, GpuTimer, TimingSource};
use crate::gpu::{buffers, dispatch, Context};
use crate::kernels::epilogue::Epilogue;
use crate::kernels::matmul_wq::{TiledKernel, WqKernel, WqVariant, BROADCAST_A_BYTES};
use crate::shaders::Define;

/// How the four-way int8 dot product is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dot4 {
    /// WGSL `dot4I8Packed` (packed_4x8_integer_dot_product).
    Packed,
    /// Unpack by shifts and `dot()` on vec4<i32>: works everywhere, same result.
    Manual,
}

impl Dot4 {
    /// The packed instruction when the adapter offers it, else the fallback.
    pub fn best(ctx: &Context) -> Self {
        if ctx.summary.packed_4x8_dot {
            Dot4::Packed
        } else {
            Dot4::Manual
        }
    }

    /// The shared module that defines `dot4()`.
    pub fn module(self) -> &'static str {
        match self {
            Dot4::Packed => "int8_dot_packed",
            Dot4::Manual => "int8_dot_manual",
        }
    }
}

/// Parameters of both int8 shaders.
/// Keep in sync with `I8Params` in shaders/shared/int8_params.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct I8Params {
    /// Activation rows.
    pub m: u32,
    /// Weight rows.
    pub n: u32,
    /// Values per row as given.
    pub k: u32,
    /// Values per row as stored (multiple of 32).
    pub kp: u32,
    /// Workgroup tiles along n.
    pub tiles_n: u32,
    /// Workgroup tiles in all.
    pub tiles: u32,
    /// Padding to 32 bytes.
    pub _pad: [u32; 2],
}

const QUANTIZE_BINDINGS: [Binding; 4] = [
    Binding::Uniform,
    Binding::ReadOnly,
    Binding::ReadWrite,
    Binding::ReadWrite,
];
const MATMUL_BINDINGS: [Binding; 6] = [
    Binding::Uniform,
    Binding::ReadOnly,
    Binding::ReadOnly,
    Binding::ReadOnly,
    Binding::ReadOnly,
    Binding::ReadWrite,
];
/// Bindings of `gemv_i8_broadcast`: those of `matmul_i8` with the activations and their
/// scales as uniform views (BROADCAST_A_BYTES each, from the start of their buffers).
const BROADCAST_BINDINGS: [Binding; 6] = [
    Binding::Uniform,
    Binding::Uniform,
    Binding::Uniform,
    Binding::ReadOnly,
    Binding::ReadOnly,
    Binding::ReadWrite,
];

/// The pipeline of `gemv_i8_broadcast` (one activation row; `lanes` invocations per
/// workgroup, each owning `4 x quads` weight rows): bindings as [`matmul_spec`]'s, the
/// activations and scales bound as [`BROADCAST_A_BYTES`] uniform views.
pub fn broadcast_spec(
    lanes: u32,
    quads: u32,
    dot4: Dot4,
    scheme: Int8Scheme,
) -> PipelineSpec<'static> {
    let vec4s = (BROADCAST_A_BYTES / 16) as u32;
    let mut defines = vec![
        Define::U32("QUADS", quads),
        Define::U32("AQ_VEC4S", vec4s),
        Define::U32("SA_VEC4S", vec4s),
        Define::Bool("BLOCKS", scheme == Int8Scheme::Rot32),
        Define::Import(dot4.module().into()),
    ];
    defines.extend(Epilogue::None.defines(BROADCAST_BINDINGS.len() as u32));
    PipelineSpec {
        stem: "gemv_i8_broadcast",
        defines,
        entry: "main",
        constants: vec![("WG", lanes as f64)],
        bindings: BROADCAST_BINDINGS.to_vec(),
    }
}

/// Checks that `gemv_i8_broadcast` can take rows of `kp` int8 values on this adapter (its
/// uniform view holds BROADCAST_A_BYTES of them), and `quads` is 1 or 2.
pub fn check_broadcast(ctx: &Context, quads: u32, kp: usize) -> Result<()> {
    if !(1..=2).contains(&quads) {
        return Err(LabError::InvalidArgument(format!(
            "gemv-bcast: quads must be 1 or 2, not {quads}"
        )));
    }
    let limit = ctx.limits().max_uniform_buffer_binding_size;
    if limit < BROADCAST_A_BYTES {
        return Err(LabError::OverLimit {
            what: "gemv_i8_broadcast's uniform activation row".into(),
            asked: BROADCAST_A_BYTES,
            limit_name: "max_uniform_buffer_binding_size",
            limit,
        });
    }
    if kp as u64 > BROADCAST_A_BYTES {
        return Err(LabError::OverLimit {
            what: format!("an int8 activation row of {kp} values"),
            asked: kp as u64,
            limit_name: "gemv_i8_broadcast's uniform row (BROADCAST_A_BYTES)",
            limit: BROADCAST_A_BYTES,
        });
    }
    Ok(())
}

/// Workgroup size of `quantize_rows_i8`.
const QUANTIZE_WG: u32 = 64;

/// The activation quantizer of `scheme` (bindings: params, x, xq, xs): `quantize_rows_i8`
/// (one workgroup per row) or `quantize_rot32_i8` (one invocation per block).
pub fn quantize_spec(scheme: Int8Scheme) -> PipelineSpec<'static> {
    PipelineSpec {
        stem: match scheme {
            Int8Scheme::PerRow => "quantize_rows_i8",
            Int8Scheme::Rot32 => "quantize_rot32_i8",
        },
        defines: vec![],
        entry: "main",
        constants: vec![("WG", QUANTIZE_WG as f64)],
        bindings: QUANTIZE_BINDINGS.to_vec(),
    }
}

/// Workgroups of the activation quantizer of `scheme` for `m` rows of `kp` stored values.
pub fn quantize_workgroups(scheme: Int8Scheme, m: usize, kp: usize) -> u64 {
    match scheme {
        Int8Scheme::PerRow => m as u64,
        Int8Scheme::Rot32 => (m * kp / 32).div_ceil(QUANTIZE_WG as usize) as u64,
    }
}

/// The pipeline of `matmul_i8` (bindings: params, xq, xs, wq, sw, c, then the epilogue's
/// bias if any).
pub fn matmul_spec(
    kernel: WqKernel,
    dot4: Dot4,
    scheme: Int8Scheme,
    epilogue: Epilogue,
) -> PipelineSpec<'static> {
    let mut defines = vec![
        Define::U32("TM", kernel.tm),
        Define::U32("TN", kernel.tn),
        Define::Bool("BLOCKS", scheme == Int8Scheme::Rot32),
        Define::Import(dot4.module().into()),
    ];
    defines.extend(epilogue.defines(MATMUL_BINDINGS.len() as u32));
    PipelineSpec {
        stem: "matmul_i8",
        defines,
        entry: "main",
        constants: vec![("WG_X", kernel.wg_x as f64)],
        bindings: epilogue.bindings(&MATMUL_BINDINGS),
    }
}

/// The pipeline of `matmul_i8_tiled` (same bindings as [`matmul_spec`]): `tile.kv` counts
/// vec4<u32> of 16 int8 staged per step and must be even (whole 32-value blocks).
pub fn matmul_tiled_spec(
    tile: TiledKernel,
    dot4: Dot4,
    scheme: Int8Scheme,
    epilogue: Epilogue,
) -> PipelineSpec<'static> {
    let mut defines = vec![
        Define::U32("BM", tile.bm),
        Define::U32("BN", tile.bn),
        Define::U32("TM", tile.tm),
        Define::U32("TN", tile.tn),
        Define::U32("KV", tile.kv),
        Define::Bool("BLOCKS", scheme == Int8Scheme::Rot32),
        Define::Import(dot4.module().into()),
    ];
    defines.extend(epilogue.defines(MATMUL_BINDINGS.len() as u32));
    PipelineSpec {
        stem: "matmul_i8_tiled",
        defines,
        entry: "main",
        constants: vec![],
        bindings: epilogue.bindings(&MATMUL_BINDINGS),
    }
}

/// A W8A8 problem on the GPU: f32 activations in, int8 weights resident.
pub struct PreparedMatmulI8 {
    /// The kernel: a register block or a workgroup tile.
    pub variant: WqVariant,
    /// Dot-product flavour.
    pub dot4: Dot4,
    /// Scale groups of weights and activations.
    pub scheme: Int8Scheme,
    /// Activation rows.
    pub m: usize,
    /// Weight rows.
    pub n: usize,
    /// Inner dimension.
    pub k: usize,
    /// Weight bytes on the GPU (int8 values + scales).
    pub weight_bytes: u64,
    /// Host time creating the pipelines (None when both were cached).
    pub pipeline_ms: Option<f64>,
    quantize: Arc<wgpu::ComputePipeline>,
    matmul: Arc<wgpu::ComputePipeline>,
    quantize_group: wgpu::BindGroup,
    matmul_group: wgpu::BindGroup,
    xq: wgpu::Buffer,
    xs: wgpu::Buffer,
    c: wgpu::Buffer,
    quantize_grid: (u32, u32),
    matmul_grid: (u32, u32),
}

impl PreparedMatmulI8 {
    /// Uploads A (m x k, f32) and int8 weights (n x k).
    pub fn new(
        ctx: &Context,
        kernel: WqKernel,
        dot4: Dot4,
        a: &[f32],
        m: usize,
        weights: &Int8Rows,
    ) -> Result<Self> {
        Self::with_variant(ctx, WqVariant::Regblock(kernel), dot4, a, m, weights)
    }

    /// As [`PreparedMatmulI8::new`] with a register block or a workgroup tile
    /// (`matmul_i8_tiled`); a GEMV variant or a tile the adapter cannot hold is refused.
    pub fn with_variant(
        ctx: &Context,
        variant: WqVariant,
        dot4: Dot4,
        a: &[f32],
        m: usize,
        weights: &Int8Rows,
    ) -> Result<Self> {
        let (n, k, kp) = (weights.rows, weights.k, weights.kp);
        if m == 0 || a.len() != m * k {
            return Err(LabError::Shape(format!(
                "activations: {} values for m={m} x k={k}",
                a.len()
            )));
        }
        let scheme = weights.scheme;
        let (quantize, q_ms) = gpu_pipeline::build(ctx, &quantize_spec(scheme))?;
        let (spec, (bm, bn)) = match variant {
            WqVariant::Regblock(k) => (matmul_spec(k, dot4, scheme, Epilogue::None), k.block()),
            WqVariant::Tiled(t) => {
                let l = ctx.limits();
                if t.kv % 2 != 0 || t.tm == 0 || t.tn == 0 || t.bm % t.tm != 0 || t.bn % t.tn != 0 {
                    return Err(LabError::InvalidArgument(format!(
                        "{t:?}: W8A8 tiles stage whole 32-value blocks (even kv), and tm, tn \
                         must divide bm, bn"
                    )));
                }
                if !t.fits(&l) {
                    return Err(LabError::OverLimit {
                        what: format!("{t:?} W8A8 tile"),
                        asked: t.workgroup_bytes() as u64,
                        limit_name: "max_compute_workgroup_storage_size",
                        limit: l.max_compute_workgroup_storage_size as u64,
                    });
                }
                (
                    matmul_tiled_spec(t, dot4, scheme, Epilogue::None),
                    (t.bm, t.bn),
                )
            }
            WqVariant::Broadcast { lanes, quads } => {
                if m != 1 {
                    return Err(LabError::Shape(format!(
                        "gemv-bcast multiplies one activation row, not {m}"
                    )));
                }
                check_broadcast(ctx, quads, kp)?;
                (
                    broadcast_spec(lanes, quads, dot4, scheme),
                    (1, 4 * quads * lanes),
                )
            }
            WqVariant::Scalar { .. } | WqVariant::Sgblock { .. } => {
                return Err(LabError::InvalidArgument(format!(
                    "{} has no W8A8 form (it runs f32 or weight formats)",
                    variant.describe()
                )))
            }
            WqVariant::Gemv { .. } => {
                return Err(LabError::InvalidArgument(
                    "W8A8 has no GEMV tree kernel (gemv): use gemv-bcast, or a register block \
                     for m = 1"
                        .into(),
                ))
            }
        };
        let (matmul, m_ms) = gpu_pipeline::build(ctx, &spec)?;
        let tiles_n = n.div_ceil(bn as usize);
        let tiles = m.div_ceil(bm as usize) * tiles_n;
        let max = ctx.limits().max_compute_workgroups_per_dimension;
        let params = I8Params {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            kp: kp as u32,
            tiles_n: tiles_n as u32,
            tiles: tiles as u32,
            _pad: [0; 2],
        };
        let u = buffers::uniform(ctx, "matmul_i8.params", &params)?;
        let x = buffers::upload(ctx, "matmul_i8.x", a)?;
        // A broadcast kernel binds BROADCAST_A_BYTES uniform views of both.
        let view = matches!(variant, WqVariant::Broadcast { .. }).then_some(BROADCAST_A_BYTES);
        let at_least = |bytes: usize| (bytes as u64).max(view.unwrap_or(0));
        let xq = buffers::storage(ctx, "matmul_i8.xq", at_least(m * kp))?;
        let xs = buffers::storage(
            ctx,
            "matmul_i8.xs",
            at_least(m * weights.scales_per_row() * 4),
        )?;
        let wq = buffers::upload(ctx, "matmul_i8.wq", &weights.words)?;
        let sw = buffers::upload(ctx, "matmul_i8.sw", &weights.scales)?;
        let c = buffers::storage(ctx, "matmul_i8.c", (m * n * 4) as u64)?;
        let quantize_group =
            gpu_pipeline::bind_group(ctx, &quantize, "quantize_rows_i8", &[&u, &x, &xq, &xs])?;
        let matmul_group = gpu_pipeline::bind_group_parts(
            ctx,
            &matmul,
            "matmul_i8",
            &[
                (&u, None),
                (&xq, view),
                (&xs, view),
                (&wq, None),
                (&sw, None),
                (&c, None),
            ],
        )?;
        Ok(Self {
            variant,
            dot4,
            scheme,
            m,
            n,
            k,
            weight_bytes: weights.bytes(),
            pipeline_ms: match (q_ms, m_ms) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
            },
            quantize,
            matmul,
            quantize_group,
            matmul_group,
            xq,
            xs,
            c,
            quantize_grid: dispatch::grid(quantize_workgroups(scheme, m, kp), max)?,
            matmul_grid: dispatch::grid(tiles as u64, max)?,
        })
    }

    /// The activations as the GPU quantized them in the last run: the operands the kernel
    /// multiplied, which its reference must use (see `formats::int8` on why they can
    /// differ from the CPU's by one step).
    pub fn read_activations(&self, ctx: &Context) -> Result<Int8Rows> {
        let kp = self.k.div_ceil(32) * 32;
        let per_row = match self.scheme {
            Int8Scheme::PerRow => 1,
            Int8Scheme::Rot32 => kp / 32,
        };
        Ok(Int8Rows {
            scheme: self.scheme,
            rows: self.m,
            k: self.k,
            kp,
            words: buffers::read(ctx, &self.xq, self.m * kp / 4)?,
            scales: buffers::read(ctx, &self.xs, self.m * per_row)?,
        })
    }
}

impl crate::gpu::measure::GpuOp for PreparedMatmulI8 {
    fn poison(&self, ctx: &Context) {
        buffers::poison(ctx, &self.c);
        buffers::poison(ctx, &self.xs);
    }

    /// Both dispatches in one pass: activation quantization is part of the W8A8 cost.
    fn run(&self, ctx: &Context, timer: Option<&GpuTimer>) -> Result<(f64, TimingSource)> {
        timing::time_pass(ctx, timer, "matmul_i8", |pass| {
            pass.set_pipeline(&self.quantize);
            pass.set_bind_group(0, &self.quantize_group, &[]);
            pass.dispatch_workgroups(self.quantize_grid.0, self.quantize_grid.1, 1);
            pass.set_pipeline(&self.matmul);
            pass.set_bind_group(0, &self.matmul_group, &[]);
            pass.dispatch_workgroups(self.matmul_grid.0, self.matmul_grid.1, 1);
        })
    }

    fn read(&self, ctx: &Context) -> Result<Vec<f32>> {
        buffers::read(ctx, &self.c, self.m * self.n)
    }
}
