//! A llama GGUF's tensors by name, as stored (Q4_1, Q8_0, F32, ...): the checkpoint the GPU
//! model and its CPU twin both read. Every tensor's shape is checked against the config.

use std::path::{Path, PathBuf};

use crate::error::{LabError, Result};
use crate::formats::gguf::{Gguf, GgufError};
use crate::formats::llama::config::LlamaConfig;
use crate::formats::llama::vocab::Vocab;
use crate::formats::quant_search::Quantizer;
use crate::formats::weights::{decode_bytes, WeightFormat, Weights};

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

/// Which matrix of the model a tensor is: what a llama.cpp file type decides by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatrixRole {
    /// Query projection.
    Q,
    /// Key projection.
    K,
    /// Value projection (`attn_v`).
    V,
    /// Attention output projection.
    O,
    /// FFN gate.
    Gate,
    /// FFN up.
    Up,
    /// FFN down (`ffn_down`).
    Down,
    /// Token embedding (also the output projection when tied).
    Embedding,
    /// Output projection (`output.weight`).
    Output,
}

impl MatrixRole {
    /// The activations this matrix multiplies (`tied`: the embedding is also the output
    /// projection); None for an embedding that is only looked up.
    pub fn input(self, tied: bool) -> Option<MatrixInput> {
        Some(match self {
            MatrixRole::Q | MatrixRole::K | MatrixRole::V => MatrixInput::Attention,
            MatrixRole::O => MatrixInput::AttentionOutput,
            MatrixRole::Gate | MatrixRole::Up => MatrixInput::Ffn,
            MatrixRole::Down => MatrixInput::Down,
            MatrixRole::Output => MatrixInput::Output,
            MatrixRole::Embedding if tied => MatrixInput::Output,
            MatrixRole::Embedding => return None,
        })
    }
}

/// A linear layer's input activations: what the CPU twin shows calibration
/// (`LlamaCpu::forward_observed`) and what [`LlamaImportance`] is kept by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatrixInput {
    /// The normed input of Q, K and V.
    Attention,
    /// The attention output projection's input.
    AttentionOutput,
    /// The normed input of the FFN gate and up projections.
    Ffn,
    /// The down projection's input.
    Down,
    /// The output projection's input (the final normed hidden state; observed with the
    /// layer count as its layer).
    Output,
}

impl MatrixInput {
    /// Index in [`LlamaImportance::layers`]' per-layer array; None for the output's input,
    /// which is not per layer.
    pub fn slot(self) -> Option<usize> {
        match self {
            MatrixInput::Attention => Some(0),
            MatrixInput::AttentionOutput => Some(1),
            MatrixInput::Ffn => Some(2),
            MatrixInput::Down => Some(3),
            MatrixInput::Output => None,
        }
    }
}

/// A llama.cpp file type as `llama-quantize` writes it: a base format for the matrices and
/// llama.cpp's rule for the tensors that keep more bits (`llama_tensor_get_type`), so a
/// row of ours is the same mix as the llama.cpp file it is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlamaFtype {
    /// Q8_0 everywhere.
    Q8_0,
    /// Q4_0 matrices; the output projection (or tied embedding) at Q6_K, else Q8_0 when its
    /// rows are not whole super-blocks; with an importance matrix, the first eighth of the
    /// layers' ffn_down at Q4_1.
    Q4_0,
    /// Q4_1 matrices; the output projection as for Q4_0.
    Q4_1,
    /// Q4_K matrices; attn_v and ffn_down at Q6_K in the `use_more_bits` layers; the output
    /// projection at Q6_K; rows that are not whole super-blocks fall back (Q4_K -> Q5_0,
    /// Q6_K -> Q8_0).
    Q4KM,
}

impl LlamaFtype {
    /// Every file type, in table order.
    pub const ALL: [LlamaFtype; 4] = [
        LlamaFtype::Q8_0,
        LlamaFtype::Q4_0,
        LlamaFtype::Q4_1,
        LlamaFtype::Q4KM,
    ];

    /// llama-quantize's name for it.
    pub fn name(self) -> &'static str {
        match self {
            LlamaFtype::Q8_0 => "Q8_0",
            LlamaFtype::Q4_0 => "Q4_0",
            LlamaFtype::Q4_1 => "Q4_1",
            LlamaFtype::Q4KM => "Q4_K_M",
        }
    }

    fn base(self) -> WeightFormat {
        match self {
            LlamaFtype::Q8_0 => WeightFormat::Q8_0,
            LlamaFtype::Q4_0 => WeightFormat::Q4_0,
            LlamaFtype::Q4_1 => WeightFormat::Q4_1,
            LlamaFtype::Q4KM => WeightFormat::Q4K,
        }
    }

    /// The format llama-quantize gives the `role` matrix of `layer` (of `layers`), whose
    /// rows are `row_len` long; `tied`: the embedding is also the output projection;
    /// `imatrix`: an importance matrix is used.
    pub fn format_for(
        self,
        role: MatrixRole,
        layer: usize,
        layers: usize,
        row_len: usize,
        tied: bool,
        imatrix: bool,
    ) -> WeightFormat {
        // llama.cpp's `use_more_bits`: the first and last eighth, and every third between.
        let more = layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;
        let base = self.base();
        let chosen = match role {
            MatrixRole::Output | MatrixRole::Embedding if role == MatrixRole::Output || tied => {
                if !row_len.is_multiple_of(base.block_values()) || base == WeightFormat::Q8_0 {
                    WeightFormat::Q8_0
                } else {
                    WeightFormat::Q6K
                }
            }
            MatrixRole::V | MatrixRole::Down if self == LlamaFtype::Q4KM && more => {
                WeightFormat::Q6K
            }
            MatrixRole::Down if self == LlamaFtype::Q4_0 && imatrix && layer < layers / 8 => {
                WeightFormat::Q4_1
            }
            _ => base,
        };
        chosen.for_row_len(row_len)
    }
}

/// Activation importance of a llama model's matrices (llama.cpp's importance matrix): per
/// input column, the mean square of the activations that meet it on calibration text
/// (`model::llama::calibrate`). The searched quantizers put their error where these are
/// small (`formats::quant_search`).
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaImportance {
    /// Per layer, indexed by [`MatrixInput::slot`]: the attention input (of Q, K and V), the
    /// attention output projection's input, the FFN input (of gate and up), the down
    /// projection's input.
    pub layers: Vec<[Vec<f32>; 4]>,
    /// The output projection's input (the final normed hidden state).
    pub output: Vec<f32>,
    /// Tokens the means are over.
    pub tokens: usize,
}

impl LlamaImportance {
    /// The importance of the `role` matrix's input columns; None for an embedding that is
    /// only a lookup (no product meets it).
    pub fn of(&self, role: MatrixRole, layer: usize, tied: bool) -> Option<&[f32]> {
        let input = role.input(tied)?;
        match input.slot() {
            Some(slot) => Some(&self.layers.get(layer)?[slot]),
            None => Some(&self.output),
        }
    }
}

/// The precision a llama model runs at: the file's own tensors, every matrix re-encoded
/// from its dequantized values, or llama.cpp's mix for one of its file types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlmPrecision {
    /// The tensors as stored (SmolLM2: Q4_1 matrices, Q8_0 embedding and output).
    Native,
    /// Every matrix in this weight format, the output projection included.
    Format(WeightFormat),
    /// The types `llama-quantize` chooses per tensor for this file type (`llama.cpp:Q4_0`):
    /// the like-for-like row against llama.cpp's own figures.
    LlamaCpp(LlamaFtype),
    /// W8A8 (`int8rot`): every matrix, the output projection included, as int8 with a
    /// scale per 32-value block after a Hadamard rotation of the block, and the activations
    /// quantized alike on the GPU before each product. The weights here are the file's
    /// values as f32; the GPU model quantizes them on upload (`W8A8_SCHEME`).
    W8A8,
}

/// How the `int8rot` (W8A8) precision quantizes weights and activations.
pub const W8A8_SCHEME: crate::formats::int8::Int8Scheme = crate::formats::int8::Int8Scheme::Rot32;

impl LlmPrecision {
    /// Every precision the decoder runs at, in table order.
    pub fn all() -> Vec<LlmPrecision> {
        std::iter::once(LlmPrecision::Native)
            .chain(WeightFormat::ALL.into_iter().map(LlmPrecision::Format))
            .chain(LlamaFtype::ALL.into_iter().map(LlmPrecision::LlamaCpp))
            .chain(std::iter::once(LlmPrecision::W8A8))
            .collect()
    }

    /// Name on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            LlmPrecision::Native => "native",
            LlmPrecision::Format(f) => f.name(),
            LlmPrecision::LlamaCpp(t) => match t {
                LlamaFtype::Q8_0 => "llama.cpp:Q8_0",
                LlamaFtype::Q4_0 => "llama.cpp:Q4_0",
                LlamaFtype::Q4_1 => "llama.cpp:Q4_1",
                LlamaFtype::Q4KM => "llama.cpp:Q4_K_M",
            },
            LlmPrecision::W8A8 => "int8rot",
        }
    }

    /// The int8 scheme of the linear layers (weights and activations), for W8A8.
    pub fn w8a8(self) -> Option<crate::formats::int8::Int8Scheme> {
        (self == LlmPrecision::W8A8).then_some(W8A8_SCHEME)
    }

    /// Parses a comma list of names, or `all` (llama.cpp file type names in any case). The
    /// per-row int8 and f16acc precisions are named as not available for the decoder rather
    /// than taken for another.
    pub fn parse_list(s: &str) -> Result<Vec<LlmPrecision>> {
        if s == "all" {
            return Ok(Self::all());
        }
        let names = || {
            Self::all()
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        s.split(',')
            .map(|name| {
                Self::all()
                    .into_iter()
                    .find(|p| match p {
                        LlmPrecision::LlamaCpp(_) => p.name().eq_ignore_ascii_case(name),
                        _ => p.name() == name,
                    })
                    .ok_or_else(|| match name {
                        "int8" | "f16acc" => LabError::InvalidArgument(format!(
                            "precision {name} is not available for the llama decoder yet \
                             (available: {})",
                            names()
                        )),
                        _ => LabError::UnknownName {
                            kind: "precision",
                            name: name.into(),
                            expected: format!("{}, all", names()),
                        },
                    })
            })
            .collect()
    }

    /// The format of the `role` matrix of `layer` at this precision (None: as stored).
    fn format_for(
        self,
        role: MatrixRole,
        layer: usize,
        config: &LlamaConfig,
        row_len: usize,
        tied: bool,
        imatrix: bool,
    ) -> Option<WeightFormat> {
        match self {
            LlmPrecision::Native => None,
            // A K-quant asked for rows that are not whole super-blocks falls back as in
            // llama-quantize (SmolLM2's 576-wide rows: q4_k -> q5_0, q6_k -> q8_0).
            LlmPrecision::Format(f) => Some(f.for_row_len(row_len)),
            LlmPrecision::LlamaCpp(t) => {
                Some(t.format_for(role, layer, config.layers, row_len, tied, imatrix))
            }
            // f32 here; the GPU model quantizes each matrix to int8 on upload.
            LlmPrecision::W8A8 => Some(WeightFormat::F32),
        }
    }
}

impl LlamaWeights {
    /// A copy at `precision`: every matrix re-encoded from its dequantized values (norms
    /// stay f32), so the GPU model and its CPU twin can hold the same values.
    pub fn at_precision(&self, precision: LlmPrecision) -> Result<LlamaWeights> {
        self.at_precision_with(precision, Quantizer::Reference, None)
    }

    /// [`LlamaWeights::at_precision`] with a choice of quantizer for Q4_0/Q4_1 (the
    /// searched scales of `formats::quant_search`; the bytes stay ggml's format). The
    /// imatrix quantizer needs `importance`; a matrix it has none for (an embedding that is
    /// only looked up) gets ggml's reference rule, as in llama-quantize.
    pub fn at_precision_with(
        &self,
        precision: LlmPrecision,
        quantizer: Quantizer,
        importance: Option<&LlamaImportance>,
    ) -> Result<LlamaWeights> {
        if precision == LlmPrecision::Native {
            return Ok(self.clone());
        }
        if quantizer == Quantizer::Imatrix && importance.is_none() {
            return Err(LabError::InvalidArgument(
                "the imatrix quantizer needs the model's activation importance \
                 (model::llama::calibrate)"
                    .into(),
            ));
        }
        let tied = self.output.is_none();
        let imatrix = quantizer == Quantizer::Imatrix;
        let conv = |w: &Weights, role: MatrixRole, layer: usize| -> Result<Weights> {
            let Some(format) = precision.format_for(role, layer, &self.config, w.k, tied, imatrix)
            else {
                return Ok(w.clone());
            };
            if w.format == format {
                return Ok(w.clone());
            }
            let imp = importance.and_then(|i| i.of(role, layer, tied));
            let q = match (quantizer, imp) {
                (Quantizer::Imatrix, None) => Quantizer::Reference,
                (q, _) => q,
            };
            Weights::encode_with(format, w.n, w.k, &w.dequantize(), q, imp)
        };
        use MatrixRole as R;
        Ok(LlamaWeights {
            path: self.path.clone(),
            config: self.config.clone(),
            vocab: self.vocab.clone(),
            embd: conv(&self.embd, R::Embedding, 0)?,
            out_norm: self.out_norm.clone(),
            output: self
                .output
                .as_ref()
                .map(|w| conv(w, R::Output, 0))
                .transpose()?,
            layers: self
                .layers
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    Ok(LlamaLayer {
                        attn_norm: l.attn_norm.clone(),
                        q: conv(&l.q, R::Q, i)?,
                        k: conv(&l.k, R::K, i)?,
                        v: conv(&l.v, R::V, i)?,
                        o: conv(&l.o, R::O, i)?,
                        ffn_norm: l.ffn_norm.clone(),
                        gate: conv(&l.gate, R::Gate, i)?,
                        up: conv(&l.up, R::Up, i)?,
                        down: conv(&l.down, R::Down, i)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        })
    }

    /// How many matrices are stored in each format, most first (e.g. a q4_k request on
    /// SmolLM2 gives 30 q4_k and 181 q5_0 after the fallback): for reports.
    pub fn format_counts(&self) -> Vec<(WeightFormat, usize)> {
        let mut counts: Vec<(WeightFormat, usize)> = Vec::new();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_cpp_file_types_choose_types_as_llama_quantize() {
        use MatrixRole as R;
        let (n, d) = (30, 576);
        let f = |t: LlamaFtype, role, layer, k, tied, imatrix| {
            t.format_for(role, layer, n, k, tied, imatrix)
        };
        // Output projection (or tied embedding): Q6_K, which rows of 576 cannot hold.
        for t in [LlamaFtype::Q4_0, LlamaFtype::Q4_1, LlamaFtype::Q4KM] {
            assert_eq!(f(t, R::Output, 0, d, false, false), WeightFormat::Q8_0);
            assert_eq!(f(t, R::Embedding, 0, d, true, false), WeightFormat::Q8_0);
            assert_eq!(f(t, R::Output, 0, 1024, false, false), WeightFormat::Q6K);
        }
        // An untied embedding is an ordinary tensor of the file type.
        assert_eq!(
            f(LlamaFtype::Q4_0, R::Embedding, 0, d, false, false),
            WeightFormat::Q4_0
        );
        // Q4_K_M: V and down keep Q6_K in the use_more_bits layers (0-2, 26-29, 5, 8, ...).
        let more: Vec<usize> = (0..n)
            .filter(|&i| f(LlamaFtype::Q4KM, R::Down, i, 1536, false, false) == WeightFormat::Q6K)
            .collect();
        assert_eq!(more, [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29]);
        assert_eq!(
            f(LlamaFtype::Q4KM, R::Down, 3, 1536, false, false),
            WeightFormat::Q4K
        );
        assert_eq!(
            f(LlamaFtype::Q4KM, R::V, 0, d, false, false),
            WeightFormat::Q8_0
        );
        assert_eq!(
            f(LlamaFtype::Q4KM, R::V, 3, d, false, false),
            WeightFormat::Q5_0
        );
        assert_eq!(
            f(LlamaFtype::Q4KM, R::Q, 0, d, false, false),
            WeightFormat::Q5_0
        );
        // Q4_0 with an importance matrix guards the first eighth of ffn_down with Q4_1.
        assert_eq!(
            f(LlamaFtype::Q4_0, R::Down, 2, 1536, false, true),
            WeightFormat::Q4_1
        );
        assert_eq!(
            f(LlamaFtype::Q4_0, R::Down, 3, 1536, false, true),
            WeightFormat::Q4_0
        );
        assert_eq!(
            f(LlamaFtype::Q4_0, R::Down, 2, 1536, false, false),
            WeightFormat::Q4_0
        );
        assert_eq!(
            f(LlamaFtype::Q8_0, R::Output, 0, 1024, false, false),
            WeightFormat::Q8_0
        );
    }

    #[test]
    fn precision_names_parse_and_llama_cpp_names_ignore_case() {
        let p = LlmPrecision::parse_list("q4_0,llama.cpp:q4_k_m,llama.cpp:Q4_1,native").unwrap();
        assert_eq!(
            p,
            [
                LlmPrecision::Format(WeightFormat::Q4_0),
                LlmPrecision::LlamaCpp(LlamaFtype::Q4KM),
                LlmPrecision::LlamaCpp(LlamaFtype::Q4_1),
                LlmPrecision::Native,
            ]
        );
        for p in LlmPrecision::all() {
            assert_eq!(LlmPrecision::parse_list(p.name()).unwrap(), [p]);
        }
        let e = LlmPrecision::parse_list("Q4_0").unwrap_err().to_string();
        assert!(e.contains("llama.cpp:Q4_0"), "{e}");
    }

    #[test]
    fn importance_covers_every_role() {
        let imp = LlamaImportance {
            layers: vec![[vec![1.0; 4], vec![2.0; 4], vec![3.0; 4], vec![4.0; 8]]],
            output: vec![5.0; 4],
            tokens: 3,
        };
        use MatrixRole as R;
        let first = |r, tied| imp.of(r, 0, tied).map(|v| v[0]);
        assert_eq!(first(R::K, false), Some(1.0));
        assert_eq!(first(R::O, false), Some(2.0));
        assert_eq!(first(R::Up, false), Some(3.0));
        assert_eq!(first(R::Down, false), Some(4.0));
        assert_eq!(first(R::Output, false), Some(5.0));
        assert_eq!(first(R::Embedding, true), Some(5.0));
        assert_eq!(first(R::Embedding, false), None);
        assert_eq!(imp.of(R::Q, 1, false), None);
    }
}
