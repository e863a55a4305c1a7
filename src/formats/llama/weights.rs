//! A llama GGUF's tensors by name, as stored (Q4_1, Q8_0, F32, ...): the checkpoint the GPU
//! model and its CPU twin both read. Every tensor's shape is checked against the config.

use std::path::{Path, PathBuf};

use crate::error::{LabError, Result};
use crate::formats::gguf::{Gguf, GgufError};
use crate::formats::llama::config::LlamaConfig;
use crate::formats::llama::vocab::Vocab;
use crate::formats::weights::{decode_bytes, Weights};

/// One transformer block.
#[derive(Debug, Clone)]
pub struct LlamaLayer {
    /// RMSNorm weight before attention (dim).
    pub attn_norm: Vec<f32>,
    /// Query projection (dim x dim; rows permuted for llama.cpp's RoPE layout).
    pub q: Weights,
    /// Key projection (kv_dim x dim; permuted likewise).
    pub k: Weights,
    /// Value projection (kv_dim x dim).
    pub v: Weights,
    /// Output projection (dim x dim).
    pub o: Weights,
    /// RMSNorm weight before the FFN (dim).
    pub ffn_norm: Vec<f32>,
    /// FFN gate (ffn x dim).
    pub gate: Weights,
    /// FFN up (ffn x dim).
    pub up: Weights,
    /// FFN down (dim x ffn).
    pub down: Weights,
}

/// A whole llama checkpoint.
#[derive(Debug, Clone)]
pub struct LlamaWeights {
    /// The file.
    pub path: PathBuf,
    /// Hyperparameters.
    pub config: LlamaConfig,
    /// Tokenizer data.
    pub vocab: Vocab,
    /// Token embedding (vocab x dim).
    pub embd: Weights,
    /// Final RMSNorm weight (dim).
    pub out_norm: Vec<f32>,
    /// Output projection (vocab x dim); None when tied to the embedding.
    pub output: Option<Weights>,
    /// Blocks.
    pub layers: Vec<LlamaLayer>,
}

impl LlamaWeights {
    /// Reads a llama GGUF: config, vocabulary and every tensor, shapes checked.
    pub fn load(path: &Path) -> Result<Self> {
        let err = |message: String| LabError::Model {
            path: path.to_path_buf(),
            message,
        };
        let gerr = |e: GgufError| err(e.to_string());
        if !path.is_file() {
            return Err(err(
                "no such file; run scripts/fetch-models for SmolLM2-135M-Instruct".into(),
            ));
        }
        let g = Gguf::open(path).map_err(gerr)?;
        let config = LlamaConfig::from_gguf(&g)?;
        let vocab = Vocab::from_gguf(&g)?;
        let (d, kv, f) = (config.dim, config.kv_dim(), config.ffn_dim);
        let matrix = |name: &str, n: usize, k: usize| -> Result<Weights> {
            let info = g.tensor(name).map_err(gerr)?;
            if info.dims.len() != 2 || info.rows_cols() != (n, k) {
                return Err(err(format!(
                    "tensor {name} has ggml dims {:?}; the config needs {n} rows of {k}",
                    info.dims
                )));
            }
            let (format, bytes) = g.read_tensor(name).map_err(gerr)?;
            Weights::from_bytes(format, n, k, bytes).map_err(|e| err(format!("{name}: {e}")))
        };
        let vector = |name: &str, n: usize| -> Result<Vec<f32>> {
            let info = g.tensor(name).map_err(gerr)?;
            if info.len() != n as u64 {
                return Err(err(format!(
                    "tensor {name} has ggml dims {:?}; the config needs {n} values",
                    info.dims
                )));
            }
            let (format, bytes) = g.read_tensor(name).map_err(gerr)?;
            Ok(decode_bytes(format, &bytes))
        };
        let layers = (0..config.layers)
            .map(|i| {
                let t = |s: &str| format!("blk.{i}.{s}.weight");
                Ok(LlamaLayer {
                    attn_norm: vector(&t("attn_norm"), d)?,
                    q: matrix(&t("attn_q"), d, d)?,
                    k: matrix(&t("attn_k"), kv, d)?,
                    v: matrix(&t("attn_v"), kv, d)?,
                    o: matrix(&t("attn_output"), d, d)?,
                    ffn_norm: vector(&t("ffn_norm"), d)?,
                    gate: matrix(&t("ffn_gate"), f, d)?,
                    up: matrix(&t("ffn_up"), f, d)?,
                    down: matrix(&t("ffn_down"), d, f)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let output = match g.tensor("output.weight") {
            Ok(_) => Some(matrix("output.weight", config.vocab, d)?),
            Err(GgufError::NoTensor { .. }) => None,
            Err(e) => return Err(gerr(e)),
        };
        Ok(LlamaWeights {
            path: path.to_path_buf(),
            embd: matrix("token_embd.weight", config.vocab, d)?,
            out_norm: vector("output_norm.weight", d)?,
            output,
            layers,
            vocab,
            config,
        })
    }

    /// The output projection: `output.weight`, or the embedding when the two are tied.
    pub fn output(&self) -> &Weights {
        self.output.as_ref().unwrap_or(&self.embd)
    }
}

/// The precision a llama model runs at: the file's own tensors, or every matrix (the
/// embedding and output projection included) re-encoded from its dequantized values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlmPrecision {
    /// The tensors as stored (SmolLM2: Q4_1 matrices, Q8_0 embedding and output).
    Native,
    /// Every matrix in this weight format.
    Format(crate::formats::weights::WeightFormat),
}

impl LlmPrecision {
    /// Every precision the decoder runs at, in table order.
    pub fn all() -> Vec<LlmPrecision> {
        std::iter::once(LlmPrecision::Native)
            .chain(
                crate::formats::weights::WeightFormat::ALL
                    .into_iter()
                    .map(LlmPrecision::Format),
            )
            .collect()
    }

    /// Name on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            LlmPrecision::Native => "native",
            LlmPrecision::Format(f) => f.name(),
        }
    }

    /// Parses a comma list of names, or `all`. The W8A8 and f16acc precisions are named
    /// as not available for the decoder yet rather than taken for another.
    pub fn parse_list(s: &str) -> Result<Vec<LlmPrecision>> {
        if s == "all" {
            return Ok(Self::all());
        }
        s.split(',')
            .map(|name| {
                Self::all()
                    .into_iter()
                    .find(|p| p.name() == name)
                    .ok_or_else(|| match name {
                        "int8" | "int8rot" | "f16acc" => LabError::InvalidArgument(format!(
                            "precision {name} is not available for the llama decoder yet \
                             (available: {})",
                            Self::all()
                                .iter()
                                .map(|p| p.name())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                        _ => LabError::UnknownName {
                            kind: "precision",
                            name: name.into(),
                            expected: format!(
                                "{}, all",
                                Self::all()
                                    .iter()
                                    .map(|p| p.name())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        },
                    })
            })
            .collect()
    }
}

impl LlamaWeights {
    /// A copy at `precision`: every matrix re-encoded from its dequantized values (norms
    /// stay f32), so the GPU model and its CPU twin can hold the same values.
    pub fn at_precision(&self, precision: LlmPrecision) -> Result<LlamaWeights> {
        self.at_precision_with(
            precision,
            crate::formats::quant_search::Quantizer::Reference,
        )
    }

    /// [`LlamaWeights::at_precision`] with a choice of quantizer for Q4_0/Q4_1 (the
    /// searched scales of `formats::quant_search`; the bytes stay ggml's format).
    pub fn at_precision_with(
        &self,
        precision: LlmPrecision,
        quantizer: crate::formats::quant_search::Quantizer,
    ) -> Result<LlamaWeights> {
        let LlmPrecision::Format(format) = precision else {
            return Ok(self.clone());
        };
        let conv = |w: &Weights| -> Result<Weights> {
            // A K-quant asked for rows that are not whole super-blocks falls back as in
            // llama-quantize (SmolLM2's 576-wide rows: q4_k -> q5_0, q6_k -> q8_0).
            let format = format.for_row_len(w.k);
            if w.format == format {
                Ok(w.clone())
            } else {
                Weights::encode_with(format, w.n, w.k, &w.dequantize(), quantizer, None)
            }
        };
        Ok(LlamaWeights {
            path: self.path.clone(),
            config: self.config.clone(),
            vocab: self.vocab.clone(),
            embd: conv(&self.embd)?,
            out_norm: self.out_norm.clone(),
            output: self.output.as_ref().map(conv).transpose()?,
            layers: self
                .layers
                .iter()
                .map(|l| {
                    Ok(LlamaLayer {
                        attn_norm: l.attn_norm.clone(),
                        q: conv(&l.q)?,
                        k: conv(&l.k)?,
                        v: conv(&l.v)?,
                        o: conv(&l.o)?,
                        ffn_norm: l.ffn_norm.clone(),
                        gate: conv(&l.gate)?,
                        up: conv(&l.up)?,
                        down: conv(&l.down)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        })
    }

    /// How many matrices are stored in each format, most first (e.g. a q4_k request on
    /// SmolLM2 gives 30 q4_k and 181 q5_0 after the fallback): for reports.
    pub fn format_counts(&self) -> Vec<(crate::formats::weights::WeightFormat, usize)> {
        let mut counts: Vec<(crate::formats::weights::WeightFormat, usize)> = Vec::new();
        let all = self
            .layers
            .iter()
            .flat_map(|l| [&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down]);
        for w in all
            .chain(std::iter::once(&self.embd))
            .chain(self.output.as_ref())
        {
            match counts.iter_mut().find(|(f, _)| *f == w.format) {
                Some((_, n)) => *n += 1,
                None => counts.push((w.format, 1)),
            }
        }
        counts.sort_by_key(|c| std::cmp::Reverse(c.1));
        counts
    }

    /// [`LlamaWeights::format_counts`] as text: `q5_0 x181, q4_k x30`.
    pub fn format_summary(&self) -> String {
        self.format_counts()
            .iter()
            .map(|(f, n)| format!("{} x{n}", f.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Bytes of every tensor as stored.
    pub fn bytes(&self) -> u64 {
        let m = |w: &Weights| w.bytes.len() as u64;
        let v = |x: &[f32]| (x.len() * 4) as u64;
        m(&self.embd)
            + v(&self.out_norm)
            + self.output.as_ref().map_or(0, m)
            + self
                .layers
                .iter()
                .map(|l| {
                    v(&l.attn_norm)
                        + v(&l.ffn_norm)
                        + [&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down]
                            .into_iter()
                            .map(m)
                            .sum::<u64>()
                })
                .sum::<u64>()
    }
}
