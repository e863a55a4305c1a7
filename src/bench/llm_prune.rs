//! Accuracy of a pruned decoder per precision x sparsity x method (issue 23): each method
//! prunes the file's decoder linears once per pattern (`model::llama::prune`, calibrated on
//! the committed calibration text), then each precision stores them as a sparse run would
//! (N:M compressed, kept values quantized over themselves; unstructured as masked dense),
//! and the CPU twin holding exactly those values is scored over the evaluation passage:
//! perplexity, its ratio to the dense row of the same precision, KLD from and top-1
//! agreement with the dense f32 twin.
//!
//! The twin measures what the stored values cost, apart from any kernel; the sparse
//! kernels are validated against the same values separately (`tests/sparse.rs`).
//!
//! With a GPU context, each row also runs on the GPU decoder as stored: N:M rows through
//! the sparse kernels (`GpuLlama::new_sparse`), unstructured rows as masked dense weights
//! through the dense kernels, dense rows as `llm-bench` runs them. Their perplexity over
//! the same passage (the kernels' error on top of the twin's) and pp / tg tokens/s.

use serde::Serialize;

use crate::bench::llm::{capacity, gpu_figures, kernels_for, teacher, twin_accuracy, SpeedRuns};
use crate::bench::tune::Tuned;
use crate::error::Result;
use crate::formats::llama::{KvPrecision, LlamaWeights, LlmPrecision};
use crate::formats::sparse::{SparseWeights, Sparsity};
use crate::formats::weights::WeightFormat;
use crate::gpu::Context;
use crate::model::llama::gpu::{GpuLlama, SparseLinears};
use crate::model::llama::prune::{prune_llama, PrunedLlama};
use crate::prune::Method;

/// What to measure.
#[derive(Debug, Clone)]
pub struct PruneRequest {
    /// Storage formats of the rows.
    pub precisions: Vec<WeightFormat>,
    /// Patterns (a dense row per precision comes first in any case).
    pub sparsity: Vec<Sparsity>,
    /// Methods.
    pub methods: Vec<Method>,
    /// Evaluation text, tokenized.
    pub text: Vec<u32>,
    /// Calibration text, tokenized (shares nothing with `text`).
    pub calibration: Vec<u32>,
    /// The GPU columns (None: the CPU twin only).
    pub gpu: Option<PruneGpu>,
}

/// How the GPU columns run.
#[derive(Debug, Clone)]
pub struct PruneGpu {
    /// The speed tests.
    pub runs: SpeedRuns,
    /// The tune cache's entries for this adapter (decode GEMVs, sparse kernels).
    pub tuned: Tuned,
    /// Teacher-force the GPU decoder over the passage for its perplexity (the slow part on
    /// a CPU adapter: a prefill of the whole passage per row).
    pub accuracy: bool,
}

/// One row: a precision at a pattern, pruned by a method.
#[derive(Debug, Clone, Serialize)]
pub struct PruneRow {
    /// Storage format of the matrices.
    pub precision: String,
    /// `dense`, `N:M` or `u<percent>`.
    pub sparsity: String,
    /// The method (None on dense rows).
    pub prune: Option<String>,
    /// Perplexity over the passage.
    pub perplexity: Option<f64>,
    /// perplexity / the dense row's of the same precision.
    pub perplexity_ratio: Option<f64>,
    /// Mean KLD from the dense f32 twin.
    pub kld_mean: Option<f64>,
    /// Fraction of positions whose argmax matches the dense f32 twin's.
    pub top1_agreement: Option<f64>,
    /// Bytes of the decoder linears as stored (N:M: compressed, masks included).
    pub weight_bytes: Option<u64>,
    /// Those bytes in bits per weight.
    pub bits_per_weight: Option<f64>,
    /// Wall time of the pruning, s.
    pub prune_s: Option<f64>,
    /// Calibration tokens the method saw.
    pub calibration_tokens: Option<usize>,
    /// Why the row did not run.
    pub skipped: Option<String>,
    /// The GPU decoder's perplexity over the passage (the stored values through the GPU
    /// kernels: the twin's `perplexity` plus the kernels' own error).
    pub gpu_perplexity: Option<f64>,
    /// GPU prompt processing, tokens/s (median).
    pub pp_tok_s: Option<f64>,
    /// GPU token generation, tokens/s (median).
    pub tg_tok_s: Option<f64>,
    /// The slowest and fastest timed generation runs, tokens/s.
    pub tg_tok_s_range: Option<[f64; 2]>,
    /// tg_tok_s / the dense row's of the same precision.
    pub tg_vs_dense: Option<f64>,
    /// Bytes of weights resident on the GPU (every matrix as the kernels read it, masks
    /// included, norms and the embedding).
    pub gpu_weight_bytes: Option<u64>,
    /// The decode steps' kernel for the linears, `(tuned)` when from the tune cache.
    pub decode_kernel: Option<String>,
    /// Why the GPU columns are empty.
    pub gpu_skipped: Option<String>,
}

impl PruneRow {
    fn new(precision: WeightFormat, sparsity: Sparsity, method: Option<Method>) -> Self {
        Self {
            precision: precision.name().into(),
            sparsity: sparsity.to_string(),
            prune: method.map(|m| m.name().into()),
            perplexity: None,
            perplexity_ratio: None,
            kld_mean: None,
            top1_agreement: None,
            weight_bytes: None,
            bits_per_weight: None,
            prune_s: None,
            calibration_tokens: None,
            skipped: None,
            gpu_perplexity: None,
            pp_tok_s: None,
            tg_tok_s: None,
            tg_tok_s_range: None,
            tg_vs_dense: None,
            gpu_weight_bytes: None,
            decode_kernel: None,
            gpu_skipped: None,
        }
    }
}

/// A row's weights on the GPU: dense (at the precision, or masked dense for unstructured
/// sparsity), or with N:M-compressed linears.
struct GpuModel<'a> {
    weights: &'a LlamaWeights,
    /// The dense model at the row's precision (its decode kernel choice).
    dense: &'a LlamaWeights,
    sparse: Option<&'a Vec<Vec<SparseWeights>>>,
    format: WeightFormat,
}

/// Fills the row's GPU columns, or says why they are empty.
fn gpu_columns(
    ctx: &Context,
    g: &PruneGpu,
    m: GpuModel,
    text: &[u32],
    teacher: &[Vec<f64>],
    row: &mut PruneRow,
) {
    let mut run = || -> Result<()> {
        let (kernels, mut name) = kernels_for(
            ctx,
            m.dense,
            &g.tuned,
            KvPrecision::F32,
            LlmPrecision::Format(m.format),
        );
        let text = if g.accuracy { text } else { &text[..0] };
        let cap = capacity(text, g.runs, m.weights.config.context);
        let mut gpu = match m.sparse {
            None => GpuLlama::new(ctx, m.weights, cap, kernels)?,
            Some(layers) => {
                let (decode, tuned_decode) =
                    crate::bench::sparse::kernel_for_layers(ctx, &g.tuned, layers, 1)?;
                let (prefill, _) =
                    crate::bench::sparse::kernel_for_layers(ctx, &g.tuned, layers, g.runs.pp)?;
                name = format!(
                    "{}{}",
                    decode.describe(),
                    if tuned_decode { " (tuned)" } else { "" }
                );
                let sparse = SparseLinears {
                    layers: layers.clone(),
                    decode,
                    prefill,
                };
                GpuLlama::new_sparse(ctx, m.weights, &sparse, cap, kernels)?
            }
        };
        let f = gpu_figures(ctx, &mut gpu, text, g.runs, teacher)?;
        if g.accuracy {
            row.gpu_perplexity = Some(f.acc.perplexity);
        }
        row.pp_tok_s = Some(f.pp.median);
        row.tg_tok_s = Some(f.tg.median);
        row.tg_tok_s_range = Some([f.tg.min, f.tg.max]);
        row.gpu_weight_bytes = Some(gpu.weight_bytes);
        row.decode_kernel = Some(name);
        Ok(())
    };
    if let Err(e) = run() {
        row.gpu_skipped = Some(e.to_string());
    }
}

/// Weights in the pruned linears of `w`.
fn linear_weights(w: &LlamaWeights) -> usize {
    w.layers
        .iter()
        .map(|l| {
            [&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down]
                .iter()
                .map(|m| m.n * m.k)
                .sum::<usize>()
        })
        .sum()
}

/// Runs every row; `progress` hears each finished row.
pub fn run(
    ctx: Option<&Context>,
    file: &LlamaWeights,
    req: &PruneRequest,
    progress: &mut dyn FnMut(&PruneRow),
) -> Result<Vec<PruneRow>> {
    let gpu = ctx.zip(req.gpu.as_ref());
    let teacher = teacher(file, &req.text)?;
    let nweights = linear_weights(file) as f64;
    let mut rows = Vec::new();
    let mut dense_ppl = Vec::new();
    let mut dense_models = Vec::new();
    for &format in &req.precisions {
        let w = file.at_precision(LlmPrecision::Format(format))?;
        let bytes: u64 = w
            .layers
            .iter()
            .flat_map(|l| [&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down])
            .map(|m| m.bytes.len() as u64)
            .sum();
        let (ppl, kld, top1) = twin_accuracy(&w, &req.text, &teacher)?;
        let mut row = PruneRow::new(format, Sparsity::Dense, None);
        row.perplexity = Some(ppl);
        row.perplexity_ratio = Some(1.0);
        row.kld_mean = Some(kld);
        row.top1_agreement = Some(top1);
        row.weight_bytes = Some(bytes);
        row.bits_per_weight = Some(bytes as f64 * 8.0 / nweights);
        if let Some((ctx, g)) = gpu {
            let m = GpuModel {
                weights: &w,
                dense: &w,
                sparse: None,
                format,
            };
            gpu_columns(ctx, g, m, &req.text, &teacher, &mut row);
            row.tg_vs_dense = row.tg_tok_s.map(|_| 1.0);
        }
        progress(&row);
        rows.push(row);
        dense_ppl.push(ppl);
        dense_models.push(w);
    }
    for &method in &req.methods {
        for &sparsity in req.sparsity.iter().filter(|s| **s != Sparsity::Dense) {
            let pruned: std::result::Result<PrunedLlama, String> =
                prune_llama(file, method, sparsity, &req.calibration).map_err(|e| e.to_string());
            for (i, &format) in req.precisions.iter().enumerate() {
                let mut row = PruneRow::new(format, sparsity, Some(method));
                match &pruned {
                    Err(why) => row.skipped = Some(why.clone()),
                    Ok(p) => {
                        row.prune_s = Some(p.seconds);
                        row.calibration_tokens = Some(p.calibration_tokens);
                        match p.weights(file, format) {
                            Err(e) => row.skipped = Some(e.to_string()),
                            Ok(pw) => {
                                let (w, bytes) = (&pw.weights, pw.bytes);
                                let (ppl, kld, top1) = twin_accuracy(w, &req.text, &teacher)?;
                                row.perplexity = Some(ppl);
                                row.perplexity_ratio = Some(ppl / dense_ppl[i]);
                                row.kld_mean = Some(kld);
                                row.top1_agreement = Some(top1);
                                row.weight_bytes = Some(bytes);
                                row.bits_per_weight = Some(bytes as f64 * 8.0 / nweights);
                                if let Some((ctx, g)) = gpu {
                                    let m = GpuModel {
                                        weights: w,
                                        dense: &dense_models[i],
                                        sparse: pw.sparse.as_ref(),
                                        format,
                                    };
                                    gpu_columns(ctx, g, m, &req.text, &teacher, &mut row);
                                    let dense_tg = rows[i].tg_tok_s;
                                    row.tg_vs_dense =
                                        row.tg_tok_s.zip(dense_tg).map(|(s, d)| s / d);
                                }
                            }
                        }
                    }
                }
                progress(&row);
                rows.push(row);
            }
        }
    }
    Ok(rows)
}
