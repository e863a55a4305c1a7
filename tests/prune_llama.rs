//! Pruning the real SmolLM2-135M-Instruct (issue 23): every decoder linear pruned a layer
//! at a time, scored by the CPU twin on the first 256 tokens of the committed passage
//! against the dense f32 twin. The published ordering must hold on this model, with named
//! bounds (the full grid is in docs/results/sparsity-lavapipe.md):
//!
//! - Wanda and SparseGPT well below magnitude at 2:4, by 4x or more (magnitude collapses:
//!   perplexity in the thousands against ~44 dense on this prefix);
//! - 6:8 < 4:8 < 2:4 for Wanda;
//! - Wanda keeps 2:4 within one order of magnitude of dense, and 6:8 within 1.5x.

mod common;

use wgpu_lab::bench::llm::DEFAULT_TEXT;
use wgpu_lab::bench::llm_prune::{run, PruneRequest, PruneRow};
use wgpu_lab::formats::llama::LlamaWeights;
use wgpu_lab::formats::sparse::Sparsity;
use wgpu_lab::formats::weights::WeightFormat;
use wgpu_lab::model::llama::calibrate::CALIBRATION_TEXT;
use wgpu_lab::model::llama::prune::prune_llama;
use wgpu_lab::model::llama::tokenize::LlamaTokenizer;
use wgpu_lab::prune::Method;

fn ratio(rows: &[PruneRow], s: &str, m: &str) -> f64 {
    rows.iter()
        .find(|r| r.sparsity == s && r.prune.as_deref() == Some(m))
        .and_then(|r| r.perplexity_ratio)
        .unwrap_or_else(|| panic!("no {s} {m} row"))
}

#[test]
fn pruned_smollm2_keeps_the_published_ordering() {
    let file = LlamaWeights::load(&common::smollm2_path()).unwrap();
    let tok = LlamaTokenizer::new(&file.vocab).unwrap();
    let mut text = tok.encode(DEFAULT_TEXT).unwrap();
    text.truncate(256);
    // SparseGPT gets the commands' 766 calibration tokens (with 256 its 2:4 ratio rose from
    // ~8 to 10.3, too near magnitude's 39 on this prefix); Wanda's three patterns get 256,
    // which keeps its ordering and bounds (5.8x, 3.5x, 1.29x) and saves ~30 s of CI.
    let calibration = tok.encode(CALIBRATION_TEXT).unwrap();
    let short = calibration[..256.min(calibration.len())].to_vec();
    let pattern = |s: &str| Sparsity::parse(s).unwrap();
    let mut rows = Vec::new();
    for (methods, patterns, calibration) in [
        (
            vec![Method::Magnitude, Method::Sparsegpt],
            vec![pattern("2:4")],
            &calibration,
        ),
        (
            vec![Method::Wanda],
            vec![pattern("2:4"), pattern("4:8"), pattern("6:8")],
            &short,
        ),
    ] {
        let req = PruneRequest {
            precisions: vec![WeightFormat::F32],
            sparsity: patterns,
            methods,
            text: text.clone(),
            calibration: calibration.clone(),
        };
        rows.extend(run(&file, &req, &mut |r| eprintln!("{r:?}")).unwrap());
    }
    let (mag, sgpt, wanda) = (
        ratio(&rows, "2:4", "magnitude"),
        ratio(&rows, "2:4", "sparsegpt"),
        ratio(&rows, "2:4", "wanda"),
    );
    assert!(
        mag > 20.0,
        "magnitude 2:4 should collapse on a 135M model: {mag}"
    );
    // Measured on this prefix: magnitude 39x, SparseGPT 7.7x, Wanda 5.8x. A factor of 4
    // below magnitude is "well below" with room for another CPU's rounding (at 5,
    // SparseGPT passed by 2%).
    assert!(
        wanda < mag / 4.0 && sgpt < mag / 4.0,
        "wanda {wanda} sparsegpt {sgpt} magnitude {mag}"
    );
    assert!(wanda < 10.0, "wanda 2:4: {wanda}x dense");
    let (w68, w48) = (ratio(&rows, "6:8", "wanda"), ratio(&rows, "4:8", "wanda"));
    assert!(w68 < w48 && w48 < wanda, "6:8 {w68} 4:8 {w48} 2:4 {wanda}");
    assert!(w68 < 1.5, "wanda 6:8: {w68}x dense");
    // The stored bytes follow the layout: f32 2:4 is 16 bits of values + 1 of mask.
    let r = rows.iter().find(|r| r.sparsity == "2:4").unwrap();
    assert!((r.bits_per_weight.unwrap() - 17.0).abs() < 1e-9, "{r:?}");
}

#[test]
fn pruning_errors_name_the_problem() {
    let file = LlamaWeights::load(&common::smollm2_path()).unwrap();
    let tok = LlamaTokenizer::new(&file.vocab).unwrap();
    let few = tok.encode("Too short to calibrate on.").unwrap();
    let e = prune_llama(
        &file,
        Method::Sparsegpt,
        Sparsity::parse("2:4").unwrap(),
        &few,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("too little data") && e.contains("layer 0"),
        "{e}"
    );
    let e = prune_llama(&file, Method::Wanda, Sparsity::parse("2:4").unwrap(), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("calibration"), "{e}");
    // 576 and 1536 are not whole groups of 7.
    let e = prune_llama(
        &file,
        Method::Magnitude,
        Sparsity::parse("3:7").unwrap(),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("not whole groups of 7"), "{e}");
}
