//! BERT weights: loaded from a Hugging Face `model.safetensors` (names as in
//! `transformers`' BertModel), or drawn at random for tests that need no download.

use std::path::Path;

use safetensors::SafeTensors;

use crate::error::{LabError, Result};
use crate::formats::bert::BertConfig;
use crate::rng::Rng;

/// One linear layer, `nn.Linear` layout: y = x W^T + b, W is `n x k`.
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    /// Output features.
    pub n: usize,
    /// Input features.
    pub k: usize,
    /// n x k, row-major.
    pub w: Vec<f32>,
    /// n biases.
    pub b: Vec<f32>,
}

/// LayerNorm's scale and shift.
#[derive(Debug, Clone, PartialEq)]
pub struct Norm {
    /// gamma.
    pub g: Vec<f32>,
    /// beta.
    pub b: Vec<f32>,
}

/// One encoder layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// Query, key and value projections fused: rows 0..h are Q, h..2h K, 2h..3h V.
    pub qkv: Linear,
    /// Attention output projection.
    pub out: Linear,
    /// LayerNorm after attention + residual.
    pub ln1: Norm,
    /// FFN up-projection (followed by GELU).
    pub up: Linear,
    /// FFN down-projection.
    pub down: Linear,
    /// LayerNorm after FFN + residual.
    pub ln2: Norm,
}

/// The whole encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct BertWeights {
    /// Shapes.
    pub config: BertConfig,
    /// vocab x hidden.
    pub word: Vec<f32>,
    /// max_position x hidden.
    pub position: Vec<f32>,
    /// type_vocab x hidden.
    pub token_type: Vec<f32>,
    /// LayerNorm of the embeddings.
    pub emb_ln: Norm,
    /// Encoder layers.
    pub layers: Vec<Layer>,
}

/// Reads named f32 tensors of one safetensors file, checking shapes.
struct Loader<'a> {
    path: &'a Path,
    st: SafeTensors<'a>,
}

impl Loader<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let err = |message: String| LabError::Model {
            path: self.path.to_path_buf(),
            message,
        };
        let t = self
            .st
            .tensor(name)
            .map_err(|_| err(format!("tensor {name} is missing")))?;
        if t.shape() != shape {
            return Err(err(format!(
                "tensor {name} has shape {:?}, expected {shape:?}",
                t.shape()
            )));
        }
        if t.dtype() != safetensors::Dtype::F32 {
            return Err(err(format!(
                "tensor {name} is {:?}, expected F32",
                t.dtype()
            )));
        }
        Ok(bytemuck::pod_collect_to_vec(t.data()))
    }

    fn linear(&self, name: &str, n: usize, k: usize) -> Result<Linear> {
        Ok(Linear {
            n,
            k,
            w: self.get(&format!("{name}.weight"), &[n, k])?,
            b: self.get(&format!("{name}.bias"), &[n])?,
        })
    }

    fn norm(&self, name: &str, h: usize) -> Result<Norm> {
        Ok(Norm {
            g: self.get(&format!("{name}.weight"), &[h])?,
            b: self.get(&format!("{name}.bias"), &[h])?,
        })
    }
}

/// The three projections as one n = 3h linear (rows Q, then K, then V).
fn fuse_qkv(q: Linear, k: Linear, v: Linear) -> Linear {
    Linear {
        n: q.n + k.n + v.n,
        k: q.k,
        w: [q.w, k.w, v.w].concat(),
        b: [q.b, k.b, v.b].concat(),
    }
}

impl BertWeights {
    /// Loads `config.json` and `model.safetensors` from a Hugging Face model folder.
    pub fn load(dir: &Path) -> Result<Self> {
        let config = BertConfig::load(&dir.join("config.json"))?;
        let path = dir.join("model.safetensors");
        let bytes = std::fs::read(&path).map_err(|source| LabError::Io {
            path: path.clone(),
            source,
        })?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| LabError::Model {
            path: path.clone(),
            message: format!("not a safetensors file: {e}"),
        })?;
        // The config's layer count against the layers the file holds, before anything is
        // sized by it (a hostile count would otherwise ask for that much memory).
        let held = (0..)
            .take_while(|i| {
                st.names()
                    .iter()
                    .any(|n| n.starts_with(&format!("encoder.layer.{i}.")))
            })
            .count();
        if config.num_hidden_layers > held {
            return Err(LabError::Model {
                path: path.clone(),
                message: format!(
                    "config.json asks for {} layers but the file holds {held} \
                     (encoder.layer.0 .. encoder.layer.{})",
                    config.num_hidden_layers,
                    held.saturating_sub(1)
                ),
            });
        }
        let l = Loader { path: &path, st };
        let (h, f) = (config.hidden_size, config.intermediate_size);
        let p = "embeddings";
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let e = format!("encoder.layer.{i}");
            layers.push(Layer {
                qkv: fuse_qkv(
                    l.linear(&format!("{e}.attention.self.query"), h, h)?,
                    l.linear(&format!("{e}.attention.self.key"), h, h)?,
                    l.linear(&format!("{e}.attention.self.value"), h, h)?,
                ),
                out: l.linear(&format!("{e}.attention.output.dense"), h, h)?,
                ln1: l.norm(&format!("{e}.attention.output.LayerNorm"), h)?,
                up: l.linear(&format!("{e}.intermediate.dense"), f, h)?,
                down: l.linear(&format!("{e}.output.dense"), h, f)?,
                ln2: l.norm(&format!("{e}.output.LayerNorm"), h)?,
            });
        }
        Ok(Self {
            word: l.get(
                &format!("{p}.word_embeddings.weight"),
                &[config.vocab_size, h],
            )?,
            position: l.get(
                &format!("{p}.position_embeddings.weight"),
                &[config.max_position_embeddings, h],
            )?,
            token_type: l.get(
                &format!("{p}.token_type_embeddings.weight"),
                &[config.type_vocab_size, h],
            )?,
            emb_ln: l.norm(&format!("{p}.LayerNorm"), h)?,
            layers,
            config,
        })
    }

    /// Random weights of the right shapes (scaled like a trained BERT's) for tests that
    /// need no download.
    pub fn random(config: BertConfig, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut vec = |len: usize, scale: f32| -> Vec<f32> {
            rng.vec_f32(len).into_iter().map(|v| v * scale).collect()
        };
        let (h, f) = (config.hidden_size, config.intermediate_size);
        let mut linear = |n: usize, k: usize| Linear {
            n,
            k,
            w: vec(n * k, 1.0 / (k as f32).sqrt()),
            b: vec(n, 0.1),
        };
        let layers = (0..config.num_hidden_layers)
            .map(|_| Layer {
                qkv: linear(3 * h, h),
                out: linear(h, h),
                ln1: Norm {
                    g: vec![1.0; h],
                    b: vec![0.0; h],
                },
                up: linear(f, h),
                down: linear(h, f),
                ln2: Norm {
                    g: vec![1.0; h],
                    b: vec![0.0; h],
                },
            })
            .collect();
        let mut vec = |len: usize| -> Vec<f32> { rng.vec_f32(len) };
        Self {
            word: vec(config.vocab_size * h),
            position: vec(config.max_position_embeddings * h),
            token_type: vec(config.type_vocab_size * h),
            emb_ln: Norm {
                g: vec![1.0; h],
                b: vec![0.0; h],
            },
            layers,
            config,
        }
    }

    /// Parameters in the encoder (for reports).
    pub fn parameters(&self) -> usize {
        let lin = |l: &Linear| l.w.len() + l.b.len();
        self.word.len()
            + self.position.len()
            + self.token_type.len()
            + 2 * self.config.hidden_size * (1 + 2 * self.layers.len())
            + self
                .layers
                .iter()
                .map(|l| lin(&l.qkv) + lin(&l.out) + lin(&l.up) + lin(&l.down))
                .sum::<usize>()
    }
}
