//! Activation importance for quantization (`formats::quant_search`, `--quantizer imatrix`):
//! the CPU twin runs a fixed set of calibration sentences and, for every linear layer,
//! records the mean square of each input column over the real tokens (padding excluded).
//! Columns that meet large activations weigh more, so the quantizer puts its error where
//! the activations are small — llama.cpp's importance matrix, for this encoder.
//!
//! The calibration text is none of the accuracy sentences (`bench::infer::SENTENCES`) nor
//! the test fixtures', so accuracy is never measured on what the quantizer was fitted to.

use crate::error::Result;
use crate::formats::bert::{Batch, BertWeights};
use crate::model::bert::tokenize::Tokenizer;
use crate::reference::bert::{self, LinearSite};

/// Calibration sentences: varied topics, lengths, punctuation, a little non-English.
pub const CALIBRATION: [&str; 16] = [
    "A man is playing a guitar on the street corner.",
    "The stock market fell sharply on Monday after the announcement.",
    "How do I reset my password if I no longer have access to my email?",
    "She sells seashells by the seashore.",
    "Neural networks learn representations from large amounts of data.",
    "It rained all day, so we stayed inside and read books by the fire.",
    "Please turn off the lights when you leave the room.",
    "Quantum computers use qubits instead of classical bits.",
    "The recipe calls for two cups of flour, one egg and a pinch of salt.",
    "Our flight was delayed by three hours because of the storm.",
    "Der Hund schläft auf dem Sofa.",
    "Version 2.4.1 fixes a crash when the file path contains spaces.",
    "Why is the sky blue?",
    "The museum's new exhibition explores the history of early photography.",
    "He scored twice in the second half, and the crowd went wild!",
    "Regular exercise and a balanced diet reduce the risk of heart disease.",
];

/// Per-column mean squares of each linear layer's input.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerImportance {
    /// Input of the fused Q/K/V projection (hidden values).
    pub qkv: Vec<f32>,
    /// Input of the attention output projection (hidden values).
    pub out: Vec<f32>,
    /// Input of the FFN up-projection (hidden values).
    pub up: Vec<f32>,
    /// Input of the FFN down-projection (intermediate values).
    pub down: Vec<f32>,
}

/// Importance of every layer's linear inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Importance {
    /// One entry per encoder layer.
    pub layers: Vec<LayerImportance>,
    /// Real tokens the means are over.
    pub tokens: usize,
}

/// Runs the CPU twin on `batch` and averages each linear input's squares per column over
/// the batch's real tokens.
pub fn importance(w: &BertWeights, batch: &Batch) -> Result<Importance> {
    let (h, f) = (w.config.hidden_size, w.config.intermediate_size);
    let zero = |n: usize| vec![0f64; n];
    let mut sums: Vec<[Vec<f64>; 4]> = (0..w.layers.len())
        .map(|_| [zero(h), zero(h), zero(h), zero(f)])
        .collect();
    let real = |row: usize| (row % batch.t) < batch.lens[row / batch.t] as usize;
    bert::forward_observed(w, batch, &mut |layer, site, x| {
        let slot = match site {
            LinearSite::Qkv => 0,
            LinearSite::Out => 1,
            LinearSite::Up => 2,
            LinearSite::Down => 3,
        };
        let acc = &mut sums[layer][slot];
        let rows = x.chunks_exact(acc.len()).enumerate();
        for (_, row) in rows.filter(|(r, _)| real(*r)) {
            for (a, v) in acc.iter_mut().zip(row) {
                *a += (*v as f64).powi(2);
            }
        }
    })?;
    let tokens = batch.tokens();
    let mean = |v: &Vec<f64>| v.iter().map(|s| (s / tokens as f64) as f32).collect();
    Ok(Importance {
        layers: sums
            .iter()
            .map(|[q, o, u, d]| LayerImportance {
                qkv: mean(q),
                out: mean(o),
                up: mean(u),
                down: mean(d),
            })
            .collect(),
        tokens,
    })
}

/// [`importance`] over [`CALIBRATION`], tokenized with the model's tokenizer.
pub fn calibrate(w: &BertWeights, tok: &Tokenizer) -> Result<Importance> {
    importance(w, &tok.encode_batch(&CALIBRATION)?.batch)
}
