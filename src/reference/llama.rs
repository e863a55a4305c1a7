//! CPU twin of the llama decoder (`model::llama`): the same forward in f32 activations with
//! f64 reductions (RMSNorm, RoPE angles, softmax), the `gemm` crate for the linear layers,
//! and a KV cache, over weights dequantized from whatever precision they are stored in (so
//! a quantized GPU model is compared with a twin holding the same values). Checked against
//! an independent float64 numpy forward (`tests/data/llama/`).

use crate::error::{LabError, Result};
use crate::formats::llama::{LlamaConfig, LlamaWeights, MatrixInput, MatrixRole};
use crate::formats::weights::Weights;
use crate::kernels::matmul::{Layout, Shape};
use crate::reference::attention::attend;
use crate::reference::matmul::matmul_cpu_fast;

/// A linear layer's weights in f32 (n x k, row-major).
struct Dense {
    w: Vec<f32>,
    n: usize,
    k: usize,
}

impl Dense {
    fn of(w: &Weights) -> Self {
        Dense {
            w: w.dequantize(),
            n: w.n,
            k: w.k,
        }
    }

    /// y (rows x n) = x (rows x k) W^T.
    fn apply(&self, x: &[f32], rows: usize) -> Result<Vec<f32>> {
        matmul_cpu_fast(Layout::Nt, Shape::new(rows, self.n, self.k)?, x, &self.w)
    }
}

struct Layer {
    attn_norm: Vec<f32>,
    q: Dense,
    k: Dense,
    v: Dense,
    o: Dense,
    ffn_norm: Vec<f32>,
    gate: Dense,
    up: Dense,
    down: Dense,
}

/// The decoder in f32 on the CPU.
pub struct LlamaCpu {
    /// Hyperparameters.
    pub config: LlamaConfig,
    embd: Vec<f32>,
    out_norm: Vec<f32>,
    output: Option<Dense>,
    layers: Vec<Layer>,
}

/// Keys and values of every position seen so far, per layer (position-major, kv_dim wide).
#[derive(Clone)]
pub struct KvCache {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    /// How keys and values are stored (f16: rounded as they go in, as the GPU does).
    pub precision: crate::formats::llama::KvPrecision,
    /// Positions filled.
    pub len: usize,
    /// Positions it can hold.
    pub capacity: usize,
}

/// RMSNorm of one row in place: x / sqrt(mean(x^2) + eps) * w.
pub fn rms_norm(row: &mut [f32], w: &[f32], eps: f32) {
    let ms = row.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / row.len() as f64;
    let inv = 1.0 / (ms + eps as f64).sqrt();
    for (v, g) in row.iter_mut().zip(w) {
        *v = (*v as f64 * inv) as f32 * g;
    }
}

/// llama.cpp's RoPE ("normal" mode, for GGUFs whose Q/K rows are permuted for it): each
/// head's pairs (x[2i], x[2i+1]), i < rope_dims/2, rotate by pos * base^(-2i/rope_dims).
pub fn rope(row: &mut [f32], head_dim: usize, rope_dims: usize, pos: usize, base: f32) {
    for head in row.chunks_mut(head_dim) {
        for i in (0..rope_dims).step_by(2) {
            let theta = pos as f64 * (base as f64).powf(-(i as f64) / rope_dims as f64);
            let (s, c) = theta.sin_cos();
            let (x0, x1) = (head[i] as f64, head[i + 1] as f64);
            head[i] = (x0 * c - x1 * s) as f32;
            head[i + 1] = (x0 * s + x1 * c) as f32;
        }
    }
}

/// SiLU: x * sigmoid(x).
pub fn silu(x: f32) -> f32 {
    let x = x as f64;
    (x / (1.0 + (-x).exp())) as f32
}

impl LlamaCpu {
    /// Dequantizes every tensor of `w` (as stored) into the twin.
    pub fn new(w: &LlamaWeights) -> Self {
        LlamaCpu {
            config: w.config.clone(),
            embd: w.embd.dequantize(),
            out_norm: w.out_norm.clone(),
            output: w.output.as_ref().map(Dense::of),
            layers: w
                .layers
                .iter()
                .map(|l| Layer {
                    attn_norm: l.attn_norm.clone(),
                    q: Dense::of(&l.q),
                    k: Dense::of(&l.k),
                    v: Dense::of(&l.v),
                    o: Dense::of(&l.o),
                    ffn_norm: l.ffn_norm.clone(),
                    gate: Dense::of(&l.gate),
                    up: Dense::of(&l.up),
                    down: Dense::of(&l.down),
                })
                .collect(),
        }
    }

    /// An empty f32 cache for up to `capacity` positions.
    pub fn cache(&self, capacity: usize) -> KvCache {
        self.cache_with(capacity, crate::formats::llama::KvPrecision::F32)
    }

    /// An empty cache for up to `capacity` positions, storing at `precision`.
    pub fn cache_with(
        &self,
        capacity: usize,
        precision: crate::formats::llama::KvPrecision,
    ) -> KvCache {
        let n = self.config.layers;
        KvCache {
            k: vec![Vec::new(); n],
            v: vec![Vec::new(); n],
            precision,
            len: 0,
            capacity,
        }
    }

    /// Runs `tokens` at the next positions of `cache` (prefill when several, a decode step
    /// when one) and returns their logits (tokens.len() x vocab).
    pub fn forward(&self, cache: &mut KvCache, tokens: &[u32]) -> Result<Vec<f32>> {
        self.forward_observed(cache, tokens, &mut |_, _, _| {})
    }

    /// [`LlamaCpu::forward`], showing `observe` every linear layer's input (layer, site,
    /// rows of `tokens.len()` x columns) as it is computed: calibration reads the
    /// activations' importance from it (`model::llama::calibrate`).
    pub fn forward_observed(
        &self,
        cache: &mut KvCache,
        tokens: &[u32],
        observe: &mut dyn FnMut(usize, MatrixInput, &[f32]),
    ) -> Result<Vec<f32>> {
        let c = &self.config;
        let (t, d) = (tokens.len(), c.dim);
        if t == 0 {
            return Err(LabError::InvalidArgument("no tokens to run".into()));
        }
        if cache.len + t > cache.capacity {
            return Err(LabError::InvalidArgument(format!(
                "{} positions asked for, the KV cache holds {}",
                cache.len + t,
                cache.capacity
            )));
        }
        let p0 = cache.len;
        let mut x = self.embed(tokens)?;
        for li in 0..self.layers.len() {
            self.layer(li, cache, &mut x, p0, observe)?;
        }
        cache.len += t;
        for row in x.chunks_mut(d) {
            rms_norm(row, &self.out_norm, c.rms_eps);
        }
        observe(c.layers, MatrixInput::Output, &x);
        match &self.output {
            Some(o) => o.apply(&x, t),
            None => matmul_cpu_fast(Layout::Nt, Shape::new(t, c.vocab, d)?, &x, &self.embd),
        }
    }

    /// The residual stream before layer 0: the embeddings of `tokens` (t x dim).
    pub fn embed(&self, tokens: &[u32]) -> Result<Vec<f32>> {
        let d = self.config.dim;
        if let Some(bad) = tokens.iter().find(|&&id| id as usize >= self.config.vocab) {
            return Err(LabError::InvalidArgument(format!(
                "token id {bad} is past the vocabulary ({})",
                self.config.vocab
            )));
        }
        Ok(tokens
            .iter()
            .flat_map(|&id| self.embd[id as usize * d..][..d].iter().copied())
            .collect())
    }

    /// Runs layer `li` on the residual stream `x` (rows at positions p0, p0 + 1, ...),
    /// appending its keys and values to `cache` (whose length it leaves to the caller), and
    /// showing `observe` its linear layers' inputs. Pruning runs the model a layer at a time
    /// through this (`model::llama::prune`).
    pub fn layer(
        &self,
        li: usize,
        cache: &mut KvCache,
        x: &mut [f32],
        p0: usize,
        observe: &mut dyn FnMut(usize, MatrixInput, &[f32]),
    ) -> Result<()> {
        let c = &self.config;
        let (d, kvd, hd) = (c.dim, c.kv_dim(), c.head_dim());
        if x.is_empty() || !x.len().is_multiple_of(d) {
            return Err(LabError::Shape(format!(
                "layer {li}: a residual stream of {} values is not rows of {d}",
                x.len()
            )));
        }
        let t = x.len() / d;
        let l = self.layers.get(li).ok_or_else(|| {
            LabError::InvalidArgument(format!("layer {li}: the model has {}", self.layers.len()))
        })?;
        if p0 + t > cache.capacity {
            return Err(LabError::InvalidArgument(format!(
                "{} positions asked for, the KV cache holds {}",
                p0 + t,
                cache.capacity
            )));
        }
        let group = c.heads / c.kv_heads;
        let scale = 1.0 / (hd as f64).sqrt();
        let mut h = x.to_vec();
        for row in h.chunks_mut(d) {
            rms_norm(row, &l.attn_norm, c.rms_eps);
        }
        observe(li, MatrixInput::Attention, &h);
        let mut q = l.q.apply(&h, t)?;
        let mut k = l.k.apply(&h, t)?;
        let v = l.v.apply(&h, t)?;
        for i in 0..t {
            rope(&mut q[i * d..][..d], hd, c.rope_dims, p0 + i, c.rope_base);
            rope(
                &mut k[i * kvd..][..kvd],
                hd,
                c.rope_dims,
                p0 + i,
                c.rope_base,
            );
        }
        let kvp = cache.precision;
        cache.k[li].extend(k.iter().map(|&x| kvp.round(x)));
        cache.v[li].extend(v.iter().map(|&x| kvp.round(x)));
        let (ck, cv) = (&cache.k[li], &cache.v[li]);
        let mut att = vec![0f32; t * d];
        for i in 0..t {
            let pos = p0 + i;
            for head in 0..c.heads {
                let kh = head / group;
                let qv = &q[i * d + head * hd..][..hd];
                let at = |j: usize| j * kvd + kh * hd;
                let out = &mut att[i * d + head * hd..][..hd];
                attend(
                    qv,
                    pos + 1,
                    scale,
                    |j| &ck[at(j)..][..hd],
                    |j| &cv[at(j)..][..hd],
                    out,
                );
            }
        }
        observe(li, MatrixInput::AttentionOutput, &att);
        let o = l.o.apply(&att, t)?;
        for (xv, ov) in x.iter_mut().zip(&o) {
            *xv += ov;
        }
        let mut h = x.to_vec();
        for row in h.chunks_mut(d) {
            rms_norm(row, &l.ffn_norm, c.rms_eps);
        }
        observe(li, MatrixInput::Ffn, &h);
        let g = l.gate.apply(&h, t)?;
        let u = l.up.apply(&h, t)?;
        let a: Vec<f32> = g.iter().zip(&u).map(|(g, u)| silu(*g) * u).collect();
        observe(li, MatrixInput::Down, &a);
        let down = l.down.apply(&a, t)?;
        for (xv, dv) in x.iter_mut().zip(&down) {
            *xv += dv;
        }
        Ok(())
    }

    /// Layer `li`'s linear layer `role` (Q, K, V, O, gate, up or down) as the twin holds
    /// it: f32 values (n x k, row-major), n and k.
    pub fn matrix(&self, li: usize, role: MatrixRole) -> Option<(&[f32], usize, usize)> {
        let m = self.dense(li, role)?;
        Some((&m.w, m.n, m.k))
    }

    /// Replaces layer `li`'s linear layer `role` with `w` (same n x k): the pruned weights.
    pub fn set_matrix(&mut self, li: usize, role: MatrixRole, w: Vec<f32>) -> Result<()> {
        let m = self.dense_mut(li, role).ok_or_else(|| {
            LabError::InvalidArgument(format!("layer {li} has no linear layer {role:?}"))
        })?;
        if w.len() != m.n * m.k {
            return Err(LabError::Shape(format!(
                "layer {li} {role:?}: {} values for {} x {}",
                w.len(),
                m.n,
                m.k
            )));
        }
        m.w = w;
        Ok(())
    }

    fn dense(&self, li: usize, role: MatrixRole) -> Option<&Dense> {
        let l = self.layers.get(li)?;
        Some(match role {
            MatrixRole::Q => &l.q,
            MatrixRole::K => &l.k,
            MatrixRole::V => &l.v,
            MatrixRole::O => &l.o,
            MatrixRole::Gate => &l.gate,
            MatrixRole::Up => &l.up,
            MatrixRole::Down => &l.down,
            MatrixRole::Embedding | MatrixRole::Output => return None,
        })
    }

    fn dense_mut(&mut self, li: usize, role: MatrixRole) -> Option<&mut Dense> {
        let l = self.layers.get_mut(li)?;
        Some(match role {
            MatrixRole::Q => &mut l.q,
            MatrixRole::K => &mut l.k,
            MatrixRole::V => &mut l.v,
            MatrixRole::O => &mut l.o,
            MatrixRole::Gate => &mut l.gate,
            MatrixRole::Up => &mut l.up,
            MatrixRole::Down => &mut l.down,
            MatrixRole::Embedding | MatrixRole::Output => return None,
        })
    }

    /// Greedy generation: prefill `prompt`, then up to `n` argmax tokens (stopping after
    /// `eos`). Returns the generated ids.
    pub fn generate_greedy(&self, prompt: &[u32], n: usize, eos: Option<u32>) -> Result<Vec<u32>> {
        let mut cache = self.cache(prompt.len() + n);
        let logits = self.forward(&mut cache, prompt)?;
        let vocab = self.config.vocab;
        let mut next = argmax(&logits[logits.len() - vocab..]);
        let mut out = Vec::new();
        for step in 0..n {
            out.push(next);
            if Some(next) == eos || step + 1 == n {
                break;
            }
            next = argmax(&self.forward(&mut cache, &[next])?);
        }
        Ok(out)
    }
}

/// Index of the largest value (the first on ties).
pub fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best as u32
}
