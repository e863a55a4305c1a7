//! The BERT hyper-parameters, read from a Hugging Face `config.json`.

use std::path::Path;

use serde::Deserialize;

use crate::error::{LabError, Result};

/// What the encoder's shapes depend on.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Hidden width.
    pub hidden_size: usize,
    /// Encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads (hidden_size / heads = head width).
    pub num_attention_heads: usize,
    /// FFN width.
    pub intermediate_size: usize,
    /// Position embeddings.
    pub max_position_embeddings: usize,
    /// Token types.
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Activation: only "gelu" (exact, erf) is supported.
    #[serde(default = "gelu")]
    pub hidden_act: String,
}

fn gelu() -> String {
    "gelu".into()
}

impl BertConfig {
    /// Reads `config.json` and checks it describes a model this code can run.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| LabError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let c: BertConfig = serde_json::from_str(&text).map_err(|e| LabError::Model {
            path: path.to_path_buf(),
            message: format!("not a BERT config.json: {e}"),
        })?;
        c.check().map_err(|message| LabError::Model {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(c)
    }

    /// Shape rules the kernels rely on.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.hidden_act != "gelu" {
            return Err(format!(
                "activation {:?} is not supported (gelu)",
                self.hidden_act
            ));
        }
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err("hidden_size must be a multiple of num_attention_heads".into());
        }
        if !self.head_dim().is_multiple_of(4)
            || !self.hidden_size.is_multiple_of(32)
            || !self.intermediate_size.is_multiple_of(32)
        {
            return Err(format!(
                "hidden {} / intermediate {} must be multiples of 32 and the head width a multiple of 4",
                self.hidden_size, self.intermediate_size
            ));
        }
        Ok(())
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// all-MiniLM-L6-v2's shapes (for documentation and tests).
    pub fn minilm_l6() -> Self {
        Self {
            vocab_size: 30522,
            hidden_size: 384,
            num_hidden_layers: 6,
            num_attention_heads: 12,
            intermediate_size: 1536,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            hidden_act: "gelu".into(),
        }
    }
}
