//! Activation importance for quantizing a llama model (`--quantizer imatrix`): the CPU twin
//! runs a committed calibration text (`tests/data/llama/calibration.txt`: dialogue, a
//! recipe, code, SQL, numbers, a little French, German and Spanish) and, for every linear
//! layer, records the mean square of each input column over its tokens — llama.cpp's
//! `llama-imatrix`, for this decoder. The text shares nothing with the evaluation passage
//! (`bench::llm::DEFAULT_TEXT`), so accuracy is never measured on what the quantizer saw.

use crate::error::{LabError, Result};
use crate::formats::llama::{LlamaImportance, LlamaWeights, MatrixInput};
use crate::model::llama::tokenize::LlamaTokenizer;
use crate::reference::llama::LlamaCpu;

/// The committed calibration text.
pub const CALIBRATION_TEXT: &str = include_str!("../../../tests/data/llama/calibration.txt");

/// Calibration runs in independent contexts of this many tokens (llama-imatrix's chunks):
/// the twin's attention costs the square of a context's length.
pub const CHUNK: usize = 256;

/// Runs the CPU twin of `w` over `tokens` (in contexts of [`CHUNK`]) and averages each
/// linear input's squares per column.
pub fn importance(w: &LlamaWeights, tokens: &[u32]) -> Result<LlamaImportance> {
    let c = &w.config;
    if tokens.is_empty() {
        return Err(LabError::InvalidArgument(
            "calibration needs at least one token".into(),
        ));
    }
    let twin = LlamaCpu::new(w);
    let (d, f) = (c.dim, c.ffn_dim);
    let zero = |n: usize| vec![0f64; n];
    let mut layers: Vec<[Vec<f64>; 4]> = (0..c.layers)
        .map(|_| [zero(d), zero(d), zero(d), zero(f)])
        .collect();
    let mut output = zero(d);
    let mut observe = |layer: usize, site: MatrixInput, x: &[f32]| {
        let acc = match site.slot() {
            Some(slot) => &mut layers[layer][slot],
            None => &mut output,
        };
        for row in x.chunks_exact(acc.len()) {
            for (a, v) in acc.iter_mut().zip(row) {
                *a += (*v as f64).powi(2);
            }
        }
    };
    for chunk in tokens.chunks(CHUNK.min(c.context)) {
        let mut cache = twin.cache(chunk.len());
        twin.forward_observed(&mut cache, chunk, &mut observe)?;
    }
    let n = tokens.len() as f64;
    let mean = |v: &[f64]| v.iter().map(|s| (s / n) as f32).collect::<Vec<f32>>();
    Ok(LlamaImportance {
        layers: layers
            .iter()
            .map(|[a, o, f, d]| [mean(a), mean(o), mean(f), mean(d)])
            .collect(),
        output: mean(&output),
        tokens: tokens.len(),
    })
}

/// [`importance`] over [`CALIBRATION_TEXT`], tokenized with the model's tokenizer.
pub fn calibrate(w: &LlamaWeights, tok: &LlamaTokenizer) -> Result<LlamaImportance> {
    importance(w, &tok.encode(CALIBRATION_TEXT)?)
}
