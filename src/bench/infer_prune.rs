//! The pruned encoder's accuracy (issue 23): all-MiniLM-L6-v2's linears pruned by each
//! method to each pattern (`model::bert::prune`, calibrated on
//! `model::bert::calibrate::CALIBRATION`), stored at each precision as a sparse run would,
//! and the CPU twin holding exactly those values embeds the accuracy sentences
//! ([`SENTENCES`]); cosine to the dense f32 twin's embeddings, minimum and mean.
//!
//! With a GPU context each row also runs on the GPU encoder as stored (N:M through
//! `matmul_sparse`, unstructured as masked dense, dense rows through the dense kernels):
//! its minimum cosine to the same reference and its GPU time per batch.

use serde::Serialize;

use crate::bench::infer::{cosine, SENTENCES};
use crate::bench::tune::Tuned;
use crate::error::Result;
use crate::formats::bert::{Batch, BertWeights};
use crate::formats::precision::Precision;
use crate::formats::sparse::{SparseWeights, Sparsity};
use crate::formats::weights::{WeightFormat, Weights};
use crate::gpu::timing::GpuTimer;
use crate::gpu::Context;
use crate::model::bert::calibrate::CALIBRATION;
use crate::model::bert::gpu::GpuBert;
use crate::model::bert::prune::prune_bert;
use crate::model::bert::tokenize::Tokenizer;
use crate::prune::Method;
use crate::reference::bert;
use crate::stats::Summary;

/// One row: a precision at a pattern, pruned by a method.
#[derive(Debug, Clone, Serialize)]
pub struct EncoderPruneRow {
    /// Storage format of the linears.
    pub precision: String,
    /// `dense`, `N:M` or `u<percent>`.
    pub sparsity: String,
    /// The method (None on dense rows).
    pub prune: Option<String>,
    /// Lowest cosine to the dense f32 twin over the sentences.
    pub min_cosine: Option<f64>,
    /// Mean cosine.
    pub mean_cosine: Option<f64>,
    /// Bytes of the linears as stored (N:M: compressed, masks included).
    pub weight_bytes: Option<u64>,
    /// Wall time of the pruning, s.
    pub prune_s: Option<f64>,
    /// Why the row did not run.
    pub skipped: Option<String>,
    /// The GPU encoder's lowest cosine to the dense f32 twin (the stored values through
    /// the GPU kernels).
    pub gpu_min_cosine: Option<f64>,
    /// The GPU encoder's sentences/s on the accuracy batch (median of GPU-timed passes).
    pub gpu_sentences_per_s: Option<f64>,
    /// The linears' kernel on the GPU.
    pub gpu_kernel: Option<String>,
    /// Why the GPU columns are empty.
    pub gpu_skipped: Option<String>,
}

/// The GPU columns' settings: the adapter and its tune-cache entries (sparse kernels).
pub struct EncoderGpu<'a> {
    /// The adapter.
    pub ctx: &'a Context,
    /// The tune cache's entries for it.
    pub tuned: &'a Tuned,
    /// Timed passes per row.
    pub repeat: usize,
}

/// Runs `w` (or its N:M linears `sparse`) at `format` on the GPU over `batch`; fills the
/// row's GPU columns or says why they are empty.
fn gpu_columns(
    g: &EncoderGpu,
    w: &BertWeights,
    sparse: Option<&Vec<Vec<SparseWeights>>>,
    format: WeightFormat,
    batch: &Batch,
    reference: &[Vec<f32>],
    r: &mut EncoderPruneRow,
) {
    let run = || -> Result<(f64, f64, String)> {
        let ctx = g.ctx;
        let (mut gpu, name) = match sparse {
            None => (
                GpuBert::new(ctx, w, Precision::Weights(format))?,
                "matmul-wq".to_string(),
            ),
            Some(layers) => {
                let rows = batch.b * batch.t;
                let (k, tuned) =
                    crate::bench::sparse::kernel_for_layers(ctx, g.tuned, layers, rows)?;
                let name = format!("{}{}", k.describe(), if tuned { " (tuned)" } else { "" });
                (GpuBert::with_sparse(ctx, w, layers, k)?, name)
            }
        };
        let got = gpu.embed(ctx, batch)?;
        let min = got
            .iter()
            .zip(reference)
            .map(|(a, b)| cosine(a, b))
            .fold(f64::INFINITY, f64::min);
        let timer = GpuTimer::new(ctx);
        let mut ms = Vec::new();
        for _ in 0..g.repeat.max(1) {
            ms.push(gpu.embed_timed(ctx, batch, timer.as_ref())?.1);
        }
        let median = Summary::of(&ms).expect("at least one run").median;
        Ok((min, batch.b as f64 / (median / 1e3), name))
    };
    match run() {
        Ok((min, sps, name)) => {
            r.gpu_min_cosine = Some(min);
            r.gpu_sentences_per_s = Some(sps);
            r.gpu_kernel = Some(name);
        }
        Err(e) => r.gpu_skipped = Some(e.to_string()),
    }
}

fn cosines(
    w: &BertWeights,
    reference: &[Vec<f32>],
    batch: &crate::formats::bert::Batch,
) -> Result<(f64, f64)> {
    let got = bert::forward(w, batch)?;
    let c: Vec<f64> = got
        .iter()
        .zip(reference)
        .map(|(a, b)| cosine(a, b))
        .collect();
    Ok((
        c.iter().copied().fold(f64::INFINITY, f64::min),
        c.iter().sum::<f64>() / c.len() as f64,
    ))
}

/// The dense linears of `w` as `format` stores them, decoded back; and their bytes.
fn dense_at(w: &BertWeights, format: WeightFormat) -> Result<(BertWeights, u64)> {
    let mut out = w.clone();
    let mut bytes = 0u64;
    for l in &mut out.layers {
        for lin in [&mut l.qkv, &mut l.out, &mut l.up, &mut l.down] {
            let d = Weights::encode(format, lin.n, lin.k, &lin.w)?;
            bytes += d.bytes.len() as u64;
            lin.w = d.dequantize_cols(lin.k);
        }
    }
    Ok((out, bytes))
}

/// Every row: a dense row per precision, then per method and pattern one per precision.
pub fn run(
    gpu: Option<&EncoderGpu>,
    w: &BertWeights,
    tok: &Tokenizer,
    precisions: &[WeightFormat],
    sparsity: &[Sparsity],
    methods: &[Method],
) -> Result<Vec<EncoderPruneRow>> {
    let batch = tok.encode_batch(&SENTENCES)?.batch;
    let calibration = tok.encode_batch(&CALIBRATION)?.batch;
    let reference = bert::forward(w, &batch)?;
    let row = |format: WeightFormat, s: Sparsity, m: Option<Method>| EncoderPruneRow {
        precision: format.name().into(),
        sparsity: s.to_string(),
        prune: m.map(|m| m.name().into()),
        min_cosine: None,
        mean_cosine: None,
        weight_bytes: None,
        prune_s: None,
        skipped: None,
        gpu_min_cosine: None,
        gpu_sentences_per_s: None,
        gpu_kernel: None,
        gpu_skipped: None,
    };
    let mut rows = Vec::new();
    for &format in precisions {
        let mut r = row(format, Sparsity::Dense, None);
        match dense_at(w, format) {
            Ok((d, bytes)) => {
                let (min, mean) = cosines(&d, &reference, &batch)?;
                r.min_cosine = Some(min);
                r.mean_cosine = Some(mean);
                r.weight_bytes = Some(bytes);
                if let Some(g) = gpu {
                    gpu_columns(g, w, None, format, &batch, &reference, &mut r);
                }
            }
            Err(e) => r.skipped = Some(e.to_string()),
        }
        rows.push(r);
    }
    for &method in methods {
        for &s in sparsity.iter().filter(|s| **s != Sparsity::Dense) {
            let pruned = prune_bert(w, method, s, &calibration).map_err(|e| e.to_string());
            for &format in precisions {
                let mut r = row(format, s, Some(method));
                match &pruned {
                    Err(why) => r.skipped = Some(why.clone()),
                    Ok(p) => {
                        r.prune_s = Some(p.seconds);
                        match p.weights(w, format) {
                            Err(e) => r.skipped = Some(e.to_string()),
                            Ok(pe) => {
                                let (min, mean) = cosines(&pe.weights, &reference, &batch)?;
                                r.min_cosine = Some(min);
                                r.mean_cosine = Some(mean);
                                r.weight_bytes = Some(pe.bytes);
                                if let Some(g) = gpu {
                                    let sp = pe.sparse.as_ref();
                                    gpu_columns(
                                        g,
                                        &pe.weights,
                                        sp,
                                        format,
                                        &batch,
                                        &reference,
                                        &mut r,
                                    );
                                }
                            }
                        }
                    }
                }
                rows.push(r);
            }
        }
    }
    Ok(rows)
}
