//! The llama decoder on the GPU. Weights resident at the chosen precision (fused Q|K|V and
//! gate|up matrices), an f32 KV cache per layer resident too. A forward over T tokens is
//! one submission: per layer the residual add + RMSNorm, the QKV linear, RoPE and the cache
//! store, causal attention over the cache, the output linear, add + RMSNorm, gate|up,
//! SiLU * up, down; then the final norm, the output projection and, for greedy decoding,
//! the argmax. Prefill (T > 1) runs the linears through `matmul_wq`'s register-blocked
//! GEMM (on CPU adapters with subgroups its subgroup block, `matmul_wq`'s sgblock variant), decode steps
//! (T = 1) through a GEMV; where that GEMV is `gemv_wq_broadcast`, a
//! decode step fuses each RMSNorm into the products after it, each residual add into the
//! product before it and SiLU * up into gate|up (`GpuLlama::fuses_norms`, `fuses_silu`);
//! every decode step does RoPE and the cache store inside attention. The token embedding is gathered on the
//! host from the same encoded weights (a row per token: no read-back is needed for it).
//! Same steps, same order as `reference::llama`.
//!
//! A pruned decoder ([`GpuLlama::new_sparse`]) holds its seven linears per layer in the
//! N:M-compressed layout and runs them through the sparse kernels (`matmul_sparse` for
//! prefill, a sparse GEMV for decode steps), read directly; its decode steps fuse nothing.

use std::sync::Arc;
use std::time::Instant;

use crate::error::{LabError, Result};
use crate::formats::int8::{self, Int8Scheme};
use crate::formats::llama::{KvPrecision, LlamaConfig, LlamaWeights};
use crate::formats::sparse::{NmPattern, SparseWeights};
use crate::formats::weights::{decode_bytes, WeightFormat, Weights};
use crate::gpu::pipeline::{self as gpu_pipeline, Binding, PipelineSpec};
use crate::gpu::timing::{self, GpuTimer, TimingSource};
use crate::gpu::{buffers, dispatch, Context};
use crate::kernels::epilogue::Epilogue;
use crate::kernels::matmul_i8::{self, Dot4, I8Params};
use crate::kernels::matmul_wq::{self, Fused, WqKernel, WqParams, WqVariant, BROADCAST_A_BYTES};
use crate::kernels::sparse::{self, SparseKernel, SparseParams};
use crate::model::llama::profile::{Profile, Stage};
use crate::shaders::Define;

/// Parameters of the llama_* shaders.
/// Keep in sync with `LlamaParams` in shaders/shared/llama_params.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LlamaParams {
    /// Token rows in the pass.
    pub rows: u32,
    /// Position of the first row.
    pub pos0: u32,
    /// Hidden width.
    pub dim: u32,
    /// kv_heads * head_dim.
    pub kv_dim: u32,
    /// Query heads.
    pub heads: u32,
    /// Key/value heads.
    pub kv_heads: u32,
    /// Dimensions per head.
    pub head_dim: u32,
    /// Dimensions RoPE rotates.
    pub rope_dims: u32,
    /// FFN width.
    pub ffn: u32,
    /// First row the norm writes out.
    pub out_row0: u32,
    /// RMSNorm epsilon.
    pub eps: f32,
    /// Padding to 48 bytes.
    pub _pad: u32,
}

/// The kernels of the linear layers: a register-blocked GEMM for prefill, and for decode
/// (one row) either the GEMV kernel or a one-row register block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LlamaKernels {
    /// Prefill (rows > 1) of the weight formats: a register block, or on adapters that can
    /// run it the subgroup block (`matmul_wq`'s sgblock variant).
    pub prefill: WqVariant,
    /// The register block of W8A8's prefill (and of `prefill` where it is one).
    pub gemm: WqKernel,
    /// Decode steps (one row).
    pub decode: WqVariant,
    /// How the KV cache stores keys and values.
    pub kv: KvPrecision,
    /// W8A8: every matrix quantized to int8 in this scheme on upload, and each product's
    /// activations quantized alike on the GPU before it (`matmul_i8`, register blocks:
    /// `gemm` for prefill, one row of it for decode). None: the weights' own formats.
    pub w8a8: Option<Int8Scheme>,
}

impl LlamaKernels {
    /// The default for an adapter. On a CPU adapter (lavapipe) `gemv_wq`'s workgroup tree
    /// reduction is slow: a one-row register block decoded SmolLM2 at 6.4 tokens/s against
    /// 1.6 with `gemv_wq` (measured, lavapipe, 2 cores; 64x1x8 beat 32x1x4, 64x1x4 and
    /// 128x1x4), and `gemv_wq_broadcast` (x from a uniform buffer, rows written out) beat
    /// that register block by 2x per GEMV. GPUs get `gemv_wq`, built for them. Prefill on a
    /// CPU adapter with subgroups of 8 or more is the subgroup block: SmolLM2 q4_0 prefill
    /// 37 -> 57 tokens/s on Mesa 22.3.6 and 23 -> 47 on Mesa 25.0.7 (64-token prompt).
    pub fn default_for(ctx: &Context) -> Self {
        let broadcast = WqVariant::Broadcast {
            lanes: 16,
            quads: 2,
        };
        let uniform_ok = ctx.limits().max_uniform_buffer_binding_size >= BROADCAST_A_BYTES;
        let gemm = WqKernel {
            wg_x: 16,
            tm: 4,
            tn: 4,
        };
        LlamaKernels {
            prefill: matmul_wq::cpu_sgblock_or(ctx, gemm),
            gemm,
            decode: if ctx.summary.device_type == "cpu" && uniform_ok {
                broadcast
            } else if ctx.summary.device_type == "cpu" {
                WqVariant::Regblock(CPU_DECODE_REGBLOCK)
            } else {
                WqVariant::GEMV
            },
            kv: KvPrecision::F32,
            w8a8: None,
        }
    }

    /// The same kernels running the linear layers as W8A8 in `scheme` (or not: None).
    pub fn with_w8a8(self, w8a8: Option<Int8Scheme>) -> Self {
        Self { w8a8, ..self }
    }

    /// The decode steps' kernel in a few characters (`gemv-bcast 16x8`, `i8 wq 16x1x4`).
    pub fn decode_name(&self) -> String {
        match self.w8a8 {
            Some(_) => format!("i8 {}", self.i8_variant(1).describe()),
            None => self.decode.describe(),
        }
    }

    /// The W8A8 kernel for `rows` activation rows: the register block for prefill; for
    /// decode `gemv_i8_broadcast` where the decode kernel is `gemv-bcast` (CPU adapters;
    /// measured below), else a one-row register block.
    fn i8_variant(&self, rows: usize) -> WqVariant {
        match (rows, self.decode) {
            (1, WqVariant::Broadcast { .. }) => self.decode,
            (1, _) => WqVariant::Regblock(WqKernel::default_for(1)),
            _ => WqVariant::Regblock(self.gemm),
        }
    }

    /// The same kernels decoding with `decode` (e.g. the tune cache's GEMV).
    pub fn with_decode(self, decode: WqVariant) -> Self {
        Self { decode, ..self }
    }

    /// The same kernels with the KV cache at `kv`.
    pub fn with_kv(self, kv: KvPrecision) -> Self {
        Self { kv, ..self }
    }

    fn variant(&self, rows: usize) -> WqVariant {
        if rows == 1 {
            self.decode
        } else {
            self.prefill
        }
    }
}

/// The decode kernel of CPU adapters that cannot bind `gemv_wq_broadcast`'s uniform row
/// (or models with rows wider than it holds).
const CPU_DECODE_REGBLOCK: WqKernel = WqKernel {
    wg_x: 64,
    tm: 1,
    tn: 8,
};

/// Workgroup size of the row-wise kernels.
const ROW_WG: u32 = 64;

/// What a forward returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Logits of every row (rows x vocab): validation, perplexity.
    AllLogits,
    /// Logits of the last row (vocab): sampling on the host.
    LastLogits,
    /// The argmax of the last row's logits, computed on the GPU: greedy decoding.
    Argmax,
}

/// A pruned decoder's N:M-sparse linears and the kernels that run them.
#[derive(Debug, Clone)]
pub struct SparseLinears {
    /// Per layer, Q, K, V, O, gate, up and down in this order
    /// (`model::llama::prune::PRUNED_ROLES`).
    pub layers: Vec<Vec<SparseWeights>>,
    /// The kernel of decode steps (one row).
    pub decode: SparseKernel,
    /// The kernel of prefill (more rows).
    pub prefill: SparseKernel,
}

/// A linear layer's grid for one pass, and its activation quantizer's (W8A8).
struct LinGrid {
    grid: (u32, u32),
    quantize: Option<(u32, u32)>,
}

/// One dispatch of a forward: what it computes, and the weight bytes it reads.
struct Planned<'a> {
    stage: Stage,
    pipe: &'a wgpu::ComputePipeline,
    group: &'a wgpu::BindGroup,
    grid: (u32, u32),
    bytes: u64,
}

impl<'a> Planned<'a> {
    fn new(
        stage: Stage,
        pipe: &'a wgpu::ComputePipeline,
        group: &'a wgpu::BindGroup,
        grid: (u32, u32),
        bytes: u64,
    ) -> Self {
        Planned {
            stage,
            pipe,
            group,
            grid,
            bytes,
        }
    }

    /// Records the dispatch.
    fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(self.pipe);
        pass.set_bind_group(0, self.group, &[]);
        pass.dispatch_workgroups(self.grid.0, self.grid.1, 1);
    }
}

/// Adds a linear layer's dispatches to `plan`: its activation quantizer's first (W8A8),
/// then the product.
#[allow(clippy::too_many_arguments)]
fn push_linear<'a>(
    plan: &mut Vec<Planned<'a>>,
    quantize: Option<&'a wgpu::ComputePipeline>,
    stage: Stage,
    bytes: u64,
    p: &'a wgpu::ComputePipeline,
    g: &'a LinGroups,
    step: Step,
    grid: &LinGrid,
) {
    if let (Some(qp), Some(qg), Some(qgrid)) = (quantize, &g.quantize, grid.quantize) {
        plan.push(Planned::new(Stage::Quantize, qp, qg, qgrid, 0));
    }
    plan.push(Planned::new(stage, p, g.get(step), grid.grid, bytes));
}

/// A forward's result and its GPU time.
#[derive(Debug, Clone)]
pub struct Output {
    /// Logits (AllLogits, LastLogits), empty for Argmax.
    pub logits: Vec<f32>,
    /// The greedy token (Argmax only).
    pub token: Option<u32>,
    /// Time of the pass, ms.
    pub ms: f64,
    /// How it was timed.
    pub timing: TimingSource,
}

/// A linear layer resident on the GPU: W (n x k) in its format, and its params uniform;
/// it writes columns `col0..col0 + n` of an output with rows of `ldc`.
struct Linear {
    n: usize,
    k: usize,
    ldc: usize,
    col0: usize,
    format: WeightFormat,
    /// W8A8: `w` holds int8 (4 per word) and `s` f32 scales in this scheme; `format` is
    /// the f32 they were quantized from.
    w8a8: Option<Int8Scheme>,
    /// N:M-sparse: `w` and `s` hold the kept values in `format`, and these their masks.
    sparse: Option<SparseLinear>,
    w: wgpu::Buffer,
    s: wgpu::Buffer,
    params: wgpu::Buffer,
    bytes: u64,
}

/// What a sparse linear holds besides its kept values: the pattern, the masks and the
/// layout's sizes (the parameter block of any number of rows).
struct SparseLinear {
    pattern: NmPattern,
    masks: wgpu::Buffer,
    /// The matrix without its values, for [`SparseParams::new`].
    shape: SparseWeights,
}

/// Uploads sparse matrices that read the same input (Q|K|V, gate|up; or one) stacked into
/// one linear writing whole output rows.
fn upload_sparse(ctx: &Context, parts: &[&SparseWeights]) -> Result<Linear> {
    let sw = SparseWeights::stack(parts)?;
    let (words, scales) = sw.kept.gpu_words();
    // Float formats have no scales; the binding still needs a buffer.
    let scales = if scales.is_empty() { vec![0] } else { scales };
    let bytes = sw.bytes() as u64;
    let shape = sw.shape();
    Ok(Linear {
        n: sw.n,
        k: sw.k,
        ldc: sw.n,
        col0: 0,
        format: sw.kept.format,
        w8a8: None,
        w: buffers::upload(ctx, "llama.sparse.w", &words)?,
        s: buffers::upload(ctx, "llama.sparse.s", &scales)?,
        params: buffers::uniform(
            ctx,
            "llama.sparse.params",
            &<SparseParams as bytemuck::Zeroable>::zeroed(),
        )?,
        bytes,
        sparse: Some(SparseLinear {
            pattern: sw.pattern,
            masks: buffers::upload(ctx, "llama.sparse.masks", &sw.masks)?,
            shape,
        }),
    })
}

/// Matrices that read the same input and write side by side into one output (Q|K|V,
/// gate|up): neighbours of one format are stacked into one matrix (one dispatch); a change
/// of format (llama.cpp's Q4_K_M keeps V at a higher precision than Q and K) starts another.
fn fuse(ctx: &Context, parts: &[&Weights], w8a8: Option<Int8Scheme>) -> Result<Vec<Linear>> {
    if parts.iter().any(|p| p.k != parts[0].k) {
        return Err(LabError::Shape("fused matrices differ in width".into()));
    }
    let ldc = parts.iter().map(|p| p.n).sum();
    let mut out: Vec<Linear> = Vec::new();
    let mut col0 = 0;
    for run in parts.chunk_by(|a, b| a.format == b.format) {
        let stacked = Weights {
            format: run[0].format,
            n: run.iter().map(|p| p.n).sum(),
            k: run[0].k,
            bytes: run.iter().flat_map(|p| p.bytes.iter().copied()).collect(),
        };
        out.push(upload_linear(ctx, &stacked, ldc, col0, w8a8)?);
        col0 += stacked.n;
    }
    Ok(out)
}

fn upload_linear(
    ctx: &Context,
    w: &Weights,
    ldc: usize,
    col0: usize,
    w8a8: Option<Int8Scheme>,
) -> Result<Linear> {
    let (words, scales) = match w8a8 {
        Some(scheme) => {
            if col0 != 0 || ldc != w.n {
                // matmul_i8 writes whole rows of C: a W8A8 model has one format, so its
                // fused matrices are always stacked into one.
                return Err(LabError::Shape("W8A8 writes whole output rows only".into()));
            }
            let q = int8::quantize_rows_with(&w.dequantize(), w.n, w.k, scheme)?;
            let scales = q.scales.iter().map(|s| s.to_bits()).collect();
            (q.words, scales)
        }
        None => w.gpu_words(),
    };
    Ok(Linear {
        w8a8,
        sparse: None,
        n: w.n,
        k: w.k,
        ldc,
        col0,
        format: w.format,
        bytes: (words.len() + scales.len()) as u64 * 4,
        w: buffers::upload(ctx, "llama.w", &words)?,
        s: buffers::upload(ctx, "llama.s", &scales)?,
        params: buffers::uniform(
            ctx,
            "llama.linear.params",
            &<WqParams as bytemuck::Zeroable>::zeroed(),
        )?,
    })
}

struct Layer {
    attn_norm: wgpu::Buffer,
    qkv: Vec<Linear>,
    o: Linear,
    ffn_norm: wgpu::Buffer,
    gu: Vec<Linear>,
    down: Linear,
    k_cache: wgpu::Buffer,
    v_cache: wgpu::Buffer,
}

/// Activation buffers for up to `rows` rows, and every bind group of a forward.
struct Acts {
    rows: usize,
    params: wgpu::Buffer,
    final_params: wgpu::Buffer,
    x: wgpu::Buffer,
    /// Fused decode steps: the next norm's input (x * gamma) and its partial sums of
    /// squares (the host writes the first block's, the residual adds the others).
    xg: wgpu::Buffer,
    norm_parts: wgpu::Buffer,
    logits: wgpu::Buffer,
    best: wgpu::Buffer,
    layers: Vec<LayerGroups>,
    final_norm: wgpu::BindGroup,
    output: LinGroups,
    argmax: wgpu::BindGroup,
    /// h, qkv, att, tmp, gu, a, hl and argmax's params: referenced through bind groups.
    _internal: Vec<wgpu::Buffer>,
}

struct LayerGroups {
    norm1: wgpu::BindGroup,
    qkv: Vec<LinGroups>,
    rope: wgpu::BindGroup,
    attention: wgpu::BindGroup,
    attention_rope: wgpu::BindGroup,
    o: LinGroups,
    norm2: wgpu::BindGroup,
    gu: Vec<LinGroups>,
    silu: wgpu::BindGroup,
    down: LinGroups,
}

/// A linear layer's bind groups for prefill and for decode steps (whose kernel may bind
/// the input differently: `gemv_wq_broadcast` reads it as a uniform view), and for fused
/// decode steps (reading or writing the residual stream).
struct LinGroups {
    prefill: wgpu::BindGroup,
    decode: wgpu::BindGroup,
    fused: Option<wgpu::BindGroup>,
    /// W8A8: the activation quantizer's group (input -> xq, xs), run before the product.
    quantize: Option<wgpu::BindGroup>,
}

impl LinGroups {
    fn get(&self, step: Step) -> &wgpu::BindGroup {
        match step {
            Step::Prefill => &self.prefill,
            Step::Decode => &self.decode,
            Step::DecodeNormed | Step::DecodeResidual | Step::DecodeGateUp => self
                .fused
                .as_ref()
                .expect("fused groups exist where steps fuse"),
        }
    }
}

/// Every pipeline a forward uses, built once in `GpuLlama::new` (so a decode step does no
/// pipeline lookups, and their build time is reported apart from the passes).
struct Pipes {
    norm0: Arc<wgpu::ComputePipeline>,
    norm: Arc<wgpu::ComputePipeline>,
    rope: Arc<wgpu::ComputePipeline>,
    attention: Arc<wgpu::ComputePipeline>,
    /// Attention with RoPE and the cache store fused in (decode steps).
    attention_rope: Arc<wgpu::ComputePipeline>,
    silu: Arc<wgpu::ComputePipeline>,
    argmax: Arc<wgpu::ComputePipeline>,
    /// The linear kernel per (weight format, kind of pass and place in the layer).
    linear: std::collections::HashMap<(WeightFormat, Step), Arc<wgpu::ComputePipeline>>,
    /// W8A8: the activation quantizer and matmul_i8 for prefill and for decode.
    i8: Option<I8Pipes>,
    /// The sparse kernels per (kept values' format, pattern, decode step or not).
    sparse: std::collections::HashMap<(WeightFormat, NmPattern, bool), Arc<wgpu::ComputePipeline>>,
}

struct I8Pipes {
    quantize: Arc<wgpu::ComputePipeline>,
    prefill: Arc<wgpu::ComputePipeline>,
    decode: Arc<wgpu::ComputePipeline>,
}

impl Pipes {
    /// The product kernel of a linear layer at `step`.
    fn linear(&self, l: &Linear, step: Step) -> &wgpu::ComputePipeline {
        if let Some(sp) = &l.sparse {
            return &self.sparse[&(l.format, sp.pattern, step != Step::Prefill)];
        }
        match (&self.i8, l.w8a8) {
            (Some(p), Some(_)) if step == Step::Prefill => &p.prefill,
            (Some(p), Some(_)) => &p.decode,
            _ => &self.linear[&(l.format, step)],
        }
    }
}

/// How a linear layer runs in a pass: prefill, a decode step, or a decode step with its
/// neighbours fused in (`GpuLlama::fuses_norms`): the RMSNorm before it (Q|K|V, the output
/// projection), the residual add after it (attention output, down), or for gate|up the
/// norm before and, where `Fusion::silu`, SiLU * up after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Step {
    Prefill,
    Decode,
    DecodeNormed,
    DecodeResidual,
    DecodeGateUp,
}

/// Where a linear layer sits: after a norm, before a residual add, or gate|up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    AfterNorm,
    BeforeAdd,
    GateUp,
}

/// What a model's decode steps fuse into their products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Fusion {
    /// The norms and residual adds.
    norms: bool,
    /// SiLU * up into gate|up (with the norms; gate and up stacked in one matrix).
    silu: bool,
}

impl Step {
    /// The step of a linear at `place` in a pass of `rows` rows.
    fn of(rows: usize, fusion: Fusion, place: Place) -> Step {
        match (rows, fusion.norms, place) {
            (1, true, Place::GateUp) if fusion.silu => Step::DecodeGateUp,
            (1, true, Place::AfterNorm | Place::GateUp) => Step::DecodeNormed,
            (1, true, Place::BeforeAdd) => Step::DecodeResidual,
            (1, false, _) => Step::Decode,
            _ => Step::Prefill,
        }
    }
}

/// The decoder resident on a GPU.
pub struct GpuLlama {
    /// Hyperparameters.
    pub config: LlamaConfig,
    /// Bytes of weights on the GPU (matrices as stored for the kernels, norms f32).
    pub weight_bytes: u64,
    /// Bytes of the KV cache on the GPU.
    pub kv_bytes: u64,
    /// Positions the KV cache holds.
    pub capacity: usize,
    /// Positions filled so far.
    pub len: usize,
    /// Host time spent creating pipelines, ms.
    pub pipeline_ms: f64,
    /// The linear layers' kernels.
    pub kernels: LlamaKernels,
    embd: Weights,
    layers: Vec<Layer>,
    out_norm: wgpu::Buffer,
    output: Linear,
    inv_freq: wgpu::Buffer,
    pipes: Pipes,
    acts: Option<Acts>,
    /// When set, every decode step is timed dispatch by dispatch into it (`--profile`).
    pub profile: Option<Profile>,
    /// The (rows, output rows) the linears' params were last written for.
    params_rows: Option<(usize, usize)>,
    /// What decode steps fuse into the linears.
    fused: Fusion,
    /// The first block's norm weights (the host applies them to the embedding when fused).
    first_norm: Vec<f32>,
    /// A pruned decoder's sparse kernels (decode, prefill).
    sparse_kernels: Option<(SparseKernel, SparseKernel)>,
}

fn row_spec(stem: &'static str, bindings: Vec<Binding>) -> PipelineSpec<'static> {
    PipelineSpec {
        stem,
        defines: vec![],
        entry: "main",
        constants: vec![("WG", ROW_WG as f64)],
        bindings,
    }
}

use Binding::{ReadOnly as R, ReadWrite as W, Uniform as U};

fn pipe(ctx: &Context, spec: PipelineSpec) -> Result<Arc<wgpu::ComputePipeline>> {
    gpu_pipeline::build(ctx, &spec).map(|(p, _)| p)
}

fn norm_pipe(ctx: &Context, add: bool) -> Result<Arc<wgpu::ComputePipeline>> {
    let mut spec = row_spec("llama_add_rmsnorm", vec![U, R, R, W, W]);
    spec.constants.push(("ADD", if add { 1.0 } else { 0.0 }));
    pipe(ctx, spec)
}

/// The KV cache's module and its two bindings, as a variant prefix.
fn kv_defines(kv: KvPrecision, access: &str, first: u32) -> Vec<Define> {
    vec![
        Define::U32("KC_BINDING", first),
        Define::U32("VC_BINDING", first + 1),
        Define::Import(format!("kv_{access}_{}", kv.name())),
    ]
}

fn rope_pipe(ctx: &Context, kv: KvPrecision) -> Result<Arc<wgpu::ComputePipeline>> {
    let mut spec = row_spec("llama_rope_store", vec![U, R, W, W, W]);
    spec.defines = kv_defines(kv, "store", 3);
    pipe(ctx, spec)
}

/// Attention over a cache that `llama_rope_store` filled, or (`rope`: decode steps) with
/// RoPE and the cache store of the row's own position fused in.
fn attention_pipe(
    ctx: &Context,
    kv: KvPrecision,
    rope: bool,
) -> Result<Arc<wgpu::ComputePipeline>> {
    let (bindings, access, module) = if rope {
        (vec![U, R, W, W, W, R], "rw", "attention_rope_fused")
    } else {
        (vec![U, R, R, R, W], "load", "attention_rope_apart")
    };
    let mut spec = row_spec("llama_attention", bindings);
    spec.defines = kv_defines(kv, access, 2);
    spec.defines.push(Define::Import(module.into()));
    pipe(ctx, spec)
}

fn silu_pipe(ctx: &Context) -> Result<Arc<wgpu::ComputePipeline>> {
    let mut spec = row_spec("llama_silu_mul", vec![U, R, W]);
    spec.constants.clear(); // a fixed 256 per workgroup, one invocation per value
    pipe(ctx, spec)
}

fn argmax_pipe(ctx: &Context) -> Result<Arc<wgpu::ComputePipeline>> {
    pipe(
        ctx,
        PipelineSpec {
            stem: "llama_argmax",
            defines: vec![],
            entry: "main",
            constants: vec![],
            bindings: vec![U, R, W],
        },
    )
}

/// Slots of partial sums of squares between a fused residual add and the next norm: one
/// per invocation of the products that write the residual stream, in whole vec4s.
fn norm_slots(kernels: &LlamaKernels, c: &LlamaConfig) -> usize {
    kernels.decode.residual_slots(c.dim).max(1).div_ceil(4) * 4
}

fn linear_pipe(
    ctx: &Context,
    kernels: &LlamaKernels,
    c: &LlamaConfig,
    format: WeightFormat,
    step: Step,
) -> Result<Arc<wgpu::ComputePipeline>> {
    let norm = Fused::NormIn {
        kp: c.dim as u32,
        eps: c.rms_eps,
        parts: norm_slots(kernels, c) as u32,
    };
    let spec = match step {
        Step::Prefill => kernels.variant(2).spec(format, Epilogue::None),
        Step::Decode => kernels.decode.spec(format, Epilogue::None),
        Step::DecodeNormed => kernels.decode.fused_spec(format, &[norm])?,
        Step::DecodeResidual => kernels.decode.fused_spec(format, &[Fused::ResidualOut])?,
        Step::DecodeGateUp => kernels.decode.fused_spec(format, &[norm, Fused::SiluOut])?,
    };
    pipe(ctx, spec)
}

impl GpuLlama {
    /// Uploads `w` (already at the wanted precision, see `LlamaWeights::at_precision`) with
    /// a KV cache of `capacity` positions, and builds the pipelines.
    pub fn new(
        ctx: &Context,
        w: &LlamaWeights,
        capacity: usize,
        kernels: LlamaKernels,
    ) -> Result<Self> {
        Self::build(ctx, w, None, capacity, kernels)
    }

    /// A pruned decoder: `w`'s embedding, norms and output projection, and `sparse`'s
    /// linears in place of `w`'s (which are not uploaded), run by `sparse`'s kernels. W8A8
    /// is refused (its kernels have no sparse form).
    pub fn new_sparse(
        ctx: &Context,
        w: &LlamaWeights,
        sparse: &SparseLinears,
        capacity: usize,
        kernels: LlamaKernels,
    ) -> Result<Self> {
        if kernels.w8a8.is_some() {
            return Err(LabError::InvalidArgument(
                "W8A8 has no sparse kernels: a pruned decoder runs its kept values' format".into(),
            ));
        }
        if sparse.layers.len() != w.layers.len() || sparse.layers.iter().any(|l| l.len() != 7) {
            return Err(LabError::Shape(format!(
                "sparse linears for {} layers (7 each) given to a model of {}",
                sparse.layers.len(),
                w.layers.len()
            )));
        }
        if sparse.decode.one_row() && !sparse.prefill.one_row() {
            Self::build(ctx, w, Some(sparse), capacity, kernels)
        } else {
            Err(LabError::InvalidArgument(format!(
                "sparse kernels: decode {} must be a GEMV and prefill {} a matmul",
                sparse.decode.describe(),
                sparse.prefill.describe()
            )))
        }
    }

    fn build(
        ctx: &Context,
        w: &LlamaWeights,
        sparse: Option<&SparseLinears>,
        capacity: usize,
        kernels: LlamaKernels,
    ) -> Result<Self> {
        let c = w.config.clone();
        if capacity == 0 || capacity > c.context {
            return Err(LabError::InvalidArgument(format!(
                "a KV cache of {capacity} positions (the model's context is {})",
                c.context
            )));
        }
        if c.head_dim() > 4 * ROW_WG as usize {
            return Err(LabError::Shape(format!(
                "head dim {} > {} (llama_attention holds a vec4 per invocation)",
                c.head_dim(),
                4 * ROW_WG
            )));
        }
        if !c.head_dim().is_multiple_of(4) || !c.rope_dims.is_multiple_of(2) {
            return Err(LabError::Shape(format!(
                "head dim {} must be a multiple of 4 (attention reads vec4) and RoPE dims {} \
                 even (the KV cache is written in pairs)",
                c.head_dim(),
                c.rope_dims
            )));
        }
        let mut kernels = kernels;
        let widest = c.dim.max(c.ffn_dim).div_ceil(32) * 32;
        if kernels.decode.uniform_input_bytes().is_some()
            && matmul_wq::check_row_width(ctx, &kernels.decode, widest).is_err()
        {
            log::info!(
                "rows of {widest} values outgrow {:?}'s uniform row: decoding with {:?}",
                kernels.decode,
                CPU_DECODE_REGBLOCK
            );
            kernels.decode = WqVariant::Regblock(CPU_DECODE_REGBLOCK);
        }
        // Decode steps fuse the norms into the products where the kernel reads whole rows
        // (gemv_wq_broadcast) and the rows are whole blocks (the norm's mean needs no
        // padding), and the residual adds into the products before them: 61 dispatches
        // less per token for SmolLM2.
        let norms = kernels.w8a8.is_none()
            && sparse.is_none()
            && matches!(kernels.decode, WqVariant::Broadcast { .. })
            && c.dim.is_multiple_of(32);
        // SiLU * up fuses into gate|up where its two halves are one matrix (one format)
        // and each invocation holds two quads of rows (its features' gate and up rows).
        let fused = Fusion {
            norms,
            silu: norms
                && matches!(kernels.decode, WqVariant::Broadcast { quads: 2, .. })
                && w.layers.iter().all(|l| l.gate.format == l.up.format),
        };
        let start = Instant::now();
        let mut linear = std::collections::HashMap::new();
        let mut sparse_pipes = std::collections::HashMap::new();
        if let Some(sp) = sparse {
            for m in sp.layers.iter().flatten() {
                sp.decode.check_row_width(ctx, m.k)?;
                for (decode, kernel) in [(true, sp.decode), (false, sp.prefill)] {
                    let key = (m.kept.format, m.pattern, decode);
                    if let std::collections::hash_map::Entry::Vacant(e) = sparse_pipes.entry(key) {
                        e.insert(sparse::pipeline(ctx, &kernel, m.kept.format, m.pattern)?.0);
                    }
                }
            }
            // The output projection stays dense.
            for step in [Step::Prefill, Step::Decode] {
                let f = w.output().format;
                linear.insert((f, step), linear_pipe(ctx, &kernels, &c, f, step)?);
            }
        }
        for l in w
            .layers
            .iter()
            .filter(|_| kernels.w8a8.is_none() && sparse.is_none())
        {
            let (normed, added) = (Place::AfterNorm, Place::BeforeAdd);
            for (f, place) in [
                (l.q.format, normed),
                (l.k.format, normed),
                (l.v.format, normed),
                (l.o.format, added),
                (l.gate.format, Place::GateUp),
                (l.up.format, Place::GateUp),
                (l.down.format, added),
                (w.output().format, normed),
            ] {
                for step in [Step::Prefill, Step::of(1, Fusion::default(), place)]
                    .into_iter()
                    .chain(norms.then(|| Step::of(1, fused, place)))
                {
                    if let std::collections::hash_map::Entry::Vacant(e) = linear.entry((f, step)) {
                        e.insert(linear_pipe(ctx, &kernels, &c, f, step)?);
                    }
                }
            }
        }
        let pipes = Pipes {
            norm0: norm_pipe(ctx, false)?,
            norm: norm_pipe(ctx, true)?,
            rope: rope_pipe(ctx, kernels.kv)?,
            attention: attention_pipe(ctx, kernels.kv, false)?,
            attention_rope: attention_pipe(ctx, kernels.kv, true)?,
            silu: silu_pipe(ctx)?,
            argmax: argmax_pipe(ctx)?,
            linear,
            sparse: sparse_pipes,
            i8: match kernels.w8a8 {
                Some(scheme) => {
                    let dot4 = Dot4::best(ctx);
                    let mm = |rows| {
                        let spec = match kernels.i8_variant(rows) {
                            WqVariant::Broadcast { lanes, quads } => {
                                matmul_i8::broadcast_spec(lanes, quads, dot4, scheme)
                            }
                            WqVariant::Regblock(k) => {
                                matmul_i8::matmul_spec(k, dot4, scheme, Epilogue::None)
                            }
                            v => unreachable!("i8_variant gives no {v:?}"),
                        };
                        pipe(ctx, spec)
                    };
                    Some(I8Pipes {
                        quantize: pipe(ctx, matmul_i8::quantize_spec(scheme))?,
                        prefill: mm(2)?,
                        decode: mm(1)?,
                    })
                }
                None => None,
            },
        };
        let pipeline_ms = start.elapsed().as_secs_f64() * 1e3;
        let i8 = kernels.w8a8;
        let kv_floats = capacity * c.kv_dim();
        let kv_cache_bytes = (kv_floats * kernels.kv.bytes()) as u64;
        let layers = w
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let (qkv, o, gu, down) = match sparse.map(|s| &s.layers[i]) {
                    Some(m) => (
                        vec![upload_sparse(ctx, &[&m[0], &m[1], &m[2]])?],
                        upload_sparse(ctx, &[&m[3]])?,
                        vec![upload_sparse(ctx, &[&m[4], &m[5]])?],
                        upload_sparse(ctx, &[&m[6]])?,
                    ),
                    None => (
                        fuse(ctx, &[&l.q, &l.k, &l.v], i8)?,
                        upload_linear(ctx, &l.o, l.o.n, 0, i8)?,
                        fuse(ctx, &[&l.gate, &l.up], i8)?,
                        upload_linear(ctx, &l.down, l.down.n, 0, i8)?,
                    ),
                };
                let (d, f) = (c.dim, c.ffn_dim);
                let want = [(d + 2 * c.kv_dim(), d), (d, d), (2 * f, d), (d, f)];
                let got = [&qkv[0], &o, &gu[0], &down].map(|l| (l.n, l.k));
                if sparse.is_some() && got != want {
                    return Err(LabError::Shape(format!(
                        "layer {i}: sparse linears of {got:?} (n x k: Q|K|V, O, gate|up, \
                         down), the model needs {want:?}"
                    )));
                }
                Ok(Layer {
                    attn_norm: buffers::upload(ctx, "llama.attn_norm", &l.attn_norm)?,
                    qkv,
                    o,
                    ffn_norm: buffers::upload(ctx, "llama.ffn_norm", &l.ffn_norm)?,
                    gu,
                    down,
                    k_cache: buffers::storage(ctx, "llama.k_cache", kv_cache_bytes)?,
                    v_cache: buffers::storage(ctx, "llama.v_cache", kv_cache_bytes)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let output = upload_linear(ctx, w.output(), w.output().n, 0, i8)?;
        let half = c.rope_dims / 2;
        let inv_freq: Vec<f32> = (0..half)
            .map(|i| (c.rope_base as f64).powf(-2.0 * i as f64 / c.rope_dims as f64) as f32)
            .collect();
        let norms = (2 * layers.len() + 1) * c.dim * 4;
        let weight_bytes = layers
            .iter()
            .map(|l| {
                l.qkv.iter().chain(&l.gu).map(|p| p.bytes).sum::<u64>() + l.o.bytes + l.down.bytes
            })
            .sum::<u64>()
            + output.bytes
            + norms as u64
            + if w.output.is_none() {
                0
            } else {
                w.embd.bytes.len() as u64
            };
        Ok(GpuLlama {
            kv_bytes: 2 * layers.len() as u64 * kv_cache_bytes,
            capacity,
            len: 0,
            pipeline_ms,
            kernels,
            embd: w.embd.clone(),
            out_norm: buffers::upload(ctx, "llama.out_norm", &w.out_norm)?,
            inv_freq: buffers::upload(ctx, "llama.inv_freq", &inv_freq)?,
            pipes,
            layers,
            output,
            acts: None,
            profile: None,
            params_rows: None,
            fused,
            first_norm: w.layers.first().map_or(Vec::new(), |l| l.attn_norm.clone()),
            sparse_kernels: sparse.map(|s| (s.decode, s.prefill)),
            weight_bytes,
            config: c,
        })
    }

    /// Whether decode steps fuse each RMSNorm into the products that read it and each
    /// residual add into the product before it (gemv_wq_broadcast decoding, rows of whole
    /// blocks; not W8A8): 7 dispatches per layer instead of 9.
    pub fn fuses_norms(&self) -> bool {
        self.fused.norms
    }

    /// Whether decode steps also fuse SiLU * up into gate|up (two quads of rows per
    /// invocation, gate and up in one format): 6 dispatches per layer.
    pub fn fuses_silu(&self) -> bool {
        self.fused.silu
    }

    /// The decode steps' kernel for the linears in a few characters: the sparse GEMV of a
    /// pruned decoder, else [`LlamaKernels::decode_name`].
    pub fn decode_name(&self) -> String {
        match self.sparse_kernels {
            Some((decode, _)) => decode.describe(),
            None => self.kernels.decode_name(),
        }
    }

    /// Empties the KV cache (a new sequence).
    pub fn reset(&mut self) {
        self.len = 0;
    }

    fn ensure_acts(&mut self, ctx: &Context, rows: usize) -> Result<()> {
        if self.acts.as_ref().is_some_and(|a| a.rows >= rows) {
            return Ok(());
        }
        let rows = rows
            .max(self.acts.as_ref().map_or(0, |a| a.rows * 2))
            .min(self.capacity)
            .min(self.max_rows(ctx));
        let c = &self.config;
        let (d, kvd, f, v) = (c.dim, c.kv_dim(), c.ffn_dim, c.vocab);
        let st = |label: &str, floats: usize| buffers::storage(ctx, label, (floats * 4) as u64);
        // Inputs of the linear layers: at least the uniform view a decode kernel may bind.
        let a_view = self.kernels.decode.uniform_input_bytes();
        let sparse_view = self
            .sparse_kernels
            .and_then(|(decode, _)| decode.uniform_input_bytes());
        let input = |label: &str, floats: usize| {
            let view = a_view.unwrap_or(0).max(sparse_view.unwrap_or(0));
            let bytes = ((floats * 4) as u64).max(view);
            buffers::storage(ctx, label, bytes)
        };
        let zero = <LlamaParams as bytemuck::Zeroable>::zeroed();
        let params = buffers::uniform(ctx, "llama.params", &zero)?;
        let final_params = buffers::uniform(ctx, "llama.final_params", &zero)?;
        let argmax_params = buffers::uniform(ctx, "llama.argmax_params", &[v as u32, 0, 0, 0])?;
        // The residual stream: fused decode steps read it as the normed products' input.
        let x = input("llama.x", rows * d)?;
        let h = input("llama.h", rows * d)?;
        let qkv = st("llama.qkv", rows * (d + 2 * kvd))?;
        let att = input("llama.att", rows * d)?;
        let tmp = st("llama.tmp", rows * d)?;
        let gu = st("llama.gu", rows * 2 * f)?;
        let a = input("llama.a", rows * f)?;
        let hl = input("llama.hl", rows * d)?;
        let logits = st("llama.logits", rows * v)?;
        let best = st("llama.best", 1)?;
        // W8A8: the quantized activations of the widest input (int8 and a scale per 32).
        let kp_max = d.max(f).div_ceil(32) * 32;
        // gemv_i8_broadcast (decode) binds uniform views of both.
        let i8_view = matches!(self.kernels.i8_variant(1), WqVariant::Broadcast { .. })
            .then_some(BROADCAST_A_BYTES);
        let i8_bytes = |bytes: usize| (bytes as u64).max(i8_view.unwrap_or(0));
        let xq = buffers::storage(ctx, "llama.xq", i8_bytes(rows * kp_max))?;
        let xs = buffers::storage(ctx, "llama.xs", i8_bytes(rows * kp_max / 32 * 4))?;
        let bg = |p: &wgpu::ComputePipeline, label: &str, bufs: &[&wgpu::Buffer]| {
            gpu_pipeline::bind_group(ctx, p, label, bufs)
        };
        let pp = &self.pipes;
        let (norm0, norm, rope, attention, silu) =
            (&pp.norm0, &pp.norm, &pp.rope, &pp.attention, &pp.silu);
        let fused = self.fused;
        // The next norm's input (x * gamma) and partial sums of squares, which a fused
        // decode step passes from each residual add to the product after it.
        let xg = input("llama.xg", d)?;
        let norm_parts = st("llama.norm_parts", norm_slots(&self.kernels, c))?;
        // A linear's groups: prefill reads `input` and writes `output`; a fused decode step
        // after a norm reads xg and parts, one before an add writes the residual stream and
        // the next norm's inputs, with its gamma `next`.
        let lin = |l: &Linear,
                   input: &wgpu::Buffer,
                   output: &wgpu::Buffer,
                   place: Place,
                   next: &wgpu::Buffer|
         -> Result<LinGroups> {
            if let Some(sp) = &l.sparse {
                // Sparse: the same bindings for prefill and decode, the decode kernel
                // maybe reading the input as a uniform view and the kept words as vec4s.
                let group = |step: Step, view: Option<u64>| {
                    let mut parts = vec![(&l.params, None), (input, view), (&l.w, None)];
                    parts.extend([(&l.s, None), (output, None), (&sp.masks, None)]);
                    if view.is_some() {
                        parts.push((&l.w, None));
                    }
                    let p = pp.linear(l, step);
                    gpu_pipeline::bind_group_parts(ctx, p, "llama.sparse", &parts)
                };
                return Ok(LinGroups {
                    prefill: group(Step::Prefill, None)?,
                    decode: group(Step::Decode, sparse_view)?,
                    fused: None,
                    quantize: None,
                });
            }
            if let (Some(p8), Some(_)) = (&pp.i8, l.w8a8) {
                // The quantizer reads the input, matmul_i8 its output (both layouts alike
                // for prefill and decode).
                let q = bg(
                    &p8.quantize,
                    "llama.quantize",
                    &[&l.params, input, &xq, &xs],
                )?;
                let mm = [&l.params, &xq, &xs, &l.w, &l.s, output];
                let views = [None, i8_view, i8_view, None, None, None];
                let parts: Vec<_> = mm.iter().copied().zip(views).collect();
                let decode = gpu_pipeline::bind_group_parts(ctx, &p8.decode, "llama.i8", &parts)?;
                return Ok(LinGroups {
                    prefill: bg(&p8.prefill, "llama.linear_i8", &mm)?,
                    decode,
                    fused: None,
                    quantize: Some(q),
                });
            }
            let group = |step: Step, input, output, view: Option<u64>| {
                let mut parts = vec![(&l.params, None), (input, view), (&l.w, None)];
                parts.extend([(&l.s, None), (output, None)]);
                if view.is_some() {
                    parts.push((&l.w, None));
                }
                match step {
                    Step::DecodeNormed | Step::DecodeGateUp => parts.push((&norm_parts, None)),
                    Step::DecodeResidual => {
                        parts.extend([(next, None), (&xg, None), (&norm_parts, None)])
                    }
                    _ => {}
                }
                let p = pp.linear(l, step);
                gpu_pipeline::bind_group_parts(ctx, p, "llama.linear", &parts)
            };
            let fused = match Step::of(1, fused, place) {
                s @ Step::DecodeNormed => Some(group(s, &xg, output, a_view)?),
                // SiLU * up fused: gate|up writes the activation, down's input.
                s @ Step::DecodeGateUp => Some(group(s, &xg, &a, a_view)?),
                s @ Step::DecodeResidual => Some(group(s, input, &x, a_view)?),
                _ => None,
            };
            Ok(LinGroups {
                prefill: group(Step::Prefill, input, output, None)?,
                decode: group(Step::Decode, input, output, a_view)?,
                fused,
                quantize: None,
            })
        };
        let mut layers = Vec::with_capacity(self.layers.len());
        for (i, l) in self.layers.iter().enumerate() {
            // The norm after this block's FFN: the next block's, or the final one.
            let next_norm = self
                .layers
                .get(i + 1)
                .map_or(&self.out_norm, |n| &n.attn_norm);
            layers.push(LayerGroups {
                // The first block normalises the embedding; later ones add the previous
                // block's FFN output first.
                norm1: bg(
                    if i == 0 { norm0 } else { norm },
                    "llama.norm1",
                    &[&params, &tmp, &l.attn_norm, &x, &h],
                )?,
                qkv: l
                    .qkv
                    .iter()
                    .map(|p| lin(p, &h, &qkv, Place::AfterNorm, &l.attn_norm))
                    .collect::<Result<_>>()?,
                rope: bg(
                    rope,
                    "llama.rope",
                    &[&params, &self.inv_freq, &qkv, &l.k_cache, &l.v_cache],
                )?,
                attention: bg(
                    attention,
                    "llama.attention",
                    &[&params, &qkv, &l.k_cache, &l.v_cache, &att],
                )?,
                attention_rope: bg(
                    &pp.attention_rope,
                    "llama.attention_rope",
                    &[&params, &qkv, &l.k_cache, &l.v_cache, &att, &self.inv_freq],
                )?,
                o: lin(&l.o, &att, &tmp, Place::BeforeAdd, &l.ffn_norm)?,
                norm2: bg(norm, "llama.norm2", &[&params, &tmp, &l.ffn_norm, &x, &h])?,
                gu: l
                    .gu
                    .iter()
                    .map(|p| lin(p, &h, &gu, Place::GateUp, &l.ffn_norm))
                    .collect::<Result<_>>()?,
                silu: bg(silu, "llama.silu", &[&params, &gu, &a])?,
                down: lin(&l.down, &a, &tmp, Place::BeforeAdd, next_norm)?,
            });
        }
        let final_norm = bg(
            norm,
            "llama.final_norm",
            &[&final_params, &tmp, &self.out_norm, &x, &hl],
        )?;
        let output = lin(&self.output, &hl, &logits, Place::AfterNorm, &self.out_norm)?;
        let argmax = bg(
            &pp.argmax,
            "llama.argmax",
            &[&argmax_params, &logits, &best],
        )?;
        self.acts = Some(Acts {
            rows,
            params,
            final_params,
            x,
            logits,
            best,
            layers,
            final_norm,
            output,
            argmax,
            xg,
            norm_parts,
            _internal: vec![h, qkv, att, tmp, gu, a, hl, argmax_params, xq, xs],
        });
        Ok(())
    }

    /// Most rows one submission holds: the logits of a row are vocab floats, and every
    /// activation buffer must fit the adapter's binding limit. Longer prompts are run in
    /// chunks of this many rows, each continuing the KV cache (the same context).
    pub fn max_rows(&self, ctx: &Context) -> usize {
        let c = &self.config;
        let widest = c.vocab.max(2 * c.ffn_dim).max(c.dim + 2 * c.kv_dim()) as u64 * 4;
        ((ctx.limits().max_storage_buffer_binding_size / widest) as usize).clamp(1, 256)
    }

    /// Runs `tokens` at the next positions of the KV cache and returns what `want` asks
    /// for (all logits: every row's, in order). One submission per `max_rows` tokens.
    /// Refuses, before any work, an empty input, tokens past the vocabulary and more
    /// positions than the cache holds.
    pub fn forward(
        &mut self,
        ctx: &Context,
        tokens: &[u32],
        want: Want,
        timer: Option<&GpuTimer>,
    ) -> Result<Output> {
        let c = &self.config;
        if tokens.is_empty() {
            return Err(LabError::InvalidArgument("no tokens to run".into()));
        }
        if self.len + tokens.len() > self.capacity {
            return Err(LabError::InvalidArgument(format!(
                "{} positions asked for, the KV cache holds {} (the model's context is {})",
                self.len + tokens.len(),
                self.capacity,
                c.context
            )));
        }
        if let Some(bad) = tokens.iter().find(|&&id| id as usize >= c.vocab) {
            return Err(LabError::InvalidArgument(format!(
                "token id {bad} is past the vocabulary ({})",
                c.vocab
            )));
        }
        let chunk = self.max_rows(ctx);
        let n = tokens.len().div_ceil(chunk);
        let mut all = Output {
            logits: Vec::new(),
            token: None,
            ms: 0.0,
            timing: TimingSource::GpuTimestamp,
        };
        for (i, part) in tokens.chunks(chunk).enumerate() {
            let part_want = match want {
                Want::AllLogits => Want::AllLogits,
                // Only the last chunk's last row matters; earlier chunks fill the cache.
                w if i + 1 == n => w,
                _ => Want::LastLogits,
            };
            let out = self.pass(ctx, part, part_want, timer)?;
            all.ms += out.ms;
            if out.timing == TimingSource::WallClock {
                all.timing = out.timing;
            }
            all.token = out.token;
            if want == Want::AllLogits || i + 1 == n {
                all.logits.extend(out.logits);
            }
        }
        Ok(all)
    }

    /// One submission over at most `max_rows` tokens (checked by `forward`).
    fn pass(
        &mut self,
        ctx: &Context,
        tokens: &[u32],
        want: Want,
        timer: Option<&GpuTimer>,
    ) -> Result<Output> {
        let c = self.config.clone();
        let t = tokens.len();
        self.ensure_acts(ctx, t)?;
        let acts = self.acts.as_ref().expect("ensure_acts just set it");
        let (d, kvd) = (c.dim, c.kv_dim());
        // The embedding rows, gathered on the host from the same encoded weights.
        let bpr = self.embd.bytes.len() / self.embd.n;
        let x: Vec<f32> = tokens
            .iter()
            .flat_map(|&id| {
                let row = &self.embd.bytes[id as usize * bpr..][..bpr];
                decode_bytes(self.embd.format, row).into_iter().take(d)
            })
            .collect();
        let q = &ctx.queue;
        q.write_buffer(&acts.x, 0, bytemuck::cast_slice(&x));
        if t == 1 && self.fused.norms {
            // The first block's norm inputs: what a residual add leaves for the others.
            let xg: Vec<f32> = x.iter().zip(&self.first_norm).map(|(v, g)| v * g).collect();
            let mut parts = vec![0f32; norm_slots(&self.kernels, &c)];
            parts[0] = x.iter().map(|v| v * v).sum();
            q.write_buffer(&acts.xg, 0, bytemuck::cast_slice(&xg));
            q.write_buffer(&acts.norm_parts, 0, bytemuck::cast_slice(&parts));
        }
        let params = LlamaParams {
            rows: t as u32,
            pos0: self.len as u32,
            dim: d as u32,
            kv_dim: kvd as u32,
            heads: c.heads as u32,
            kv_heads: c.kv_heads as u32,
            head_dim: c.head_dim() as u32,
            rope_dims: c.rope_dims as u32,
            ffn: c.ffn_dim as u32,
            out_row0: 0,
            eps: c.rms_eps,
            _pad: 0,
        };
        q.write_buffer(&acts.params, 0, bytemuck::bytes_of(&params));
        let out_rows = if want == Want::AllLogits { t } else { 1 };
        let final_params = LlamaParams {
            out_row0: (t - out_rows) as u32,
            ..params
        };
        q.write_buffer(&acts.final_params, 0, bytemuck::bytes_of(&final_params));
        let max = ctx.limits().max_compute_workgroups_per_dimension;
        let kernels = self.kernels;
        // The linears' params depend only on the rows: a decode step after a decode step
        // writes none of them (121 writes less per token for SmolLM2).
        let write_params = self.params_rows != Some((t, out_rows));
        // Each linear's params and grid for this pass.
        // What this pass fuses (decode steps only).
        let fused = if t == 1 {
            self.fused
        } else {
            Fusion::default()
        };
        let sparse_kernels = self.sparse_kernels;
        let grid_of = |l: &Linear, rows: usize, place: Place| -> Result<LinGrid> {
            if let (Some(sp), Some((decode, prefill))) = (&l.sparse, sparse_kernels) {
                let kernel = if rows == 1 { decode } else { prefill };
                let p = SparseParams::new(&kernel, rows, &sp.shape);
                if write_params {
                    q.write_buffer(&l.params, 0, bytemuck::bytes_of(&p));
                }
                return Ok(LinGrid {
                    grid: dispatch::grid(p.tiles as u64, max)?,
                    quantize: None,
                });
            }
            if let Some(scheme) = l.w8a8 {
                let kp = l.k.div_ceil(32) * 32;
                let (tiles_n, tiles) = kernels.i8_variant(rows).tiles(rows, l.n);
                let p = I8Params {
                    m: rows as u32,
                    n: l.n as u32,
                    k: l.k as u32,
                    kp: kp as u32,
                    tiles_n: tiles_n as u32,
                    tiles: tiles as u32,
                    _pad: [0; 2],
                };
                if write_params {
                    q.write_buffer(&l.params, 0, bytemuck::bytes_of(&p));
                }
                let quantize = matmul_i8::quantize_workgroups(scheme, rows, kp);
                return Ok(LinGrid {
                    grid: dispatch::grid(tiles as u64, max)?,
                    quantize: Some(dispatch::grid(quantize, max)?),
                });
            }
            let mut p =
                WqParams::new(&kernels.variant(rows), rows, l.n, l.k).in_columns(l.ldc, l.col0);
            if Step::of(rows, fused, place) == Step::DecodeGateUp {
                p.tiles = kernels.decode.silu_tiles(l.n) as u32;
            }
            if write_params {
                q.write_buffer(&l.params, 0, bytemuck::bytes_of(&p));
            }
            Ok(LinGrid {
                grid: dispatch::grid(p.tiles as u64, max)?,
                quantize: None,
            })
        };
        let grids_of = |ls: &[Linear], place| {
            ls.iter()
                .map(|l| grid_of(l, t, place))
                .collect::<Result<Vec<_>>>()
        };
        let lgrids = self
            .layers
            .iter()
            .map(|l| {
                Ok([
                    grids_of(&l.qkv, Place::AfterNorm)?,
                    vec![grid_of(&l.o, t, Place::BeforeAdd)?],
                    grids_of(&l.gu, Place::GateUp)?,
                    vec![grid_of(&l.down, t, Place::BeforeAdd)?],
                ])
            })
            .collect::<Result<Vec<_>>>()?;
        let out_grid = grid_of(&self.output, out_rows, Place::AfterNorm)?;
        let rows_grid = dispatch::grid(t as u64, max)?;
        let att_grid = dispatch::grid((t * c.heads) as u64, max)?;
        let silu_grid = dispatch::grid((t * c.ffn_dim).div_ceil(256) as u64, max)?;
        let pp = &self.pipes;
        // Decode steps fuse the norms into the products after them and the residual adds
        // into the products before them (`fuses_norms`), and maybe SiLU * up into gate|up;
        // prefill runs every stage.
        let normed = Step::of(t, fused, Place::AfterNorm);
        let added = Step::of(t, fused, Place::BeforeAdd);
        let gate_up = Step::of(t, fused, Place::GateUp);
        let pipes_of =
            |ls: &[Linear], step| ls.iter().map(|l| pp.linear(l, step)).collect::<Vec<_>>();
        let lin_pipes: Vec<[Vec<&wgpu::ComputePipeline>; 4]> = self
            .layers
            .iter()
            .map(|l| {
                [
                    pipes_of(&l.qkv, normed),
                    vec![pp.linear(&l.o, added)],
                    pipes_of(&l.gu, gate_up),
                    vec![pp.linear(&l.down, added)],
                ]
            })
            .collect();
        let out_step = Step::of(out_rows, fused, Place::AfterNorm);
        let out_pipe = pp.linear(&self.output, out_step);
        let quantize = pp.i8.as_ref().map(|p| &*p.quantize);
        // The pass as a list of dispatches, each with its stage and the weight bytes it
        // reads: recorded into one compute pass, or timed one by one when profiling.
        let mut plan: Vec<Planned> = Vec::with_capacity(12 * self.layers.len() + 4);
        let lin = |plan: &mut Vec<_>, stage, l: &Linear, p, g, step, grid: &LinGrid| {
            push_linear(plan, quantize, stage, l.bytes, p, g, step, grid)
        };
        for (i, g) in acts.layers.iter().enumerate() {
            let (lp, lg, layer) = (&lin_pipes[i], &lgrids[i], &self.layers[i]);
            let norm = if i == 0 { &pp.norm0 } else { &pp.norm };
            if !fused.norms {
                plan.push(Planned::new(Stage::Norm, norm, &g.norm1, rows_grid, 0));
            }
            for (((p, bg), grid), l) in lp[0].iter().zip(&g.qkv).zip(&lg[0]).zip(&layer.qkv) {
                lin(&mut plan, Stage::Qkv, l, p, bg, normed, grid);
            }
            // A decode step rotates and stores its one position inside attention.
            if t == 1 {
                let (p, bg) = (&pp.attention_rope, &g.attention_rope);
                plan.push(Planned::new(Stage::Attention, p, bg, att_grid, 0));
            } else {
                plan.push(Planned::new(Stage::Rope, &pp.rope, &g.rope, rows_grid, 0));
                let (p, bg) = (&pp.attention, &g.attention);
                plan.push(Planned::new(Stage::Attention, p, bg, att_grid, 0));
            }
            let (o, down) = (&layer.o, &layer.down);
            lin(
                &mut plan,
                Stage::AttnOut,
                o,
                lp[1][0],
                &g.o,
                added,
                &lg[1][0],
            );
            if !fused.norms {
                plan.push(Planned::new(Stage::Norm, &pp.norm, &g.norm2, rows_grid, 0));
            }
            for (((p, bg), grid), l) in lp[2].iter().zip(&g.gu).zip(&lg[2]).zip(&layer.gu) {
                lin(&mut plan, Stage::GateUp, l, p, bg, gate_up, grid);
            }
            if !fused.silu {
                plan.push(Planned::new(
                    Stage::SiluMul,
                    &pp.silu,
                    &g.silu,
                    silu_grid,
                    0,
                ));
            }
            lin(
                &mut plan,
                Stage::Down,
                down,
                lp[3][0],
                &g.down,
                added,
                &lg[3][0],
            );
        }
        if !fused.norms {
            plan.push(Planned::new(
                Stage::Norm,
                &pp.norm,
                &acts.final_norm,
                rows_grid,
                0,
            ));
        }
        lin(
            &mut plan,
            Stage::Output,
            &self.output,
            out_pipe,
            &acts.output,
            out_step,
            &out_grid,
        );
        if want == Want::Argmax {
            plan.push(Planned::new(
                Stage::Argmax,
                &pp.argmax,
                &acts.argmax,
                (1, 1),
                0,
            ));
        }
        let profiling = t == 1 && self.profile.is_some();
        let (ms, timing, step) = if profiling {
            let timed = timing::time_each(ctx, "llama decode step", plan.len(), |pass, i| {
                plan[i].record(pass)
            })?;
            let step: Vec<(Stage, f64, u64)> = plan
                .iter()
                .zip(&timed.each)
                .map(|(d, &ms)| (d.stage, ms, d.bytes))
                .collect();
            (timed.span, TimingSource::GpuTimestamp, Some(step))
        } else {
            let (ms, timing) = timing::time_pass(ctx, timer, "llama", |pass| {
                plan.iter().for_each(|d| d.record(pass))
            })?;
            (ms, timing, None)
        };
        if let (Some(step), Some(profile)) = (step, self.profile.as_mut()) {
            profile.add_step(&step, ms);
        }
        // Only a pass that ran has its params in place (an error before leaves them stale).
        self.params_rows = Some((t, out_rows));
        let acts = self.acts.as_ref().expect("ensure_acts set it");
        self.len += t;
        let (logits, token) = match want {
            Want::Argmax => {
                let id = buffers::read::<u32>(ctx, &acts.best, 1)?[0];
                if id as usize >= c.vocab {
                    return Err(LabError::Readback(format!(
                        "argmax returned {id}: the logits were not finite"
                    )));
                }
                (Vec::new(), Some(id))
            }
            _ => (buffers::read(ctx, &acts.logits, out_rows * c.vocab)?, None),
        };
        Ok(Output {
            logits,
            token,
            ms,
            timing,
        })
    }
}
