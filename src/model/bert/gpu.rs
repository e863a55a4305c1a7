//! The encoder on the GPU. Embeddings and LayerNorm; then per layer the fused QKV linear,
//! attention, the output linear, residual and LayerNorm, the FFN up (GELU) and down linears,
//! residual and LayerNorm; then mean pooling and L2 normalisation. One compute pass per
//! batch, activations resident on the GPU, read back only at the end. The linear layers run
//! at the chosen precision (`matmul_wq` for weight formats, `quantize_rows_i8` or
//! `quantize_rot32_i8` and `matmul_i8` for W8A8); everything else is f32. Same steps, same order as
//! `reference::bert`.

use std::sync::Arc;
use std::time::Instant;

use crate::error::{LabError, Result};
use crate::formats::bert::weights::{Linear, Norm};
use crate::formats::bert::{Batch, BertConfig, BertWeights};
use crate::formats::int8::{quantize_rows_with, Int8Scheme};
use crate::formats::precision::Precision;
use crate::formats::quant_search::Quantizer;
use crate::formats::sparse::{NmPattern, SparseWeights};
use crate::formats::weights::{WeightFormat, Weights};
use crate::gpu::pipeline::{self as gpu_pipeline, Binding, PipelineSpec};
use crate::gpu::timing::{self, GpuTimer, TimingSource};
use crate::gpu::{buffers, dispatch, Context};
use crate::kernels::epilogue::Epilogue;
use crate::kernels::matmul_i8::{self, Dot4, I8Params};
use crate::kernels::matmul_wq::{WqKernel, WqParams, WqVariant};
use crate::kernels::sparse::{self, SparseKernel, SparseParams};
use crate::model::bert::calibrate::Importance;
use crate::shaders::Define;

/// Parameters of the bert_* shaders.
/// Keep in sync with `BertParams` in shaders/shared/bert_params.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BertParams {
    /// Token rows: b * t.
    pub rows: u32,
    /// Padded sequence length.
    pub t: u32,
    /// Hidden width.
    pub h: u32,
    /// Attention heads.
    pub heads: u32,
    /// Sequences.
    pub b: u32,
    /// LayerNorm epsilon.
    pub eps: f32,
    /// Padding to 32 bytes.
    pub _pad: [u32; 2],
}

/// Register blocks of the model's linear layers.
const LINEAR_KERNEL: WqKernel = WqKernel {
    wg_x: 16,
    tm: 4,
    tn: 4,
};

/// The weight formats' linear kernel on `ctx`'s adapter: the subgroup block on CPU adapters
/// that can run it (lavapipe), else the register block.
fn linear_variant(ctx: &Context) -> WqVariant {
    crate::kernels::matmul_wq::cpu_sgblock_or(ctx, LINEAR_KERNEL)
}

/// Workgroup size of the row-wise kernels.
const ROW_WG: u32 = 64;

/// Precisions the model's linear layers can run at.
pub fn supported(precision: Precision) -> bool {
    !matches!(precision, Precision::F16Acc)
}

enum LinearWeights {
    /// Weights in a storage format, decoded by `matmul_wq`.
    Formatted {
        w: wgpu::Buffer,
        s: wgpu::Buffer,
        format: WeightFormat,
    },
    /// int8 weights with their scales (per channel or per block) for `matmul_i8`.
    Int8 { w: wgpu::Buffer, s: wgpu::Buffer },
    /// N:M-compressed: the kept values in `format` and their masks, for `matmul_sparse`.
    Sparse {
        w: wgpu::Buffer,
        s: wgpu::Buffer,
        masks: wgpu::Buffer,
        format: WeightFormat,
        /// The matrix without its values (for `SparseParams::new`).
        shape: Box<SparseWeights>,
    },
}

struct GpuLinear {
    n: usize,
    k: usize,
    epilogue: Epilogue,
    weights: LinearWeights,
    bias: wgpu::Buffer,
    params: wgpu::Buffer,
    bytes: u64,
}

impl GpuLinear {
    fn key(&self) -> LinearKey {
        match &self.weights {
            LinearWeights::Formatted { format, .. } => (Some(*format), None, self.epilogue),
            LinearWeights::Int8 { .. } => (None, None, self.epilogue),
            LinearWeights::Sparse { format, shape, .. } => {
                (Some(*format), Some(shape.pattern), self.epilogue)
            }
        }
    }
}

/// Uploads a pruned linear in the N:M-compressed layout, with `l`'s bias.
fn upload_sparse(
    ctx: &Context,
    l: &Linear,
    sw: &SparseWeights,
    epilogue: Epilogue,
) -> Result<GpuLinear> {
    if (sw.n, sw.k) != (l.n, l.k) {
        return Err(LabError::Shape(format!(
            "a sparse linear of {}x{} in place of {}x{}",
            sw.n, sw.k, l.n, l.k
        )));
    }
    let (w, s) = sw.kept.gpu_words();
    // Float formats have no scales; the binding still needs a buffer.
    let s = if s.is_empty() { vec![0] } else { s };
    let shape = sw.shape();
    Ok(GpuLinear {
        n: l.n,
        k: l.k,
        epilogue,
        weights: LinearWeights::Sparse {
            w: buffers::upload(ctx, "bert.sparse.w", &w)?,
            s: buffers::upload(ctx, "bert.sparse.s", &s)?,
            masks: buffers::upload(ctx, "bert.sparse.masks", &sw.masks)?,
            format: sw.kept.format,
            shape: Box::new(shape),
        },
        bias: buffers::upload(ctx, "bert.bias", &l.b)?,
        params: buffers::uniform(
            ctx,
            "bert.sparse.params",
            &<SparseParams as bytemuck::Zeroable>::zeroed(),
        )?,
        bytes: sw.bytes() as u64,
    })
}

struct GpuLayer {
    qkv: GpuLinear,
    out: GpuLinear,
    ln1: (wgpu::Buffer, wgpu::Buffer),
    up: GpuLinear,
    down: GpuLinear,
    ln2: (wgpu::Buffer, wgpu::Buffer),
}

/// A linear pipeline's key: the weight format (`None`: int8), the N:M pattern of sparse
/// weights, and the epilogue.
type LinearKey = (Option<WeightFormat>, Option<NmPattern>, Epilogue);

struct Pipelines {
    embed: Arc<wgpu::ComputePipeline>,
    add_ln: Arc<wgpu::ComputePipeline>,
    attention: Arc<wgpu::ComputePipeline>,
    pool: Arc<wgpu::ComputePipeline>,
    /// Linear pipelines per (weight format, epilogue): the precision's format and, for a
    /// K-quant, its fallback for rows that are not whole super-blocks; int8 under `None`.
    linear: Vec<(LinearKey, Arc<wgpu::ComputePipeline>)>,
    quantize: Option<Arc<wgpu::ComputePipeline>>,
}

impl Pipelines {
    fn linear(&self, l: &GpuLinear) -> &wgpu::ComputePipeline {
        let key = l.key();
        &self
            .linear
            .iter()
            .find(|(k, _)| *k == key)
            .expect("a pipeline per linear's format and epilogue")
            .1
    }
}

/// Activation buffers for up to `rows` token rows and `b` sequences, with their bind groups.
struct Acts {
    rows: usize,
    b: usize,
    ids: wgpu::Buffer,
    lens: wgpu::Buffer,
    params: wgpu::Buffer,
    out: wgpu::Buffer,
    groups: Groups,
    /// x, qkv, att, tmp, up: referenced only through the bind groups.
    _internal: [wgpu::Buffer; 5],
}

struct LayerGroups {
    qkv: LinearGroups,
    attention: wgpu::BindGroup,
    out: LinearGroups,
    ln1: wgpu::BindGroup,
    up: LinearGroups,
    down: LinearGroups,
    ln2: wgpu::BindGroup,
}

struct LinearGroups {
    /// `quantize_rows_i8` (int8 only).
    quantize: Option<wgpu::BindGroup>,
    matmul: wgpu::BindGroup,
}

struct Groups {
    embed: wgpu::BindGroup,
    layers: Vec<LayerGroups>,
    pool: wgpu::BindGroup,
    /// int8: the quantized activations and scales shared by every linear.
    _int8: Option<(wgpu::Buffer, wgpu::Buffer)>,
}

/// The encoder resident on a GPU at one precision.
pub struct GpuBert {
    /// Shapes.
    pub config: BertConfig,
    /// Precision of the linear layers.
    pub precision: Precision,
    /// Quantizer of Q4_0/Q4_1 weights (the others do not depend on it).
    pub quantizer: Quantizer,
    /// Bytes of linear-layer weights on the GPU (embeddings and norms excluded: f32 always).
    pub linear_bytes: u64,
    /// Bytes of all weights on the GPU.
    pub weight_bytes: u64,
    /// Host time spent creating pipelines, ms.
    pub pipeline_ms: f64,
    /// Most token rows (b * t) one forward pass holds; larger batches are split.
    pub max_rows: usize,
    /// A pruned encoder's kernel for its N:M-sparse linears.
    pub sparse_kernel: Option<SparseKernel>,
    /// The weight formats' kernel of the dense linears ([`linear_variant`]).
    pub linear: WqVariant,
    word: wgpu::Buffer,
    position: wgpu::Buffer,
    token_type: wgpu::Buffer,
    emb_ln: (wgpu::Buffer, wgpu::Buffer),
    layers: Vec<GpuLayer>,
    pipes: Pipelines,
    acts: Option<Acts>,
}

fn norm_buffers(ctx: &Context, n: &Norm) -> Result<(wgpu::Buffer, wgpu::Buffer)> {
    Ok((
        buffers::upload(ctx, "bert.ln.g", &n.g)?,
        buffers::upload(ctx, "bert.ln.b", &n.b)?,
    ))
}

fn upload_linear(
    ctx: &Context,
    l: &Linear,
    precision: Precision,
    epilogue: Epilogue,
    quantizer: Quantizer,
    importance: Option<&[f32]>,
) -> Result<GpuLinear> {
    let (weights, bytes) = match precision {
        Precision::Int8 | Precision::Int8Rot => {
            let scheme = precision.int8_scheme().expect("an int8 precision");
            let q = quantize_rows_with(&l.w, l.n, l.k, scheme)?;
            (
                LinearWeights::Int8 {
                    w: buffers::upload(ctx, "bert.w8", &q.words)?,
                    s: buffers::upload(ctx, "bert.s8", &q.scales)?,
                },
                q.bytes(),
            )
        }
        Precision::Weights(format) => {
            let format = format.for_row_len(l.k);
            let wt = Weights::encode_with(format, l.n, l.k, &l.w, quantizer, importance)?;
            let (w, s) = wt.gpu_words();
            let bytes = if format.is_block_quantized() {
                wt.bytes.len() as u64
            } else {
                (w.len() * 4) as u64
            };
            (
                LinearWeights::Formatted {
                    w: buffers::upload(ctx, "bert.w", &w)?,
                    s: buffers::upload(ctx, "bert.s", &s)?,
                    format,
                },
                bytes,
            )
        }
        Precision::F16Acc => {
            return Err(LabError::UnknownName {
                kind: "model precision",
                name: "f16acc".into(),
                expected: "f32, f16, bf16, int8, int8rot, q8_0, q4_0, q4_1, q5_0, q4_k, q6_k"
                    .into(),
            })
        }
    };
    Ok(GpuLinear {
        n: l.n,
        k: l.k,
        epilogue,
        weights,
        bias: buffers::upload(ctx, "bert.bias", &l.b)?,
        params: buffers::uniform(
            ctx,
            "bert.linear.params",
            &<WqParams as bytemuck::Zeroable>::zeroed(),
        )?,
        bytes,
    })
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

impl GpuBert {
    /// Uploads the weights, converting the linear layers to `precision` (block formats by
    /// ggml's reference quantizers), and builds the pipelines.
    pub fn new(ctx: &Context, w: &BertWeights, precision: Precision) -> Result<Self> {
        Self::with_quantizer(ctx, w, precision, Quantizer::Reference, None)
    }

    /// [`GpuBert::new`] with a choice of quantizer for Q4_0/Q4_1 weights;
    /// [`Quantizer::Imatrix`] needs the activation importance from `model::calibrate`.
    pub fn with_quantizer(
        ctx: &Context,
        w: &BertWeights,
        precision: Precision,
        quantizer: Quantizer,
        importance: Option<&Importance>,
    ) -> Result<Self> {
        Self::build(ctx, w, precision, quantizer, importance, None)
    }

    /// A pruned encoder: `w`'s embeddings, norms and biases, and `sparse`'s linears (per
    /// layer Q/K/V, out, up, down, N:M-compressed) in place of `w`'s, run by `kernel`
    /// (`matmul_sparse`, with the bias and GELU epilogues).
    pub fn with_sparse(
        ctx: &Context,
        w: &BertWeights,
        sparse: &[Vec<SparseWeights>],
        kernel: SparseKernel,
    ) -> Result<Self> {
        if sparse.len() != w.layers.len() || sparse.iter().any(|l| l.len() != 4) {
            return Err(LabError::Shape(format!(
                "sparse linears for {} layers (4 each) given to an encoder of {}",
                sparse.len(),
                w.layers.len()
            )));
        }
        if kernel.one_row() {
            return Err(LabError::InvalidArgument(format!(
                "{}: the encoder runs whole batches through matmul_sparse",
                kernel.describe()
            )));
        }
        let format = sparse[0][0].kept.format;
        let precision = Precision::Weights(format);
        Self::build(
            ctx,
            w,
            precision,
            Quantizer::Reference,
            None,
            Some((sparse, kernel)),
        )
    }

    fn build(
        ctx: &Context,
        w: &BertWeights,
        precision: Precision,
        quantizer: Quantizer,
        importance: Option<&Importance>,
        sparse: Option<(&[Vec<SparseWeights>], SparseKernel)>,
    ) -> Result<Self> {
        let c = w.config.clone();
        if quantizer == Quantizer::Imatrix
            && importance.is_none_or(|i| i.layers.len() != w.layers.len())
        {
            return Err(LabError::InvalidArgument(
                "imatrix quantizer: needs the importance of every layer (model::calibrate)".into(),
            ));
        }
        c.check().map_err(LabError::Shape)?;
        let start = Instant::now();
        use Binding::{ReadOnly as R, ReadWrite as W, Uniform as U};
        let build = |spec: PipelineSpec| gpu_pipeline::build(ctx, &spec).map(|(p, _)| p);
        let linear_spec = |f: Option<WeightFormat>, e: Epilogue| -> PipelineSpec<'static> {
            match f {
                None => matmul_i8::matmul_spec(
                    LINEAR_KERNEL,
                    Dot4::best(ctx),
                    precision.int8_scheme().expect("an int8 precision"),
                    e,
                ),
                Some(f) => linear_variant(ctx).spec(f, e),
            }
        };
        // The formats the linears will be stored in (a K-quant falls back per row width).
        let mut formats: Vec<Option<WeightFormat>> = Vec::new();
        for l in &w.layers {
            for k in [l.qkv.k, l.out.k, l.up.k, l.down.k] {
                let f = match precision {
                    Precision::Weights(f) => Some(f.for_row_len(k)),
                    Precision::F16Acc => Some(WeightFormat::F32),
                    Precision::Int8 | Precision::Int8Rot => None,
                };
                if !formats.contains(&f) {
                    formats.push(f);
                }
            }
        }
        let mut linear = Vec::new();
        match sparse {
            None => {
                for &f in &formats {
                    for e in [Epilogue::Bias, Epilogue::BiasGelu] {
                        linear.push(((f, None, e), build(linear_spec(f, e))?));
                    }
                }
            }
            Some((layers, kernel)) => {
                for sw in layers.iter().flatten() {
                    for e in [Epilogue::Bias, Epilogue::BiasGelu] {
                        let key = (Some(sw.kept.format), Some(sw.pattern), e);
                        if !linear.iter().any(|(k, _)| *k == key) {
                            let p =
                                sparse::pipeline_with(ctx, &kernel, sw.kept.format, sw.pattern, e)?;
                            linear.push((key, p.0));
                        }
                    }
                }
            }
        }
        let pipes = Pipelines {
            embed: build(row_spec("bert_embed", vec![U, R, R, R, R, R, R, W]))?,
            add_ln: build(row_spec("bert_add_layernorm", vec![U, R, R, R, W]))?,
            attention: build(PipelineSpec {
                defines: vec![Define::U32("HD4", (c.head_dim() / 4) as u32)],
                ..row_spec("bert_attention", vec![U, R, R, W])
            })?,
            pool: build(row_spec("bert_pool", vec![U, R, R, W]))?,
            linear,
            quantize: match precision.int8_scheme() {
                Some(scheme) => Some(build(matmul_i8::quantize_spec(scheme))?),
                None => None,
            },
        };
        let pipeline_ms = start.elapsed().as_secs_f64() * 1e3;
        let mut layers = Vec::with_capacity(w.layers.len());
        for (i, l) in w.layers.iter().enumerate() {
            let imp = importance.map(|imp| &imp.layers[i]);
            let sp = sparse.map(|(s, _)| &s[i]);
            let up_linear = |lin: &Linear, e: Epilogue, imp: Option<&Vec<f32>>, j: usize| match sp {
                Some(m) => upload_sparse(ctx, lin, &m[j], e),
                None => upload_linear(ctx, lin, precision, e, quantizer, imp.map(|v| v.as_slice())),
            };
            layers.push(GpuLayer {
                qkv: up_linear(&l.qkv, Epilogue::Bias, imp.map(|i| &i.qkv), 0)?,
                out: up_linear(&l.out, Epilogue::Bias, imp.map(|i| &i.out), 1)?,
                ln1: norm_buffers(ctx, &l.ln1)?,
                up: up_linear(&l.up, Epilogue::BiasGelu, imp.map(|i| &i.up), 2)?,
                down: up_linear(&l.down, Epilogue::Bias, imp.map(|i| &i.down), 3)?,
                ln2: norm_buffers(ctx, &l.ln2)?,
            });
        }
        let linear_bytes: u64 = layers
            .iter()
            .map(|l| l.qkv.bytes + l.out.bytes + l.up.bytes + l.down.bytes)
            .sum();
        let h = c.hidden_size;
        let other = (w.word.len() + w.position.len() + w.token_type.len()) * 4
            + (2 + 4 * w.layers.len()) * h * 4
            + w.layers
                .iter()
                .map(|l| (l.qkv.b.len() + l.out.b.len() + l.up.b.len() + l.down.b.len()) * 4)
                .sum::<usize>();
        // The largest activation is the FFN's rows x intermediate: it bounds a pass.
        let limit = ctx.limits().max_storage_buffer_binding_size;
        let max_rows = (limit / (c.intermediate_size.max(3 * h) as u64 * 4)) as usize;
        Ok(Self {
            word: buffers::upload(ctx, "bert.word", &w.word)?,
            position: buffers::upload(ctx, "bert.position", &w.position)?,
            token_type: buffers::upload(ctx, "bert.token_type", &w.token_type)?,
            emb_ln: norm_buffers(ctx, &w.emb_ln)?,
            layers,
            pipes,
            acts: None,
            linear_bytes,
            weight_bytes: linear_bytes + other as u64,
            pipeline_ms,
            max_rows,
            sparse_kernel: sparse.map(|(_, k)| k),
            linear: linear_variant(ctx),
            precision,
            quantizer,
            config: c,
        })
    }

    /// Embeds a batch: one unit-length vector per sequence. Batches with more token rows
    /// than one pass can hold are split by sequences.
    pub fn embed(&mut self, ctx: &Context, batch: &Batch) -> Result<Vec<Vec<f32>>> {
        Ok(self.embed_timed(ctx, batch, None)?.0)
    }

    /// As [`GpuBert::embed`], also returning the GPU time of the passes (ms) and its source.
    pub fn embed_timed(
        &mut self,
        ctx: &Context,
        batch: &Batch,
        timer: Option<&GpuTimer>,
    ) -> Result<(Vec<Vec<f32>>, f64, TimingSource)> {
        if batch.t > self.config.max_position_embeddings {
            return Err(LabError::Shape(format!(
                "sequences of {} tokens exceed the model's {} positions",
                batch.t, self.config.max_position_embeddings
            )));
        }
        if let Some(&id) = batch
            .ids
            .iter()
            .find(|&&i| i as usize >= self.config.vocab_size)
        {
            return Err(LabError::Shape(format!(
                "token id {id} is outside the vocabulary of {}",
                self.config.vocab_size
            )));
        }
        let per_pass = (self.max_rows / batch.t.max(1)).max(1);
        if batch.t > self.max_rows {
            return Err(LabError::OverLimit {
                what: format!("one sequence of {} tokens", batch.t),
                asked: (batch.t * self.config.intermediate_size * 4) as u64,
                limit_name: "max_storage_buffer_binding_size",
                limit: ctx.limits().max_storage_buffer_binding_size,
            });
        }
        let mut out = Vec::with_capacity(batch.b);
        let (mut ms, mut source) = (0.0, TimingSource::GpuTimestamp);
        for s0 in (0..batch.b).step_by(per_pass) {
            let s1 = (s0 + per_pass).min(batch.b);
            let part = Batch {
                b: s1 - s0,
                t: batch.t,
                ids: batch.ids[s0 * batch.t..s1 * batch.t].to_vec(),
                lens: batch.lens[s0..s1].to_vec(),
            };
            let (e, t, src) = self.pass(ctx, &part, timer)?;
            out.extend(e);
            ms += t;
            if src == TimingSource::WallClock {
                source = src;
            }
        }
        Ok((out, ms, source))
    }

    fn ensure_acts(&mut self, ctx: &Context, rows: usize, b: usize) -> Result<()> {
        if self
            .acts
            .as_ref()
            .is_some_and(|a| a.rows >= rows && a.b >= b)
        {
            return Ok(());
        }
        // Grow geometrically so a run of growing batches does not reallocate every time.
        let rows = rows
            .max(self.acts.as_ref().map_or(0, |a| a.rows * 2))
            .min(self.max_rows);
        let b = b.max(self.acts.as_ref().map_or(0, |a| a.b * 2));
        let c = &self.config;
        let (h, f) = (c.hidden_size, c.intermediate_size);
        let st = |label: &str, floats: usize| buffers::storage(ctx, label, (floats * 4) as u64);
        let ids = st("bert.ids", rows)?;
        let lens = st("bert.lens", b)?;
        let params = buffers::uniform(
            ctx,
            "bert.params",
            &<BertParams as bytemuck::Zeroable>::zeroed(),
        )?;
        let x = st("bert.x", rows * h)?;
        let qkv = st("bert.qkv", rows * 3 * h)?;
        let att = st("bert.att", rows * h)?;
        let tmp = st("bert.tmp", rows * h)?;
        let up = st("bert.up", rows * f)?;
        let out = st("bert.out", b * h)?;
        // Sized for the widest linear input (the FFN's in BERT; hidden if it were wider):
        // int8 values four per word, and one scale per row or per 32 values.
        let widest = f.max(h);
        let int8 = match self.precision.int8_scheme() {
            Some(scheme) => {
                let scales = match scheme {
                    Int8Scheme::PerRow => rows,
                    Int8Scheme::Rot32 => rows * widest / 32,
                };
                Some((st("bert.xq", rows * widest / 4)?, st("bert.xs", scales)?))
            }
            None => None,
        };
        let bg = |p: &wgpu::ComputePipeline, label: &str, bufs: &[&wgpu::Buffer]| {
            gpu_pipeline::bind_group(ctx, p, label, bufs)
        };
        let linear = |l: &GpuLinear, input: &wgpu::Buffer, output: &wgpu::Buffer| {
            let pipe = self.pipes.linear(l);
            match (&l.weights, &int8, &self.pipes.quantize) {
                (LinearWeights::Int8 { w, s }, Some((xq, xs)), Some(qp)) => Ok(LinearGroups {
                    quantize: Some(bg(qp, "bert.quantize", &[&l.params, input, xq, xs])?),
                    matmul: bg(
                        pipe,
                        "bert.linear",
                        &[&l.params, xq, xs, w, s, output, &l.bias],
                    )?,
                }),
                (LinearWeights::Sparse { w, s, masks, .. }, _, _) => Ok(LinearGroups {
                    quantize: None,
                    matmul: bg(
                        pipe,
                        "bert.sparse",
                        &[&l.params, input, w, s, output, masks, &l.bias],
                    )?,
                }),
                (LinearWeights::Formatted { w, s, .. }, _, _) => Ok(LinearGroups {
                    quantize: None,
                    matmul: bg(
                        pipe,
                        "bert.linear",
                        &[&l.params, input, w, s, output, &l.bias],
                    )?,
                }),
                _ => Err(LabError::Shape(
                    "int8 weights without int8 pipelines".into(),
                )),
            }
        };
        let mut layers = Vec::with_capacity(self.layers.len());
        for l in &self.layers {
            layers.push(LayerGroups {
                qkv: linear(&l.qkv, &x, &qkv)?,
                attention: bg(
                    &self.pipes.attention,
                    "bert.attention",
                    &[&params, &qkv, &lens, &att],
                )?,
                out: linear(&l.out, &att, &tmp)?,
                ln1: bg(
                    &self.pipes.add_ln,
                    "bert.ln1",
                    &[&params, &tmp, &l.ln1.0, &l.ln1.1, &x],
                )?,
                up: linear(&l.up, &x, &up)?,
                down: linear(&l.down, &up, &tmp)?,
                ln2: bg(
                    &self.pipes.add_ln,
                    "bert.ln2",
                    &[&params, &tmp, &l.ln2.0, &l.ln2.1, &x],
                )?,
            });
        }
        let groups = Groups {
            embed: bg(
                &self.pipes.embed,
                "bert.embed",
                &[
                    &params,
                    &ids,
                    &self.word,
                    &self.position,
                    &self.token_type,
                    &self.emb_ln.0,
                    &self.emb_ln.1,
                    &x,
                ],
            )?,
            layers,
            pool: bg(&self.pipes.pool, "bert.pool", &[&params, &x, &lens, &out])?,
            _int8: int8,
        };
        self.acts = Some(Acts {
            rows,
            b,
            ids,
            lens,
            params,
            out,
            groups,
            _internal: [x, qkv, att, tmp, up],
        });
        Ok(())
    }

    /// One forward pass over a batch that fits the activation buffers.
    fn pass(
        &mut self,
        ctx: &Context,
        batch: &Batch,
        timer: Option<&GpuTimer>,
    ) -> Result<(Vec<Vec<f32>>, f64, TimingSource)> {
        let rows = batch.b * batch.t;
        self.ensure_acts(ctx, rows, batch.b)?;
        let c = &self.config;
        let h = c.hidden_size;
        let acts = self.acts.as_ref().expect("ensure_acts just set it");
        let q = &ctx.queue;
        q.write_buffer(&acts.ids, 0, bytemuck::cast_slice(&batch.ids));
        q.write_buffer(&acts.lens, 0, bytemuck::cast_slice(&batch.lens));
        let params = BertParams {
            rows: rows as u32,
            t: batch.t as u32,
            h: h as u32,
            heads: c.num_attention_heads as u32,
            b: batch.b as u32,
            eps: c.layer_norm_eps as f32,
            _pad: [0; 2],
        };
        q.write_buffer(&acts.params, 0, bytemuck::bytes_of(&params));
        let max = ctx.limits().max_compute_workgroups_per_dimension;
        let int8 = self.precision.int8_scheme();
        let mut grids = Vec::new();
        let mut quantize_grids = Vec::new();
        for l in &self.layers {
            for lin in [&l.qkv, &l.out, &l.up, &l.down] {
                if let (LinearWeights::Sparse { shape, .. }, Some(k)) =
                    (&lin.weights, &self.sparse_kernel)
                {
                    let p = SparseParams::new(k, rows, shape);
                    q.write_buffer(&lin.params, 0, bytemuck::bytes_of(&p));
                    grids.push(dispatch::grid(p.tiles as u64, max)?);
                    continue;
                }
                if let Some(scheme) = int8 {
                    let (tiles_n, tiles) = WqVariant::Regblock(LINEAR_KERNEL).tiles(rows, lin.n);
                    let wgs = matmul_i8::quantize_workgroups(scheme, rows, lin.k);
                    quantize_grids.push(dispatch::grid(wgs, max)?);
                    let p = I8Params {
                        m: rows as u32,
                        n: lin.n as u32,
                        k: lin.k as u32,
                        kp: lin.k as u32,
                        tiles_n: tiles_n as u32,
                        tiles: tiles as u32,
                        _pad: [0; 2],
                    };
                    q.write_buffer(&lin.params, 0, bytemuck::bytes_of(&p));
                    grids.push(dispatch::grid(tiles as u64, max)?);
                } else {
                    let p = WqParams::new(&self.linear, rows, lin.n, lin.k);
                    q.write_buffer(&lin.params, 0, bytemuck::bytes_of(&p));
                    grids.push(dispatch::grid(p.tiles as u64, max)?);
                }
            }
        }
        let row_grid = dispatch::grid(rows as u64, max)?;
        let blocks = batch.t.div_ceil(ROW_WG as usize);
        let att_grid = dispatch::grid((batch.b * c.num_attention_heads * blocks) as u64, max)?;
        let pool_grid = dispatch::grid(batch.b as u64, max)?;
        let pipes = &self.pipes;
        let g = &acts.groups;
        let (ms, source) = timing::time_pass(ctx, timer, "bert", |pass| {
            let mut run = |p: &wgpu::ComputePipeline, bgr: &wgpu::BindGroup, grid: (u32, u32)| {
                pass.set_pipeline(p);
                pass.set_bind_group(0, bgr, &[]);
                pass.dispatch_workgroups(grid.0, grid.1, 1);
            };
            run(&pipes.embed, &g.embed, row_grid);
            let mut gi = grids.iter();
            let mut qi = quantize_grids.iter();
            for (lg, l) in g.layers.iter().zip(&self.layers) {
                let linears = [
                    (&lg.qkv, &l.qkv),
                    (&lg.out, &l.out),
                    (&lg.up, &l.up),
                    (&lg.down, &l.down),
                ];
                for (i, (groups, lin)) in linears.into_iter().enumerate() {
                    let grid = *gi.next().expect("one grid per linear");
                    if let (Some(qg), Some(qp)) = (&groups.quantize, &pipes.quantize) {
                        run(
                            qp,
                            qg,
                            *qi.next().expect("one quantize grid per int8 linear"),
                        );
                    }
                    let pipe = pipes.linear(lin);
                    run(pipe, &groups.matmul, grid);
                    match i {
                        0 => run(&pipes.attention, &lg.attention, att_grid),
                        1 => run(&pipes.add_ln, &lg.ln1, row_grid),
                        3 => run(&pipes.add_ln, &lg.ln2, row_grid),
                        _ => {}
                    }
                }
            }
            run(&pipes.pool, &g.pool, pool_grid);
        })?;
        let flat: Vec<f32> = buffers::read(ctx, &acts.out, batch.b * h)?;
        Ok((flat.chunks(h).map(|r| r.to_vec()).collect(), ms, source))
    }
}
