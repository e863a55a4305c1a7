//! Pruning the BERT encoder (issue 23): every encoder linear (fused Q/K/V, attention output,
//! FFN up and down) of every layer, never the embeddings.
//!
//! One forward pass of the CPU twin over the calibration batch prunes them in the order the
//! pass meets them: each linear is scored on its input as it arrives (real tokens only,
//! padding left out), pruned, and its pruned weights compute the output the rest of the
//! pass sees. So every linear is calibrated on the outputs of the ones already pruned, the
//! attention output on the pruned Q/K/V included.

use std::time::Instant;

use crate::error::{LabError, Result};
use crate::formats::bert::weights::Linear;
use crate::formats::bert::{Batch, BertWeights};
use crate::formats::sparse::{SparseWeights, Sparsity};
use crate::formats::weights::WeightFormat;
use crate::prune::{self, InputStats, Method, Pruned, Stored};
use crate::reference::bert::{self, LinearSite};

/// A pruned encoder's linears, per layer in the order Q/K/V, out, up, down.
#[derive(Debug, Clone)]
pub struct PrunedBert {
    /// The method.
    pub method: Method,
    /// The pattern.
    pub sparsity: Sparsity,
    /// Per layer: the four linears' pruned weights and masks.
    pub layers: Vec<Vec<Pruned>>,
    /// Calibration tokens (real ones; 0 for magnitude).
    pub calibration_tokens: usize,
    /// Wall time of the pruning, s.
    pub seconds: f64,
}

fn slot(site: LinearSite) -> usize {
    match site {
        LinearSite::Qkv => 0,
        LinearSite::Out => 1,
        LinearSite::Up => 2,
        LinearSite::Down => 3,
    }
}

/// Prunes `w`'s encoder linears to `sparsity` by `method`, calibrating on `batch`.
pub fn prune_bert(
    w: &BertWeights,
    method: Method,
    sparsity: Sparsity,
    batch: &Batch,
) -> Result<PrunedBert> {
    let start = Instant::now();
    let mut layers: Vec<Vec<Option<Pruned>>> = vec![vec![None, None, None, None]; w.layers.len()];
    let real = |row: usize| (row % batch.t) < batch.lens[row / batch.t] as usize;
    bert::forward_with(w, batch, &mut |layer, site, x, rows, l, gelu| {
        let stats = if method.needs_calibration() {
            let real_rows: Vec<f32> = x
                .chunks_exact(l.k)
                .enumerate()
                .filter(|(r, _)| real(*r))
                .flat_map(|(_, row)| row.iter().copied())
                .collect();
            let mut s = InputStats::new(l.k, method.needs_hessian());
            s.add(&real_rows)?;
            Some(s)
        } else {
            None
        };
        let p = prune::prune(method, sparsity, &l.w, l.n, l.k, stats.as_ref())
            .map_err(|e| LabError::InvalidArgument(format!("layer {layer} {site:?}: {e}")))?;
        let pruned = Linear {
            w: p.w.clone(),
            ..l.clone()
        };
        layers[layer][slot(site)] = Some(p);
        bert::linear(x, rows, &pruned, gelu)
    })?;
    Ok(PrunedBert {
        method,
        sparsity,
        layers: layers
            .into_iter()
            .map(|l| {
                l.into_iter()
                    .map(|p| p.expect("every linear met"))
                    .collect()
            })
            .collect(),
        calibration_tokens: if method.needs_calibration() {
            batch.tokens()
        } else {
            0
        },
        seconds: start.elapsed().as_secs_f64(),
    })
}

impl PrunedBert {
    /// The encoder with its linears as `format` stores the pruned weights (N:M compressed,
    /// kept values quantized over themselves; unstructured: masked dense), decoded back to
    /// f32 for the CPU twin; under N:M also the compressed linears themselves, which the GPU
    /// encoder runs ([`crate::model::bert::gpu::GpuBert::with_sparse`]); and the bytes of
    /// the linears as stored.
    pub fn weights(&self, base: &BertWeights, format: WeightFormat) -> Result<PrunedEncoder> {
        let mut w = base.clone();
        let mut bytes = 0u64;
        let nm = matches!(self.sparsity, Sparsity::Nm(_));
        let mut sparse = Vec::new();
        for (li, layer) in w.layers.iter_mut().enumerate() {
            let mut kept = Vec::new();
            for (i, lin) in [
                &mut layer.qkv,
                &mut layer.out,
                &mut layer.up,
                &mut layer.down,
            ]
            .into_iter()
            .enumerate()
            {
                let stored = self.layers[li][i].store(self.sparsity, format, lin.n, lin.k)?;
                bytes += stored.bytes() as u64;
                lin.w = stored.values();
                if let Stored::Sparse(sw) = stored {
                    kept.push(sw);
                }
            }
            if nm {
                sparse.push(kept);
            }
        }
        Ok(PrunedEncoder {
            weights: w,
            sparse: nm.then_some(sparse),
            bytes,
        })
    }
}

/// A pruned encoder as one precision stores it.
#[derive(Debug, Clone)]
pub struct PrunedEncoder {
    /// The encoder, its linears as the f32 values the stored form decodes to.
    pub weights: BertWeights,
    /// N:M: per layer the compressed Q/K/V, out, up and down (None: unstructured).
    pub sparse: Option<Vec<Vec<SparseWeights>>>,
    /// Bytes of the linears as stored.
    pub bytes: u64,
}
