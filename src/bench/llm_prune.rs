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

use serde::Serialize;

use crate::bench::llm::{teacher, twin_accuracy};
use crate::error::Result;
use crate::formats::llama::{LlamaWeights, LlmPrecision};
use crate::formats::sparse::Sparsity;
use crate::formats::weights::WeightFormat;
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
        }
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
    file: &LlamaWeights,
    req: &PruneRequest,
    progress: &mut dyn FnMut(&PruneRow),
) -> Result<Vec<PruneRow>> {
    let teacher = teacher(file, &req.text)?;
    let nweights = linear_weights(file) as f64;
    let mut rows = Vec::new();
    let mut dense_ppl = Vec::new();
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
        progress(&row);
        rows.push(row);
        dense_ppl.push(ppl);
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
                            Ok((w, bytes)) => {
                                let (ppl, kld, top1) = twin_accuracy(&w, &req.text, &teacher)?;
                                row.perplexity = Some(ppl);
                                row.perplexity_ratio = Some(ppl / dense_ppl[i]);
                                row.kld_mean = Some(kld);
                                row.top1_agreement = Some(top1);
                                row.weight_bytes = Some(bytes);
                                row.bits_per_weight = Some(bytes as f64 * 8.0 / nweights);
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
