//! The llama CPU baseline a Rust user would pick: candle-transformers' quantized llama
//! (`models::quantized_llama`, ggml's block formats with activations quantized per call
//! and SIMD block dots, as llama.cpp's CPU path), run on the very tensors the GPU holds.
//!
//! candle loads a model from a GGUF file, so the tensors of a [`LlamaWeights`] (the file's
//! own or re-encoded at a precision) are written, with the source file's metadata, to a
//! temporary GGUF that candle reads and that is removed right after. This is a timing
//! baseline for `llm-bench`'s CPU columns; the validation reference stays the f32 twin
//! (`reference::llama`), with which candle's logits agree within its 8-bit activation
//! rounding (tested; at f32 to 1e-6, the same model).
//!
//! What a default build gets: candle 0.11 picks AVX2/AVX-512-VNNI kernels at run time only
//! for the types it repacks (the K-quants among them); its other block dots (Q4_0, Q4_1,
//! Q5_0, Q8_0) take SIMD only when compiled for it (`-C target-cpu=native`), which this
//! portable binary is not. llm-bench's CPU columns are therefore what `cargo build
//! --release` of candle gives, as named in `cpu_impl`.

use std::path::PathBuf;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;

use crate::error::{LabError, Result};
use crate::formats::gguf::{self, Gguf, TensorData};
use crate::formats::llama::LlamaWeights;
use crate::formats::weights::{WeightFormat, Weights};

/// The library, as `llm-bench` names it in `cpu_impl`.
pub const LIBRARY: &str = "candle-transformers 0.11 quantized_llama (the same tensors)";

/// Longest sequence candle's rotary table covers (`quantized_llama::MAX_SEQ_LEN`).
pub const MAX_POSITIONS: usize = candle_transformers::models::quantized_llama::MAX_SEQ_LEN;

fn err(e: impl std::fmt::Display) -> LabError {
    LabError::CpuBaseline {
        library: LIBRARY,
        message: e.to_string(),
    }
}

/// A candle model of some llama weights, with its KV cache.
pub struct CandleLlama {
    model: ModelWeights,
    pos: usize,
}

/// Removes the temporary file however loading ends.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn matrix(name: String, w: &Weights) -> TensorData {
    TensorData {
        name,
        dims: vec![w.k as u64, w.n as u64],
        format: w.format,
        bytes: w.bytes.clone(),
    }
}

fn vector(name: String, v: &[f32]) -> TensorData {
    TensorData {
        name,
        dims: vec![v.len() as u64],
        format: WeightFormat::F32,
        bytes: bytemuck::cast_slice(v).to_vec(),
    }
}

impl CandleLlama {
    /// Loads `w` into candle (see the module comment for how).
    pub fn new(w: &LlamaWeights) -> Result<Self> {
        let src = Gguf::open(&w.path).map_err(err)?;
        let mut tensors = vec![
            matrix("token_embd.weight".into(), &w.embd),
            vector("output_norm.weight".into(), &w.out_norm),
        ];
        if let Some(out) = &w.output {
            tensors.push(matrix("output.weight".into(), out));
        }
        for (i, l) in w.layers.iter().enumerate() {
            let t = |s: &str| format!("blk.{i}.{s}.weight");
            tensors.extend([
                vector(t("attn_norm"), &l.attn_norm),
                matrix(t("attn_q"), &l.q),
                matrix(t("attn_k"), &l.k),
                matrix(t("attn_v"), &l.v),
                matrix(t("attn_output"), &l.o),
                vector(t("ffn_norm"), &l.ffn_norm),
                matrix(t("ffn_gate"), &l.gate),
                matrix(t("ffn_up"), &l.up),
                matrix(t("ffn_down"), &l.down),
            ]);
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let tmp = TempFile(std::env::temp_dir().join(format!(
            "wgpu-lab-candle-{}-{nanos}.gguf",
            std::process::id()
        )));
        gguf::write(&tmp.0, &src.metadata, &tensors).map_err(err)?;
        drop(tensors);
        let mut f = std::fs::File::open(&tmp.0).map_err(err)?;
        let content = gguf_file::Content::read(&mut f).map_err(err)?;
        let model = ModelWeights::from_gguf(content, &mut f, &Device::Cpu).map_err(err)?;
        Ok(Self { model, pos: 0 })
    }

    /// Empties the KV cache (a new sequence).
    pub fn reset(&mut self) {
        self.model.clear_kv_cache();
        self.pos = 0;
    }

    /// Runs `tokens` after what the cache holds; returns the last position's logits.
    pub fn forward(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        if tokens.is_empty() || self.pos + tokens.len() > MAX_POSITIONS {
            return Err(err(format!(
                "{} tokens after {} do not fit candle's {MAX_POSITIONS} positions",
                tokens.len(),
                self.pos
            )));
        }
        let x = Tensor::new(tokens, &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .map_err(err)?;
        let logits = self.model.forward(&x, self.pos).map_err(err)?;
        self.pos += tokens.len();
        logits
            .squeeze(0)
            .and_then(|l| l.to_dtype(candle_core::DType::F32))
            .and_then(|l| l.to_vec1::<f32>())
            .map_err(err)
    }
}
