//! Text generation with the GPU decoder: the prompt prefilled in one pass, then one
//! submission per new token (greedy: the argmax on the GPU, only its id read back;
//! sampling: the last logits read back and sampled on the host with temperature, top-k and
//! top-p from a seeded generator, so a seed reproduces a run). Stops at EOS or after `n`.

use std::time::Instant;

use serde::Serialize;

use crate::error::{LabError, Result};
use crate::gpu::Context;
use crate::model::llama::gpu::{GpuLlama, Want};
use crate::model::llama::tokenize::LlamaTokenizer;
use crate::rng::Rng;

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Temperature; 0 means greedy (argmax on the GPU).
    pub temp: f32,
    /// Keep the k most likely tokens (0: all).
    pub top_k: usize,
    /// Keep the smallest set whose probability reaches p (1: all).
    pub top_p: f32,
    /// Seed of the sampler.
    pub seed: u64,
}

impl Sampling {
    /// Greedy decoding.
    pub const GREEDY: Sampling = Sampling {
        temp: 0.0,
        top_k: 0,
        top_p: 1.0,
        seed: 0,
    };

    /// Refuses settings that mean nothing (negative temperature, p outside (0, 1]).
    pub fn check(&self) -> Result<()> {
        if !(self.temp >= 0.0 && self.temp.is_finite()) {
            return Err(LabError::InvalidArgument(format!(
                "--temp {} (must be >= 0; 0 is greedy)",
                self.temp
            )));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(LabError::InvalidArgument(format!(
                "--top-p {} (must be in (0, 1])",
                self.top_p
            )));
        }
        Ok(())
    }
}

/// Samples an id from `logits` (temperature, then top-k, then top-p).
pub fn sample(logits: &[f32], s: &Sampling, rng: &mut Rng) -> u32 {
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    if s.top_k > 0 {
        idx.truncate(s.top_k);
    }
    let max = logits[idx[0]] as f64;
    let mut probs: Vec<f64> = idx
        .iter()
        .map(|&i| ((logits[i] as f64 - max) / s.temp as f64).exp())
        .collect();
    let total: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= total);
    let mut keep = probs.len();
    let mut acc = 0.0;
    for (i, p) in probs.iter().enumerate() {
        acc += p;
        if acc >= s.top_p as f64 {
            keep = i + 1;
            break;
        }
    }
    let mass: f64 = probs[..keep].iter().sum();
    let mut u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * mass;
    for (i, p) in probs[..keep].iter().enumerate() {
        if u < *p {
            return idx[i] as u32;
        }
        u -= p;
    }
    idx[keep - 1] as u32
}

/// What a generation did, with its speeds (wall clock, as a user waits for them).
#[derive(Debug, Clone, Serialize)]
pub struct Generation {
    /// The prompt's ids.
    pub prompt_tokens: Vec<u32>,
    /// The generated ids (EOS included when reached).
    pub tokens: Vec<u32>,
    /// The generated text (without the EOS token that ended it).
    pub text: String,
    /// Prompt tokens per second of the prefill pass (submit to the first token's id).
    pub prefill_tok_s: f64,
    /// Generated tokens per second after the first (one submission each).
    pub decode_tok_s: f64,
}

/// Generates up to `n` tokens after `prompt` (ids), calling `on_text` with each new piece
/// of text as it arrives. The model's cache is reset first. Checks, before any GPU work,
/// that the prompt is not empty and that prompt + n fits the model's KV cache.
pub fn generate(
    ctx: &Context,
    model: &mut GpuLlama,
    tok: &LlamaTokenizer,
    prompt: &[u32],
    n: usize,
    sampling: Sampling,
    on_text: &mut dyn FnMut(&str),
) -> Result<Generation> {
    sampling.check()?;
    if prompt.is_empty() {
        return Err(LabError::InvalidArgument(
            "the prompt is empty (this model adds no BOS token)".into(),
        ));
    }
    if n == 0 {
        return Err(LabError::InvalidArgument("-n must be at least 1".into()));
    }
    if prompt.len() + n > model.capacity {
        return Err(LabError::InvalidArgument(format!(
            "{} prompt tokens + {n} new ones exceed the KV cache of {} positions (the model's \
             context is {})",
            prompt.len(),
            model.capacity,
            model.config.context
        )));
    }
    model.reset();
    let mut rng = Rng::new(sampling.seed);
    let want = if sampling.temp == 0.0 {
        Want::Argmax
    } else {
        Want::LastLogits
    };
    let mut pick = |out: crate::model::llama::gpu::Output| -> u32 {
        match out.token {
            Some(t) => t,
            None => sample(&out.logits, &sampling, &mut rng),
        }
    };
    let t0 = Instant::now();
    let mut next = pick(model.forward(ctx, prompt, want, None)?);
    let prefill_s = t0.elapsed().as_secs_f64();
    let mut tokens = vec![next];
    let mut shown = String::new();
    let show = |tokens: &[u32], shown: &mut String, on_text: &mut dyn FnMut(&str)| -> Result<()> {
        // The EOS that ends the answer is not part of its text.
        let tokens = match tokens.split_last() {
            Some((last, rest)) if Some(*last) == tok.eos => rest,
            _ => tokens,
        };
        let text = tok.decode(tokens)?;
        // Hold back a piece that ends inside a multi-byte character.
        if !text.ends_with('\u{fffd}')
            && text.len() > shown.len()
            && text.starts_with(shown.as_str())
        {
            on_text(&text[shown.len()..]);
            *shown = text;
        }
        Ok(())
    };
    show(&tokens, &mut shown, on_text)?;
    let t1 = Instant::now();
    while tokens.len() < n && Some(next) != tok.eos {
        next = pick(model.forward(ctx, &[next], want, None)?);
        tokens.push(next);
        show(&tokens, &mut shown, on_text)?;
    }
    let decode_s = t1.elapsed().as_secs_f64();
    let body = match tokens.split_last() {
        Some((last, rest)) if Some(*last) == tok.eos => rest,
        _ => &tokens[..],
    };
    let text = tok.decode(body)?;
    if text.len() > shown.len() && text.starts_with(shown.as_str()) {
        on_text(&text[shown.len()..]);
    }
    Ok(Generation {
        prompt_tokens: prompt.to_vec(),
        prefill_tok_s: prompt.len() as f64 / prefill_s,
        decode_tok_s: if tokens.len() > 1 {
            (tokens.len() - 1) as f64 / decode_s
        } else {
            f64::NAN
        },
        tokens,
        text,
    })
}
