//! Pruning a llama decoder (issue 23): every decoder linear (Q, K, V, O, gate, up, down) of
//! every layer, never the embedding or the output projection.
//!
//! Layers are pruned in order, each calibrated on the outputs of the layers already pruned
//! (as SparseGPT's and Wanda's reference code do): the calibration text's residual stream
//! is carried through the CPU twin a layer at a time; a layer's seven matrices are scored on
//! its inputs as they arrive from the pruned layers below (Q/K/V and gate/up share theirs,
//! O and down see the layer's unpruned attention and FFN activations, as in one forward of
//! the layer), then the stream goes on through the pruned layer. Magnitude needs no data.

use std::time::Instant;

use crate::error::{LabError, Result};
use crate::formats::llama::{LlamaLayer, LlamaWeights, LlmPrecision, MatrixRole};
use crate::formats::sparse::{SparseWeights, Sparsity};
use crate::formats::weights::{WeightFormat, Weights};
use crate::model::llama::calibrate::CHUNK;
use crate::prune::{self, InputStats, Method, Pruned, Stored};
use crate::reference::llama::LlamaCpu;

/// The matrices pruned in each layer, in this order.
pub const PRUNED_ROLES: [MatrixRole; 7] = [
    MatrixRole::Q,
    MatrixRole::K,
    MatrixRole::V,
    MatrixRole::O,
    MatrixRole::Gate,
    MatrixRole::Up,
    MatrixRole::Down,
];

/// A decoder's pruned linears, in f32 (from the file's values), with their masks.
#[derive(Debug, Clone)]
pub struct PrunedLlama {
    /// The method.
    pub method: Method,
    /// The pattern.
    pub sparsity: Sparsity,
    /// Per layer, the matrices of [`PRUNED_ROLES`] in order.
    pub layers: Vec<Vec<Pruned>>,
    /// Calibration tokens seen (0 for magnitude).
    pub calibration_tokens: usize,
    /// Wall time of the pruning, s.
    pub seconds: f64,
}

/// Prunes `w`'s decoder linears to `sparsity` by `method`, calibrating on `tokens` (in
/// independent contexts of [`CHUNK`]).
pub fn prune_llama(
    w: &LlamaWeights,
    method: Method,
    sparsity: Sparsity,
    tokens: &[u32],
) -> Result<PrunedLlama> {
    let start = Instant::now();
    let mut twin = LlamaCpu::new(&w.at_precision(LlmPrecision::Format(WeightFormat::F32))?);
    let layers = w.config.layers;
    let calibrate = method.needs_calibration();
    if calibrate && tokens.is_empty() {
        return Err(LabError::InvalidArgument(format!(
            "{method} needs calibration text and got none"
        )));
    }
    let chunks: Vec<&[u32]> = if calibrate {
        tokens.chunks(CHUNK.min(w.config.context)).collect()
    } else {
        Vec::new()
    };
    let mut stream = chunks
        .iter()
        .map(|c| twin.embed(c))
        .collect::<Result<Vec<_>>>()?;
    let mut out = Vec::with_capacity(layers);
    for li in 0..layers {
        let mut stats: Vec<InputStats> = Vec::new();
        if calibrate {
            let (d, f) = (w.config.dim, w.config.ffn_dim);
            stats = [d, d, d, f]
                .into_iter()
                .map(|k| InputStats::new(k, method.needs_hessian()))
                .collect();
            let mut failed = None;
            for (c, x) in chunks.iter().zip(&stream) {
                let mut cache = twin.cache(c.len());
                let mut xc = x.clone();
                twin.layer(li, &mut cache, &mut xc, 0, &mut |_, site, a| {
                    if let Some(slot) = site.slot() {
                        if let Err(e) = stats[slot].add(a) {
                            failed.get_or_insert(e);
                        }
                    }
                })?;
            }
            if let Some(e) = failed {
                return Err(e);
            }
        }
        let mut pruned = Vec::with_capacity(PRUNED_ROLES.len());
        for role in PRUNED_ROLES {
            let (wv, n, k) = twin.matrix(li, role).expect("a decoder linear");
            let slot = role
                .input(false)
                .and_then(|i| i.slot())
                .expect("decoder linears have a per-layer input");
            let p = prune::prune(method, sparsity, wv, n, k, stats.get(slot))
                .map_err(|e| LabError::InvalidArgument(format!("layer {li} {role:?}: {e}")))?;
            twin.set_matrix(li, role, p.w.clone())?;
            pruned.push(p);
        }
        for (c, x) in chunks.iter().zip(stream.iter_mut()) {
            let mut cache = twin.cache(c.len());
            twin.layer(li, &mut cache, x, 0, &mut |_, _, _| {})?;
        }
        out.push(pruned);
    }
    Ok(PrunedLlama {
        method,
        sparsity,
        layers: out,
        calibration_tokens: if calibrate { tokens.len() } else { 0 },
        seconds: start.elapsed().as_secs_f64(),
    })
}

impl PrunedLlama {
    /// The model at `format` with its decoder linears pruned: the other tensors re-encoded
    /// as [`LlamaWeights::at_precision`] does; each pruned linear stored as a sparse run
    /// stores it ([`Pruned::store`]) and held as the f32 values that decodes to, so the CPU
    /// twin computes with exactly those (the accuracy of the sparse layout, apart from any
    /// kernel); under N:M also the compressed matrices themselves, which the GPU decoder
    /// runs ([`crate::model::llama::gpu::GpuLlama::new_sparse`]).
    pub fn weights(&self, base: &LlamaWeights, format: WeightFormat) -> Result<PrunedWeights> {
        let mut w = base.at_precision(LlmPrecision::Format(format))?;
        let mut bytes = 0u64;
        let nm = matches!(self.sparsity, Sparsity::Nm(_));
        let mut sparse = Vec::with_capacity(if nm { w.layers.len() } else { 0 });
        for (li, layer) in w.layers.iter_mut().enumerate() {
            let mut kept = Vec::with_capacity(PRUNED_ROLES.len());
            for (i, role) in PRUNED_ROLES.into_iter().enumerate() {
                let m = matrix_mut(layer, role);
                let (n, k) = (m.n, m.k);
                let stored =
                    self.layers[li][i].store(self.sparsity, format.for_row_len(k), n, k)?;
                bytes += stored.bytes() as u64;
                *m = match stored {
                    Stored::Dense { weights, .. } => weights,
                    Stored::Sparse(sw) => {
                        let values = sw.densify();
                        kept.push(sw);
                        Weights::encode(WeightFormat::F32, n, k, &values)?
                    }
                };
            }
            if nm {
                sparse.push(kept);
            }
        }
        Ok(PrunedWeights {
            weights: w,
            sparse: nm.then_some(sparse),
            bytes,
        })
    }
}

/// A pruned decoder as one precision stores it.
#[derive(Debug, Clone)]
pub struct PrunedWeights {
    /// The model, its pruned linears as the f32 values the stored form decodes to.
    pub weights: LlamaWeights,
    /// N:M: per layer the seven compressed linears of [`PRUNED_ROLES`] (None: unstructured,
    /// stored as masked dense).
    pub sparse: Option<Vec<Vec<SparseWeights>>>,
    /// Bytes of the pruned linears as stored.
    pub bytes: u64,
}

fn matrix_mut(l: &mut LlamaLayer, role: MatrixRole) -> &mut Weights {
    match role {
        MatrixRole::Q => &mut l.q,
        MatrixRole::K => &mut l.k,
        MatrixRole::V => &mut l.v,
        MatrixRole::O => &mut l.o,
        MatrixRole::Gate => &mut l.gate,
        MatrixRole::Up => &mut l.up,
        MatrixRole::Down => &mut l.down,
        MatrixRole::Embedding | MatrixRole::Output => unreachable!("never pruned"),
    }
}
