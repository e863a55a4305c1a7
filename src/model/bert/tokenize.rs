//! Text to token ids with the model's own `tokenizer.json` (the Hugging Face `tokenizers`
//! crate, the same implementation sentence-transformers runs), truncated to the model's
//! `max_seq_length` and padded per batch as sentence-transformers does.

use std::path::Path;

use crate::error::{LabError, Result};
use crate::formats::bert::Batch;

/// sentence-transformers' default when `sentence_bert_config.json` does not say.
pub const DEFAULT_MAX_SEQ: usize = 256;

/// The model's tokenizer with sentence-transformers' settings.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// Longest sequence kept, in tokens (special tokens included).
    pub max_seq: usize,
}

/// A tokenized batch and what happened to each text.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The padded batch.
    pub batch: Batch,
    /// Per text: it was longer than `max_seq` tokens and was cut.
    pub truncated: Vec<bool>,
}

impl Tokenizer {
    /// Loads `tokenizer.json` from a model folder; `max_seq_length` comes from
    /// `sentence_bert_config.json` when present, capped at `max_positions`.
    pub fn from_dir(dir: &Path, max_positions: usize) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        // The tokenizers crate panics on a JSON syntax error inside the `decoder` value (an
        // `expect` in its decoder deserializer: found by the `bert` fuzz target,
        // tests/data/fuzz/bert/), so the file's syntax is checked here first; any other
        // panic of the crate becomes an error too instead of ending the process.
        let bytes = std::fs::read(&path).map_err(|source| LabError::Io {
            path: path.clone(),
            source,
        })?;
        // Whole-file checks: UTF-8 (a key with a stray byte reached the same expect) and a
        // full JSON parse (numbers in range, nesting within serde_json's limit).
        let text = std::str::from_utf8(&bytes).map_err(|e| LabError::Model {
            path: path.clone(),
            message: format!("not UTF-8 text: {e}"),
        })?;
        if let Err(e) = serde_json::from_str::<serde_json::Value>(text) {
            return Err(LabError::Model {
                path: path.clone(),
                message: format!("not valid JSON: {e}"),
            });
        }
        let loaded = std::panic::catch_unwind(|| text.parse::<tokenizers::Tokenizer>());
        let mut inner = match loaded {
            Ok(r) => r.map_err(|e| LabError::Model {
                path: path.clone(),
                message: format!("cannot load the tokenizer: {e}"),
            })?,
            Err(panic) => {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "no message".into());
                return Err(LabError::Model {
                    path: path.clone(),
                    message: format!(
                        "cannot load the tokenizer: the tokenizers crate panicked on it ({why})"
                    ),
                });
            }
        };
        let max_seq = std::fs::read_to_string(dir.join("sentence_bert_config.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["max_seq_length"].as_u64())
            .map_or(DEFAULT_MAX_SEQ, |v| v as usize)
            .min(max_positions);
        // tokenizer.json may carry fixed padding (all-MiniLM-L6-v2's pads to 128): padding
        // is per batch here, and truncation is the model's max_seq_length.
        inner.with_padding(None);
        inner
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: max_seq,
                ..Default::default()
            }))
            .map_err(|e| LabError::Model {
                path: path.clone(),
                message: format!("cannot set truncation: {e}"),
            })?;
        Ok(Self { inner, max_seq })
    }

    /// Token ids of one text, special tokens included.
    pub fn encode(&self, text: &str) -> Result<(Vec<u32>, bool)> {
        let enc = self.inner.encode(text, true).map_err(|e| LabError::Model {
            path: "tokenizer.json".into(),
            message: format!("cannot tokenize {text:?}: {e}"),
        })?;
        Ok((enc.get_ids().to_vec(), !enc.get_overflowing().is_empty()))
    }

    /// Tokenizes texts into one padded batch. Empty (or whitespace-only) texts are refused:
    /// there is nothing to embed.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Encoded> {
        if texts.is_empty() {
            return Err(LabError::Shape("no text to embed".into()));
        }
        if let Some(i) = texts.iter().position(|t| t.trim().is_empty()) {
            return Err(LabError::Shape(format!(
                "text #{} is empty; give at least one word",
                i + 1
            )));
        }
        let mut seqs = Vec::with_capacity(texts.len());
        let mut truncated = Vec::with_capacity(texts.len());
        for t in texts {
            let (ids, cut) = self.encode(t)?;
            seqs.push(ids);
            truncated.push(cut);
        }
        Ok(Encoded {
            batch: Batch::from_sequences(&seqs)?,
            truncated,
        })
    }
}
