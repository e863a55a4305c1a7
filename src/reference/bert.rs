//! CPU twin of the GPU encoder (`model::gpu`): the same steps in the same order, f32
//! activations, f64 for every reduction (LayerNorm statistics, softmax, pooling), the
//! `gemm` crate for the linear layers. The truth GPU embeddings are compared with.

use crate::error::Result;
use crate::formats::bert::weights::{Linear, Norm};
use crate::formats::bert::{Batch, BertWeights};
use crate::kernels::matmul::{Layout, Shape};
use crate::reference::attention::attend;
use crate::reference::matmul::matmul_cpu_fast;

/// Exact GELU: x/2 (1 + erf(x / sqrt 2)).
pub fn gelu(x: f32) -> f32 {
    let x = x as f64;
    (0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))) as f32
}

/// LayerNorm of one row in place.
pub fn layer_norm(row: &mut [f32], n: &Norm, eps: f64) {
    let h = row.len() as f64;
    let mean = row.iter().map(|&v| v as f64).sum::<f64>() / h;
    let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / h;
    let inv = 1.0 / (var + eps).sqrt();
    for (i, v) in row.iter_mut().enumerate() {
        *v = ((*v as f64 - mean) * inv * n.g[i] as f64 + n.b[i] as f64) as f32;
    }
}

/// Token + position + type-0 embeddings, then LayerNorm: rows b*t x hidden.
pub fn embed(w: &BertWeights, batch: &Batch) -> Vec<f32> {
    let h = w.config.hidden_size;
    let mut x = vec![0f32; batch.b * batch.t * h];
    for (r, row) in x.chunks_mut(h).enumerate() {
        let (id, pos) = (batch.ids[r] as usize, r % batch.t);
        for (i, v) in row.iter_mut().enumerate() {
            *v = w.word[id * h + i] + w.position[pos * h + i] + w.token_type[i];
        }
        layer_norm(row, &w.emb_ln, w.config.layer_norm_eps);
    }
    x
}

/// y = x W^T + b (then GELU when `gelu_after`), x is rows x k.
pub fn linear(x: &[f32], rows: usize, l: &Linear, gelu_after: bool) -> Result<Vec<f32>> {
    let mut y = matmul_cpu_fast(Layout::Nt, Shape::new(rows, l.n, l.k)?, x, &l.w)?;
    for row in y.chunks_mut(l.n) {
        for (v, b) in row.iter_mut().zip(&l.b) {
            *v += b;
            if gelu_after {
                *v = gelu(*v);
            }
        }
    }
    Ok(y)
}

/// Scaled dot-product attention over the fused QKV rows (b*t x 3h), keys masked to each
/// sequence's real length; returns b*t x h.
pub fn attention(qkv: &[f32], batch: &Batch, heads: usize, h: usize) -> Vec<f32> {
    let (t, d) = (batch.t, h / heads);
    let scale = 1.0 / (d as f64).sqrt();
    let mut out = vec![0f32; batch.b * t * h];
    for s in 0..batch.b {
        let len = batch.lens[s] as usize;
        for hd in 0..heads {
            for i in 0..t {
                let q = &qkv[(s * t + i) * 3 * h + hd * d..][..d];
                let row =
                    |j: usize, part: usize| &qkv[(s * t + j) * 3 * h + part * h + hd * d..][..d];
                let o = &mut out[(s * t + i) * h + hd * d..][..d];
                attend(q, len, scale, |j| row(j, 1), |j| row(j, 2), o);
            }
        }
    }
    out
}

/// x = LayerNorm(x + y), row by row.
pub fn add_layer_norm(x: &mut [f32], y: &[f32], n: &Norm, h: usize, eps: f64) {
    for (row, yr) in x.chunks_mut(h).zip(y.chunks(h)) {
        for (a, b) in row.iter_mut().zip(yr) {
            *a += b;
        }
        layer_norm(row, n, eps);
    }
}

/// Mean over each sequence's real tokens, then L2 normalisation: b x hidden.
pub fn pool_normalize(x: &[f32], batch: &Batch, h: usize) -> Vec<Vec<f32>> {
    (0..batch.b)
        .map(|s| {
            let len = batch.lens[s] as usize;
            let mut mean = vec![0f64; h];
            for i in 0..len {
                for (m, v) in mean.iter_mut().zip(&x[(s * batch.t + i) * h..][..h]) {
                    *m += *v as f64;
                }
            }
            let norm = mean.iter().map(|m| m * m).sum::<f64>().sqrt();
            mean.iter().map(|m| (m / norm) as f32).collect()
        })
        .collect()
}

/// The linear layers of an encoder layer, in the order the forward pass meets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinearSite {
    /// Fused Q/K/V projection (input: the layer input).
    Qkv,
    /// Attention output projection (input: the attention result).
    Out,
    /// FFN up-projection (input: the attention block's output).
    Up,
    /// FFN down-projection (input: the GELU output).
    Down,
}

/// The whole encoder and pooling: one unit-length embedding per sequence.
pub fn forward(w: &BertWeights, batch: &Batch) -> Result<Vec<Vec<f32>>> {
    forward_with(w, batch, &mut |_, _, x, rows, l, gelu| {
        linear(x, rows, l, gelu)
    })
}

/// [`forward`], showing `observe(layer, site, input rows)` each linear layer's input (all
/// b*t rows, padding included): calibration reads activations through it.
pub fn forward_observed(
    w: &BertWeights,
    batch: &Batch,
    observe: &mut dyn FnMut(usize, LinearSite, &[f32]),
) -> Result<Vec<Vec<f32>>> {
    forward_with(w, batch, &mut |layer, site, x, rows, l, gelu| {
        observe(layer, site, x);
        linear(x, rows, l, gelu)
    })
}

/// One linear layer of [`forward_with`]: (layer, site, input rows, row count, weights,
/// GELU after) -> output rows.
pub type LinearFn<'a> =
    dyn FnMut(usize, LinearSite, &[f32], usize, &Linear, bool) -> Result<Vec<f32>> + 'a;

/// [`forward`] with every linear layer computed by `linear_fn`: twins of quantized GPU
/// paths put their own arithmetic there (e.g. int8 activations), the rest stays the same.
pub fn forward_with(
    w: &BertWeights,
    batch: &Batch,
    linear_fn: &mut LinearFn,
) -> Result<Vec<Vec<f32>>> {
    let c = &w.config;
    let (h, rows) = (c.hidden_size, batch.b * batch.t);
    let mut x = embed(w, batch);
    for (i, l) in w.layers.iter().enumerate() {
        let qkv = linear_fn(i, LinearSite::Qkv, &x, rows, &l.qkv, false)?;
        let a = attention(&qkv, batch, c.num_attention_heads, h);
        let o = linear_fn(i, LinearSite::Out, &a, rows, &l.out, false)?;
        add_layer_norm(&mut x, &o, &l.ln1, h, c.layer_norm_eps);
        let up = linear_fn(i, LinearSite::Up, &x, rows, &l.up, true)?;
        let down = linear_fn(i, LinearSite::Down, &up, rows, &l.down, false)?;
        add_layer_norm(&mut x, &down, &l.ln2, h, c.layer_norm_eps);
    }
    Ok(pool_normalize(&x, batch, h))
}
