//! The MiniLM CPU baseline a user would pick: candle-transformers' `BertModel` at f32 on the
//! same safetensors and `config.json`, followed by sentence-transformers' mean pooling over
//! the real tokens and L2 normalisation (what `reference::bert`, our twin, computes). `infer`
//! times it as its CPU column; the twin stays the validation reference, and the two agree to
//! f32 rounding (tested).

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};

use crate::error::{LabError, Result};
use crate::formats::bert::Batch;

/// The library, as `infer` names it in `cpu_impl`.
pub const LIBRARY: &str = "candle-transformers 0.11 BertModel (f32)";

fn err(e: impl std::fmt::Display) -> LabError {
    LabError::CpuBaseline {
        library: LIBRARY,
        message: e.to_string(),
    }
}

/// candle's BERT, loaded from a Hugging Face folder.
pub struct CandleBert {
    model: BertModel,
}

impl CandleBert {
    /// Loads `config.json` and `model.safetensors` from `dir` (memory-mapped).
    pub fn load(dir: &Path) -> Result<Self> {
        let config =
            std::fs::read_to_string(dir.join("config.json")).map_err(|e| LabError::Io {
                path: dir.join("config.json"),
                source: e,
            })?;
        let config: Config = serde_json::from_str(&config).map_err(err)?;
        // SAFETY: the file is mapped read-only; wgpu-lab does not write to it while loaded.
        let vb = unsafe {
            VarBuilder::from_mmaped_safetensors(
                &[dir.join("model.safetensors")],
                DType::F32,
                &Device::Cpu,
            )
        }
        .map_err(err)?;
        Ok(Self {
            model: BertModel::load(vb, &config).map_err(err)?,
        })
    }

    /// One L2-normalised, mean-pooled embedding per sequence of `batch`.
    pub fn embed(&self, batch: &Batch) -> Result<Vec<Vec<f32>>> {
        let (b, t) = (batch.b, batch.t);
        let mask: Vec<u32> = (0..b * t)
            .map(|i| ((i % t) < batch.lens[i / t] as usize) as u32)
            .collect();
        let dev = &Device::Cpu;
        let ids = Tensor::from_slice(&batch.ids, (b, t), dev).map_err(err)?;
        let types = ids.zeros_like().map_err(err)?;
        let mask_t = Tensor::from_slice(&mask, (b, t), dev).map_err(err)?;
        let hidden = self
            .model
            .forward(&ids, &types, Some(&mask_t))
            .and_then(|h| h.to_vec3::<f32>())
            .map_err(err)?;
        Ok(hidden
            .iter()
            .zip(&batch.lens)
            .map(|(rows, &len)| {
                let len = len as usize;
                let mut v = vec![0f32; rows[0].len()];
                for row in &rows[..len] {
                    for (a, x) in v.iter_mut().zip(row) {
                        *a += x;
                    }
                }
                let norm = v
                    .iter()
                    .map(|x| (*x / len as f32).powi(2))
                    .sum::<f32>()
                    .sqrt();
                v.iter()
                    .map(|x| *x / len as f32 / norm.max(1e-12))
                    .collect()
            })
            .collect())
    }
}
