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
            gpu: None,
        };
        rows.extend(run(None, &file, &req, &mut |r| eprintln!("{r:?}")).unwrap());
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

/// Relative Frobenius error of each vocab-wide row of `got` against `want`, the largest.
fn worst_row_error(got: &[f32], want: &[f32], vocab: usize) -> f64 {
    assert_eq!(got.len(), want.len());
    got.chunks(vocab)
        .zip(want.chunks(vocab))
        .map(|(g, w)| {
            let w: Vec<f64> = w.iter().map(|v| *v as f64).collect();
            wgpu_lab::compare::ErrorStats::compare(g, &w).rel_frobenius
        })
        .fold(0.0, f64::max)
}

#[test]
fn the_gpu_decoder_runs_the_sparse_linears_as_the_twin_does() {
    use wgpu_lab::kernels::sparse::SparseKernel;
    use wgpu_lab::model::llama::gpu::{GpuLlama, LlamaKernels, SparseLinears, Want};
    use wgpu_lab::reference::llama::LlamaCpu;
    let Some(ctx) = common::ctx() else { return };
    let file = LlamaWeights::load(&common::smollm2_path()).unwrap();
    let tok = LlamaTokenizer::new(&file.vocab).unwrap();
    let prompt = tok.encode("The river that runs through Paris is").unwrap();
    let steps = 3;
    let vocab = file.config.vocab;
    // Each case: the kept values' format, the pattern, the decode GEMV (the CPU adapters'
    // broadcast kernel and the GPUs' workgroup kernel), prefill through matmul_sparse.
    for (format, pattern, decode) in [
        (WeightFormat::Q4_0, "2:4", SparseKernel::default_for(ctx, 1)),
        (WeightFormat::Q8_0, "4:8", SparseKernel::Gemv { wg: 32 }),
    ] {
        let pruned = prune_llama(
            &file,
            Method::Magnitude,
            Sparsity::parse(pattern).unwrap(),
            &[],
        )
        .unwrap();
        let pw = pruned.weights(&file, format).unwrap();
        let sparse = SparseLinears {
            layers: pw.sparse.clone().expect("N:M keeps the compressed linears"),
            decode,
            prefill: SparseKernel::default_for(ctx, prompt.len()),
        };
        let kernels = LlamaKernels::default_for(ctx);
        let cap = prompt.len() + steps;
        let mut gpu = GpuLlama::new_sparse(ctx, &pw.weights, &sparse, cap, kernels).unwrap();
        // The GPU holds the compressed linears, not the twin's dense f32 copies.
        let dense_f32: u64 = pw
            .weights
            .layers
            .iter()
            .flat_map(|l| [&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down])
            .map(|m| m.bytes.len() as u64)
            .sum();
        assert!(
            gpu.weight_bytes < dense_f32 / 4,
            "{} bytes on the GPU",
            gpu.weight_bytes
        );
        let twin = LlamaCpu::new(&pw.weights);
        let mut cache = twin.cache(cap);
        // The same stored values on both sides: f32 accumulation in different orders over
        // 30 layers, as the dense decoder's test (1e-3; a wrong column or mask is O(1)).
        let bound = 1e-3;
        let g = gpu.forward(ctx, &prompt, Want::AllLogits, None).unwrap();
        let c = twin.forward(&mut cache, &prompt).unwrap();
        let e = worst_row_error(&g.logits, &c, vocab);
        assert!(e < bound, "{} {pattern} prefill: {e:.2e}", format.name());
        let mut next = prompt[prompt.len() - 1];
        for s in 0..steps {
            let c = twin.forward(&mut cache, &[next]).unwrap();
            let g = gpu.forward(ctx, &[next], Want::LastLogits, None).unwrap();
            let e = worst_row_error(&g.logits, &c, vocab);
            assert!(
                e < bound,
                "{} {pattern} decode step {s} ({decode:?}): {e:.2e}",
                format.name()
            );
            next = (s as u32 * 7919 + 11) % vocab as u32;
        }
    }
}

#[test]
fn a_sparse_gpu_decoder_refuses_what_it_cannot_run() {
    use wgpu_lab::formats::int8::Int8Scheme;
    use wgpu_lab::kernels::sparse::SparseKernel;
    use wgpu_lab::model::llama::gpu::{GpuLlama, LlamaKernels, SparseLinears};
    let Some(ctx) = common::ctx() else { return };
    let file = LlamaWeights::load(&common::smollm2_path()).unwrap();
    let pruned = prune_llama(
        &file,
        Method::Magnitude,
        Sparsity::parse("2:4").unwrap(),
        &[],
    )
    .unwrap();
    let pw = pruned.weights(&file, WeightFormat::Q8_0).unwrap();
    let layers = pw.sparse.clone().unwrap();
    let sparse = |layers: Vec<Vec<_>>, decode, prefill| SparseLinears {
        layers,
        decode,
        prefill,
    };
    let kernels = LlamaKernels::default_for(ctx);
    let (gemv, mm) = (
        SparseKernel::Gemv { wg: 32 },
        SparseKernel::Matmul { wg_x: 64, tm: 4 },
    );
    let err = |s: &SparseLinears, k: LlamaKernels| {
        GpuLlama::new_sparse(ctx, &pw.weights, s, 8, k)
            .err()
            .expect("refused")
            .to_string()
    };
    // A layer short.
    let e = err(&sparse(layers[1..].to_vec(), gemv, mm), kernels);
    assert!(e.contains("layers"), "{e}");
    // Kernels swapped.
    let e = err(&sparse(layers.clone(), mm, gemv), kernels);
    assert!(e.contains("GEMV"), "{e}");
    // W8A8 has no sparse kernels.
    let w8a8 = kernels.with_w8a8(Some(Int8Scheme::Rot32));
    let e = err(&sparse(layers.clone(), gemv, mm), w8a8);
    assert!(e.contains("W8A8"), "{e}");
    // Unstructured sparsity keeps no compressed linears.
    let u50 = prune_llama(
        &file,
        Method::Magnitude,
        Sparsity::parse("u50").unwrap(),
        &[],
    )
    .unwrap()
    .weights(&file, WeightFormat::Q8_0)
    .unwrap();
    assert!(u50.sparse.is_none());
}

#[test]
fn llm_bench_and_generate_run_the_pruned_decoder_on_the_gpu() {
    let model = common::smollm2_path();
    let model = model.to_str().unwrap();
    let out = common::run_ok(common::bin().args([
        "llm-bench",
        "--model",
        model,
        "--sparsity",
        "2:4",
        "--prune",
        "magnitude",
        "--precision",
        "q8_0",
        "--text-tokens",
        "32",
        "-p",
        "8",
        "-n",
        "4",
        "--repeat",
        "1",
        "--json",
    ]));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 2, "a dense row and a 2:4 row");
    for r in &rows {
        let (twin, gpu) = (
            r["perplexity"].as_f64().unwrap(),
            r["gpu_perplexity"].as_f64().unwrap(),
        );
        // The same stored values through the GPU kernels: f32 rounding apart.
        assert!((gpu / twin - 1.0).abs() < 1e-3, "{r}");
        assert!(r["tg_tok_s"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["pp_tok_s"].as_f64().unwrap() > 0.0, "{r}");
    }
    let sparse = &rows[1];
    assert_eq!(sparse["sparsity"], "2:4");
    assert!(
        sparse["decode_kernel"].as_str().unwrap().contains("sparse"),
        "{sparse}"
    );
    assert!(sparse["tg_vs_dense"].as_f64().is_some(), "{sparse}");
    // The GPU holds the compressed linears: fewer bytes than the dense row.
    assert!(
        sparse["gpu_weight_bytes"].as_u64() < rows[0]["gpu_weight_bytes"].as_u64(),
        "{rows:?}"
    );
    let out = common::run_ok(common::bin().args([
        "generate",
        "--model",
        model,
        "--precision",
        "q8_0",
        "--sparsity",
        "2:4",
        "--prune",
        "magnitude",
        "-n",
        "3",
        "--json",
        "Paris is",
    ]));
    let g: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        g["decode_kernel"].as_str().unwrap().contains("sparse"),
        "{g}"
    );
    assert_eq!(g["sparsity"], "2:4");
    assert!(!g["tokens"].as_array().unwrap().is_empty(), "{g}");
    // Bad input: a precision that is not a plain format, a pattern that does not divide
    // the rows.
    for (precision, pattern, says) in [
        ("llama.cpp:Q4_0", "2:4", "plain format"),
        ("q8_0", "3:7", "not whole groups of 7"),
    ] {
        let out = common::run_fails(common::bin().args([
            "generate",
            "--model",
            model,
            "--precision",
            precision,
            "--sparsity",
            pattern,
            "--prune",
            "magnitude",
            "-n",
            "1",
            "Paris",
        ]));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
    }
}
