//! A BERT checkpoint as data: its config (`config.json`), its weights (`model.safetensors`)
//! and a tokenized batch. Shared by the GPU encoder (`model::bert`) and its CPU twin
//! (`reference::bert`), so it lives below both.

pub mod config;
pub mod weights;

pub use config::BertConfig;
pub use weights::BertWeights;

/// A padded batch of token sequences: `b` sequences of up to `t` tokens, row-major
/// (`ids[s * t + i]`), right-padded with 0; `lens[s]` tokens of sequence `s` are real.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Sequences.
    pub b: usize,
    /// Padded length.
    pub t: usize,
    /// b x t token ids.
    pub ids: Vec<u32>,
    /// Real tokens per sequence (>= 1).
    pub lens: Vec<u32>,
}

impl Batch {
    /// Builds a batch from token sequences (each non-empty), padding to the longest.
    pub fn from_sequences(seqs: &[Vec<u32>]) -> crate::Result<Self> {
        let t = seqs.iter().map(|s| s.len()).max().unwrap_or(0);
        if seqs.is_empty() || seqs.iter().any(|s| s.is_empty()) {
            return Err(crate::LabError::Shape(
                "a batch needs at least one sequence, each with at least one token".into(),
            ));
        }
        let mut ids = vec![0u32; seqs.len() * t];
        for (i, s) in seqs.iter().enumerate() {
            ids[i * t..i * t + s.len()].copy_from_slice(s);
        }
        Ok(Self {
            b: seqs.len(),
            t,
            ids,
            lens: seqs.iter().map(|s| s.len() as u32).collect(),
        })
    }

    /// Real (unpadded) tokens in the batch.
    pub fn tokens(&self) -> usize {
        self.lens.iter().map(|&l| l as usize).sum()
    }
}
