//! A llama-architecture model's hyperparameters, read from its GGUF metadata (never from
//! constants): any llama GGUF loads, and a missing or wrong key is an error naming it.

use crate::error::{LabError, Result};
use crate::formats::gguf::{Gguf, Value};

/// Hyperparameters of a llama-architecture decoder.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// Transformer blocks (`llama.block_count`).
    pub layers: usize,
    /// Hidden size (`llama.embedding_length`).
    pub dim: usize,
    /// FFN inner size (`llama.feed_forward_length`).
    pub ffn_dim: usize,
    /// Query heads (`llama.attention.head_count`).
    pub heads: usize,
    /// Key/value heads (`llama.attention.head_count_kv`; llama.cpp's default: `heads`).
    pub kv_heads: usize,
    /// RMSNorm epsilon (`llama.attention.layer_norm_rms_epsilon`).
    pub rms_eps: f32,
    /// RoPE base (`llama.rope.freq_base`; llama.cpp's default 10000).
    pub rope_base: f32,
    /// Dimensions of each head that RoPE rotates (`llama.rope.dimension_count`; default:
    /// the head dimension).
    pub rope_dims: usize,
    /// Training context (`llama.context_length`): the longest sequence the model knows.
    pub context: usize,
    /// Vocabulary size (the length of `tokenizer.ggml.tokens`).
    pub vocab: usize,
}

impl LlamaConfig {
    /// Dimensions per head.
    pub fn head_dim(&self) -> usize {
        self.dim / self.heads
    }

    /// Key/value width per token (kv_heads x head_dim).
    pub fn kv_dim(&self) -> usize {
        self.kv_heads * self.head_dim()
    }

    /// Reads the config of `g`; refuses another architecture and inconsistent sizes.
    pub fn from_gguf(g: &Gguf) -> Result<Self> {
        let err = |message: String| LabError::Model {
            path: g.path.clone(),
            message,
        };
        let arch = match g.get("general.architecture") {
            Some(Value::Str(s)) => s.clone(),
            Some(v) => return Err(err(format!("general.architecture is {}", v.display()))),
            None => return Err(err("missing metadata key general.architecture".into())),
        };
        if arch != "llama" {
            return Err(err(format!(
                "architecture {arch:?} is not supported (only llama; SmolLM2, Llama 2/3, \
                 TinyLlama and other llama-architecture GGUFs load)"
            )));
        }
        let int = |key: &str, default: Option<usize>| -> Result<usize> {
            match (g.get(&format!("llama.{key}")), default) {
                (Some(Value::U64(v)), _) => Ok(*v as usize),
                (Some(Value::I64(v)), _) if *v >= 0 => Ok(*v as usize),
                (Some(v), _) => Err(err(format!("llama.{key} is {}", v.display()))),
                (None, Some(d)) => Ok(d),
                (None, None) => Err(err(format!("missing metadata key llama.{key}"))),
            }
        };
        let float = |key: &str, default: Option<f32>| -> Result<f32> {
            match (g.get(&format!("llama.{key}")), default) {
                (Some(Value::F64(v)), _) => Ok(*v as f32),
                (Some(v), _) => Err(err(format!("llama.{key} is {}", v.display()))),
                (None, Some(d)) => Ok(d),
                (None, None) => Err(err(format!("missing metadata key llama.{key}"))),
            }
        };
        let heads = int("attention.head_count", None)?;
        let dim = int("embedding_length", None)?;
        let c = LlamaConfig {
            layers: int("block_count", None)?,
            dim,
            ffn_dim: int("feed_forward_length", None)?,
            heads,
            kv_heads: int("attention.head_count_kv", Some(heads))?,
            rms_eps: float("attention.layer_norm_rms_epsilon", None)?,
            rope_base: float("rope.freq_base", Some(10000.0))?,
            rope_dims: int(
                "rope.dimension_count",
                Some(dim.checked_div(heads).unwrap_or(0)),
            )?,
            context: int("context_length", None)?,
            vocab: match g.get("tokenizer.ggml.tokens") {
                Some(Value::Array(a)) => a.len(),
                _ => return Err(err("missing metadata key tokenizer.ggml.tokens".into())),
            },
        };
        if c.layers == 0 || c.dim == 0 || c.ffn_dim == 0 || c.vocab == 0 {
            return Err(err(format!("a zero size in {c:?}")));
        }
        if c.heads == 0
            || !c.dim.is_multiple_of(c.heads)
            || c.kv_heads == 0
            || !c.heads.is_multiple_of(c.kv_heads)
        {
            return Err(err(format!(
                "{} heads and {} kv heads do not divide hidden size {}",
                c.heads, c.kv_heads, c.dim
            )));
        }
        if c.rope_dims == 0 || c.rope_dims > c.head_dim() || !c.rope_dims.is_multiple_of(2) {
            return Err(err(format!(
                "rope over {} dims with head dim {}",
                c.rope_dims,
                c.head_dim()
            )));
        }
        Ok(c)
    }
}
