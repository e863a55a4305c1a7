//! llama.cpp, linked as the CPU side of the llama decoder, on the real SmolLM2-135M-Instruct
//! (fetched by scripts/fetch-models): its logits agree with the f32 twin on the same GGUF
//! tensors within a named bound, its cache continues across calls, and files it could abort
//! on are refused by wgpu-lab's reader first, as errors. No adapter needed.

mod common;

use std::path::PathBuf;

use wgpu_lab::bench::llm::log_softmax;
use wgpu_lab::compare::{TOL_LLAMA_CPP_F32_REL, TOL_LLAMA_CPP_Q8_KLD};
use wgpu_lab::formats::gguf::{self, TensorData, Value};
use wgpu_lab::formats::llama::{LlamaFtype, LlamaWeights, LlmPrecision};
use wgpu_lab::formats::weights::WeightFormat;
use wgpu_lab::model::llama::tokenize::LlamaTokenizer;
use wgpu_lab::reference::llama::{argmax, LlamaCpu};
use wgpu_lab::reference::llama_cpp::LlamaCpp;

fn model_path() -> PathBuf {
    common::smollm2_path()
}

fn weights() -> &'static LlamaWeights {
    static W: std::sync::OnceLock<LlamaWeights> = std::sync::OnceLock::new();
    W.get_or_init(|| LlamaWeights::load(&model_path()).unwrap())
}

/// The first `n` tokens of the committed passage.
fn text(n: usize) -> Vec<u32> {
    let tok = LlamaTokenizer::new(&weights().vocab).unwrap();
    let mut t = tok
        .encode(wgpu_lab::bench::llm::DEFAULT_TEXT)
        .expect("the passage tokenizes");
    t.truncate(n);
    t
}

/// Mean KL(want || got) over the rows, nats (llm-bench's own log-softmax).
fn kld(want: &[f32], got: &[f32], vocab: usize) -> f64 {
    let (lw, lg) = (log_softmax(want, vocab), log_softmax(got, vocab));
    let total: f64 = lw
        .iter()
        .zip(&lg)
        .map(|(w, g)| w.iter().zip(g).map(|(a, b)| a.exp() * (a - b)).sum::<f64>())
        .sum();
    total / lw.len() as f64
}

fn rel_error(got: &[f32], want: &[f32]) -> f64 {
    let want: Vec<f64> = want.iter().map(|v| *v as f64).collect();
    wgpu_lab::compare::ErrorStats::compare(got, &want).rel_frobenius
}

#[test]
fn llama_cpp_q8_0_logits_agree_with_the_twin_within_the_named_kld() {
    let w = weights()
        .at_precision(LlmPrecision::LlamaCpp(LlamaFtype::Q8_0))
        .unwrap();
    let twin = LlamaCpu::new(&w);
    let vocab = w.config.vocab;
    let t = text(48);
    let mut cache = twin.cache(t.len() + 1);
    let want = twin.forward(&mut cache, &t).unwrap();
    let mut cpp = LlamaCpp::new(&w, t.len() + 1).unwrap();
    assert_eq!(cpp.vocab, vocab);
    let got = cpp.forward(&t, true).unwrap();
    assert_eq!(got.len(), want.len());
    assert!(got.iter().all(|v| v.is_finite()));
    let k = kld(&want, &got, vocab);
    eprintln!(
        "llama.cpp Q8_0 against the twin over {} tokens: KLD {k:.2e}",
        t.len()
    );
    assert!(k < TOL_LLAMA_CPP_Q8_KLD, "KLD {k:.2e} over the bound");
    // The bound is not loose: llama.cpp's 8-bit activations move the logits visibly.
    assert!(
        k > TOL_LLAMA_CPP_Q8_KLD / 1000.0,
        "KLD {k:.2e}: suspiciously exact"
    );
    // A decode step continues the cache: its logits agree with the twin's step alike.
    let next = argmax(&want[want.len() - vocab..]);
    let step_want = twin.forward(&mut cache, &[next]).unwrap();
    let step_got = cpp.forward(&[next], false).unwrap();
    let k = kld(&step_want, &step_got, vocab);
    assert!(k < TOL_LLAMA_CPP_Q8_KLD, "decode step KLD {k:.2e}");
    assert_eq!(argmax(&step_got), argmax(&step_want));
    // Past the context (llama.cpp rounds it up; `n_ctx` is what it holds): an error, not a
    // crash.
    assert!(cpp.n_ctx > t.len());
    assert!(cpp.forward(&vec![next; cpp.n_ctx], false).is_err());
    // After a reset the same prompt gives the same last logits.
    cpp.reset();
    let again = cpp.forward(&t, false).unwrap();
    assert!(rel_error(&again, &got[got.len() - vocab..]) < 1e-5);
}

#[test]
fn llama_cpp_at_f32_is_the_same_model_as_the_twin() {
    let w = weights()
        .at_precision(LlmPrecision::Format(WeightFormat::F32))
        .unwrap();
    let twin = LlamaCpu::new(&w);
    let vocab = w.config.vocab;
    let t = text(24);
    let want = twin.forward(&mut twin.cache(t.len()), &t).unwrap();
    let got = LlamaCpp::new(&w, t.len())
        .unwrap()
        .forward(&t, true)
        .unwrap();
    let mut worst = 0f64;
    for (p, (g, e)) in got.chunks(vocab).zip(want.chunks(vocab)).enumerate() {
        let rel = rel_error(g, e);
        worst = worst.max(rel);
        assert!(
            rel < TOL_LLAMA_CPP_F32_REL,
            "position {p}: relative error {rel:.2e}"
        );
    }
    eprintln!("llama.cpp f32 against the twin: worst relative error {worst:.2e}");
}

#[test]
fn bad_input_is_an_error_before_llama_cpp_sees_it() {
    // Truncated: the real header, cut inside the metadata.
    let bytes = std::fs::read(model_path()).unwrap();
    let cut = common::tmp("llama-cpp-cut.gguf");
    std::fs::write(&cut, &bytes[..100_000]).unwrap();
    let e = LlamaCpp::open(&cut, 16).err().expect("refused").to_string();
    assert!(!e.is_empty(), "{e}");
    // Not a llama: the same metadata naming another architecture.
    let g = gguf::Gguf::open(&model_path()).unwrap();
    let mut meta = g.metadata.clone();
    meta.retain(|(_, v)| !matches!(v, Value::Array(_)));
    for (k, v) in meta.iter_mut() {
        if k == "general.architecture" {
            *v = Value::Str("bert".into());
        }
    }
    let other = common::tmp("llama-cpp-bert.gguf");
    let t = TensorData {
        name: "token_embd.weight".into(),
        dims: vec![32, 1],
        format: WeightFormat::F32,
        bytes: vec![0; 128],
    };
    gguf::write(&other, &meta, &[t]).unwrap();
    let e = LlamaCpp::open(&other, 16)
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("\"bert\" is not supported"), "{e}");
    // Tokens outside the vocabulary and empty calls are errors too.
    let w = weights();
    let mut cpp = LlamaCpp::new(w, 8).unwrap();
    assert!(cpp.forward(&[w.config.vocab as u32], false).is_err());
    assert!(cpp.forward(&[], false).is_err());
    assert!(LlamaCpp::new(w, 0).is_err());
}

#[test]
fn llm_bench_cpu_columns_are_llama_cpp_on_the_file_it_writes() {
    if common::ctx().is_none() {
        return;
    }
    let dir = common::tmp("llm-bench-gguf");
    let out = common::run_ok(common::bin().args([
        "llm-bench",
        "--precision",
        "llama.cpp:Q8_0",
        "-p",
        "8",
        "-n",
        "4",
        "--repeat",
        "1",
        "--text-tokens",
        "24",
        "--write-gguf",
        dir.to_str().unwrap(),
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = &v["rows"][0];
    for key in ["cpu_pp_tok_s", "cpu_tg_tok_s"] {
        assert!(row[key].as_f64().unwrap() > 0.0, "{key}: {row}");
    }
    let name = row["cpu_impl"].as_str().unwrap();
    assert!(
        name.starts_with("llama.cpp (llama-cpp-sys-2") && name.contains(" threads"),
        "{name}"
    );
    assert!(row["cpu_skipped"].is_null(), "{row}");
    // llama.cpp's own accuracy on the same Q8_0 tensors, against the same f32 teacher as
    // the GPU row: the weights' rounding plus its 8-bit activations.
    let (kld, gpu_kld) = (
        row["cpu_kld_mean"].as_f64().unwrap(),
        row["kld_mean"].as_f64().unwrap(),
    );
    assert!(kld < TOL_LLAMA_CPP_Q8_KLD, "{row}");
    assert!(gpu_kld < kld, "the GPU's f32 activations lose less: {row}");
    let (ppl, gpu_ppl) = (
        row["cpu_perplexity"].as_f64().unwrap(),
        row["perplexity"].as_f64().unwrap(),
    );
    assert!((ppl / gpu_ppl).ln().abs() < 0.1, "{row}");
    // The file written is the one llama.cpp ran: it reads back with the row's formats.
    let back = LlamaWeights::load(&dir.join("llama.cpp-Q8_0.gguf")).unwrap();
    assert_eq!(
        back.format_summary(),
        row["matrix_formats"].as_str().unwrap()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
