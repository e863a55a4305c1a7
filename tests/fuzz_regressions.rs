//! Replays every committed fuzz input (`tests/data/fuzz/<target>/`, the crashes the
//! campaigns found and their seeds) through the same entry points `fuzz/` drives
//! (`wgpu_lab::fuzzing`), on stable: a regression panics here. The campaigns themselves
//! are in docs/results/fuzzing.md.

use std::path::Path;

use wgpu_lab::fuzzing::TARGETS;

#[test]
fn every_committed_fuzz_input_is_handled() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz");
    let mut replayed = 0;
    for (name, run) in TARGETS {
        let dir = root.join(name);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            panic!(
                "{} is missing: every fuzz target keeps its inputs",
                dir.display()
            );
        };
        let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        assert!(!files.is_empty(), "{}: no inputs", dir.display());
        for f in files {
            let data = std::fs::read(&f).unwrap();
            let r = std::panic::catch_unwind(|| run(&data));
            assert!(r.is_ok(), "{name}: {} panicked", f.display());
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} inputs");
}

#[test]
fn the_seeds_reach_the_parsers_success_paths() {
    // A seed that every parser refuses would leave the fuzzer at the front door.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz");
    let llama = root.join("llama/seed-tiny-llama.gguf");
    let w = wgpu_lab::formats::llama::LlamaWeights::load(&llama).unwrap();
    let t = wgpu_lab::model::llama::tokenize::LlamaTokenizer::new(&w.vocab).unwrap();
    assert!(!t.encode("Hello world").unwrap().is_empty());
    let (_, data) = wgpu_lab::npy::read_array(&root.join("npy/seed-3x5-f32.npy"), 2..=2).unwrap();
    assert_eq!(data.len(), 15);
    let cache = wgpu_lab::bench::tune::TuneCache::load(&root.join("tune_cache/seed-cache.json"));
    assert_eq!(cache.adapters.len(), 1);
    // The BERT seed's config and tokenizer parse (its safetensors is a header only).
    let seed = std::fs::read(root.join("bert/seed-minilm-header.bin")).unwrap();
    let len = u16::from_le_bytes([seed[0], seed[1]]) as usize;
    let config: serde_json::Value = serde_json::from_slice(&seed[2..2 + len]).unwrap();
    assert_eq!(config["num_hidden_layers"], 6);
    let rest = &seed[2 + len..];
    let tlen = u16::from_le_bytes([rest[0], rest[1]]) as usize;
    let dir = std::env::temp_dir().join(format!("wgpu-lab-seed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("tokenizer.json"), &rest[2..2 + tlen]).unwrap();
    let tok = wgpu_lab::model::bert::tokenize::Tokenizer::from_dir(&dir, 512).unwrap();
    assert!(tok.encode("the man").unwrap().0.len() >= 3);
    std::fs::remove_dir_all(&dir).unwrap();
}
