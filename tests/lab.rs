//! The kernel lab (issue 24): every example kernel passes its op's battery; mutants of them
//! (an off-by-one at a tile edge, a wrong scale offset, a missing barrier, swapped nibbles)
//! fail with the failing shape and element named; syntax errors come with naga's file:line;
//! a binding that breaks the contract is named; a hung kernel ends the process; `tune
//! --kernel` stores constants that `kernel` then runs with.

mod common;

use std::path::PathBuf;

use common::{bin, run_fails, run_ok};
use wgpu_lab::formats::weights::WeightFormat;
use wgpu_lab::gpu::pipeline::Checks;
use wgpu_lab::lab::{check, Kernel, Op, Shapes};
use wgpu_lab::LabError;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples/kernels")
        .join(name)
}

fn source(name: &str) -> String {
    std::fs::read_to_string(example(name)).unwrap()
}

/// `name`'s source with `from` replaced by `to` (which must occur).
fn mutant(name: &str, from: &str, to: &str) -> Kernel {
    let s = source(name);
    assert!(s.contains(from), "{name} has no {from:?}");
    Kernel::from_source(&format!("{name} (mutant)"), &s.replacen(from, to, 1)).unwrap()
}

/// Every file in examples/kernels/ passes its header's op. The largest shape (1000^3) runs
/// for the f32 kernel only: the minimal weight-format kernels take seconds each there on
/// lavapipe, and they share its code path (the CLI runs the whole battery by default).
#[test]
fn every_example_kernel_passes_its_battery() {
    let Some(ctx) = common::ctx() else { return };
    let mut files: Vec<_> = std::fs::read_dir(example(""))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    let mut ops = std::collections::BTreeSet::new();
    for f in &files {
        let k = Kernel::from_file(f).unwrap();
        let op = k.op(None, None).unwrap();
        ops.insert(op.label());
        let shapes = if f.ends_with("matmul_f32_nn.wgsl") {
            Shapes::battery()
        } else {
            Shapes::quick()
        };
        let r = check(ctx, &k, op, &shapes).unwrap();
        assert!(r.passed(), "{}:\n{}", f.display(), r.describe());
        assert_eq!(r.shapes.len(), shapes.0.len());
    }
    // One example per op of the contract.
    for want in [
        "matmul_nn/f32",
        "matmul_nt/f32",
        "matmul_nt/f16",
        "matmul_nt/bf16",
        "matmul_nt/q8_0",
        "matmul_nt/q4_0",
        "matmul_nt/q4_1",
        "matmul_nt/q4_k",
        "matmul_nt/q6_k",
        "matmul_i8/int8",
    ] {
        assert!(ops.contains(want), "no example for {want}: {ops:?}");
    }
}

/// A mutant fails, and the report names the shape and the first wrong element.
fn assert_caught(k: &Kernel, op: Op, shape: &str) {
    let Some(ctx) = common::ctx() else { return };
    let r = check(ctx, k, op, &Shapes::quick()).unwrap();
    assert!(!r.passed(), "{} passed:\n{}", k.path, r.describe());
    let f = r.first_failure().unwrap();
    let line = f.describe();
    assert!(
        line.contains(shape) && line.contains("first wrong C["),
        "{}: first failure {line:?}, expected at {shape}\n{}",
        k.path,
        r.describe()
    );
}

#[test]
fn off_by_ones_at_tile_edges_are_caught_at_the_shape_that_shows_them() {
    // The last column of every staged tile skipped: invisible while k fits in the part of
    // the first tile that is read (k = 5), caught at the first k past it (17).
    let k = mutant(
        "matmul_f32_nn_tiled.wgsl",
        "for (var kk = 0u; kk < TS; kk++) {",
        "for (var kk = 0u; kk + 1u < TS; kk++) {",
    );
    assert_caught(&k, Op::MatmulNn, "33x65x17");
    // The last, partial tile of k dropped: k = 1 has nothing but a partial tile.
    let k = mutant(
        "matmul_f32_nn_tiled.wgsl",
        "for (var k0 = 0u; k0 < p.k; k0 += TS) {",
        "for (var k0 = 0u; k0 + TS <= p.k; k0 += TS) {",
    );
    assert_caught(&k, Op::MatmulNn, "1x1x1");
    // (Reading one past k is not caught by any shape: the value past the end of B reads
    // as zero under wgpu's bounds checks, so the extra product adds nothing.)
}

/// A kernel gets every one of naga's runtime checks unless the user vouches for its loops
/// (`--trusted-loops`, as the built-in kernels are compiled); trusted, the tiled example
/// still passes its battery and an off-by-one in a loop bound is still caught.
#[test]
fn trusted_loops_are_opt_in_and_hide_no_error() {
    let k = Kernel::from_file(example("matmul_f32_nn_tiled.wgsl")).unwrap();
    assert_eq!(k.checks, Checks::All);
    let t = k.clone().with_trusted_loops(true);
    assert_eq!(t.checks, Checks::TrustedLoops);
    assert_eq!(t.clone().with_trusted_loops(false).checks, Checks::All);
    // Set constants keep the choice (the tuner clones kernels with its candidates).
    let c = t.clone().with_constants(&Default::default()).unwrap();
    assert_eq!(c.checks, Checks::TrustedLoops);
    let Some(ctx) = common::ctx() else { return };
    let r = check(ctx, &t, Op::MatmulNn, &Shapes::quick()).unwrap();
    assert!(r.passed(), "{}", r.describe());
    let bad = mutant(
        "matmul_f32_nn_tiled.wgsl",
        "for (var kk = 0u; kk < TS; kk++) {",
        "for (var kk = 0u; kk + 1u < TS; kk++) {",
    )
    .with_trusted_loops(true);
    assert_caught(&bad, Op::MatmulNn, "33x65x17");
}

#[test]
fn a_missing_barrier_is_caught() {
    let k = mutant(
        "matmul_f32_nn_tiled.wgsl",
        "        workgroupBarrier(); // every read done before the next step overwrites\n",
        "",
    );
    // k = 17 is the first shape with two tiles of k.
    assert_caught(&k, Op::MatmulNn, "33x65x17");
}

#[test]
fn a_wrong_scale_offset_and_swapped_nibbles_are_caught() {
    let q4_0 = Op::MatmulNt {
        precision: WeightFormat::Q4_0,
    };
    let k = mutant(
        "matmul_q4_0_nt.wgsl",
        "unpack2x16float(s[g / 2u])[g % 2u]",
        "unpack2x16float(s[(g + 1u) / 2u])[(g + 1u) % 2u]",
    );
    assert_caught(&k, q4_0, "1x1x1");
    let k = mutant(
        "matmul_q4_0_nt.wgsl",
        "part += a[a0 + i] * (f32(byte & 0xfu) - 8.0);\n            part += a[a0 + i + 16u] * (f32(byte >> 4u) - 8.0);",
        "part += a[a0 + i] * (f32(byte >> 4u) - 8.0);\n            part += a[a0 + i + 16u] * (f32(byte & 0xfu) - 8.0);",
    );
    assert_caught(&k, q4_0, "1x1x1");
}

#[test]
fn a_syntax_error_gives_nagas_message_with_the_line() {
    let s = source("matmul_f32_nn.wgsl");
    let bad = s.replacen("var acc = 0.0;", "var acc = 0.0", 1);
    let line = s
        .lines()
        .position(|l| l.contains("var acc = 0.0;"))
        .unwrap()
        + 1;
    let e = Kernel::from_source("my.wgsl", &bad)
        .unwrap_err()
        .to_string();
    // naga points at the token after the missing semicolon: this line or the next.
    assert!(
        e.contains(&format!("my.wgsl:{line}:")) || e.contains(&format!("my.wgsl:{}:", line + 1)),
        "{e}"
    );
    assert!(e.contains("expected"), "{e}");
}

#[test]
fn bindings_that_break_the_contract_are_named() {
    let q4_0 = Op::MatmulNt {
        precision: WeightFormat::Q4_0,
    };
    let contract = |from: &str, to: &str| {
        mutant("matmul_q4_0_nt.wgsl", from, to)
            .check_contract(q4_0)
            .unwrap_err()
            .to_string()
    };
    // Valid WGSL (the same bits, read through a bitcast), but not the contract's type.
    let s = source("matmul_q4_0_nt.wgsl")
        .replacen(
            "var<storage, read> w: array<u32>;",
            "var<storage, read> w: array<f32>;",
            1,
        )
        .replacen(
            "(w[g * 4u + i / 4u] >>",
            "(bitcast<u32>(w[g * 4u + i / 4u]) >>",
            1,
        );
    let e = Kernel::from_source("w.wgsl", &s)
        .unwrap()
        .check_contract(q4_0)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("@binding(2) `w`") && e.contains("array<u32>"),
        "{e}"
    );
    let e = contract(
        "var<storage, read> a: array<f32>;",
        "var<storage, read_write> a: array<f32>;",
    );
    assert!(
        e.contains("@binding(1) `a`") && e.contains("declared read_write"),
        "{e}"
    );
    // A store to a read-only output is naga's error, with the line.
    let s = source("matmul_q4_0_nt.wgsl").replacen(
        "var<storage, read_write> c: array<f32>;",
        "var<storage, read> c: array<f32>;",
        1,
    );
    let e = Kernel::from_source("c.wgsl", &s).unwrap_err().to_string();
    assert!(
        e.contains("c.wgsl:62:") && e.contains("not permitted"),
        "{e}"
    );
    // Two fields swapped: valid WGSL that would read the wrong words.
    let e = contract(
        "    ldc: u32,     // row stride of C (n)\n    col0: u32,",
        "    col0: u32,\n    ldc: u32,",
    );
    assert!(
        e.contains("field 6 is `col0`") && e.contains("`ldc: u32`"),
        "{e}"
    );
    let e = contract("@group(0) @binding(3)", "@group(0) @binding(7)");
    assert!(e.contains("@binding(7)") && e.contains("outside"), "{e}");
    // The f32 contract held against a weight-format kernel: its `w` is not `b`'s f32.
    let k = Kernel::from_file(example("matmul_q4_0_nt.wgsl")).unwrap();
    let e = k.check_contract(Op::MatmulNn).unwrap_err().to_string();
    assert!(e.contains("@binding(0) `p`"), "{e}");
}

#[test]
fn headers_and_constants_are_checked() {
    let s = source("matmul_f32_nn.wgsl");
    let e = Kernel::from_source(
        "h.wgsl",
        &s.replacen("tile = WG_Y x WG_X", "tile = WG_Y x TN", 1),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("`TN`") && e.contains("WG_X, WG_Y"), "{e}");
    let k = Kernel::from_source("h.wgsl", &s).unwrap();
    let e = k
        .clone()
        .with_constants(&[("NOPE".to_string(), 1.0)].into())
        .unwrap_err();
    assert!(matches!(e, LabError::Kernel { .. }) && e.to_string().contains("NOPE"));
    let k = k
        .with_constants(&[("WG_X".to_string(), 16.0)].into())
        .unwrap();
    assert_eq!(k.tile().unwrap(), (8, 16));
    let no_op = s.replacen("// lab: op = matmul_nn\n", "", 1);
    let k = Kernel::from_source("h.wgsl", &no_op).unwrap();
    assert!(k.op(None, None).unwrap_err().to_string().contains("--op"));
    assert_eq!(k.op(Some("matmul_nn"), None).unwrap(), Op::MatmulNn);
}

#[test]
fn the_cli_validates_times_and_exits_non_zero_on_a_wrong_kernel() {
    if common::ctx().is_none() {
        return;
    }
    let out = run_ok(
        bin()
            .args(["kernel", "--quick", "--no-roofline", "--no-autotune"])
            .args([
                example("matmul_f32_nt.wgsl").to_str().unwrap(),
                "--m",
                "64",
                "--n",
                "48",
                "--k",
                "40",
                "--repeat",
                "2",
            ]),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("matmul_f32_nt (yours)"), "{text}");
    assert!(text.contains("built-in"), "{text}");
    assert!(text.contains("the best built-in kernel"), "{text}");
    // Compiled with every check, and told how to match the built-in kernels' compile.
    assert!(text.contains("compiled with naga's checks"), "{text}");
    if Checks::built_in() == Checks::TrustedLoops {
        assert!(text.contains("--trusted-loops drops"), "{text}");
    }
    let out = run_ok(
        bin()
            .args(["kernel", "--quick", "--no-time", "--trusted-loops"])
            .arg(example("matmul_f32_nt.wgsl")),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("compiled with trusted loops"), "{text}");
    // An f16-using kernel runs where the adapter has f16.
    let f16 = common::f16_math_kernel();
    if wgpu_lab::lab::Kernel::from_file(&f16)
        .unwrap()
        .unsupported(common::ctx().unwrap())
        .is_none()
    {
        run_ok(bin().args(["kernel", "--quick", "--no-time"]).arg(&f16));
    }
    // A mutant: exit 1, the shape named on stderr.
    let bad = common::tmp("nibbles.wgsl");
    std::fs::write(
        &bad,
        source("matmul_q4_0_nt.wgsl").replacen("byte >> 4u", "byte >> 3u", 1),
    )
    .unwrap();
    let out = run_fails(bin().args(["kernel", "--quick", "--no-time"]).arg(&bad));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("validation failed at") && err.contains("first wrong C["),
        "{err}"
    );
    // JSON carries the verdict per shape.
    let out = run_ok(
        bin()
            .args(["kernel", "--quick", "--no-time", "--json"])
            .arg(example("matmul_i8_nt.wgsl")),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["validation"]["shapes"].as_array().unwrap().len(), 6);
    assert_eq!(v["validation"]["op"], "matmul_i8/int8");
}

#[test]
fn a_kernel_far_past_its_time_is_reported_and_the_process_exits() {
    if common::ctx().is_none() {
        return;
    }
    let slow = common::tmp("slow.wgsl");
    std::fs::write(
        &slow,
        source("matmul_f32_nn.wgsl").replacen(
            "    c[row * p.n + col] = acc;",
            "    for (var i = 0u; i < 4000000000u; i++) { acc += 1e-30; }\n    c[row * p.n + col] = acc;",
            1,
        ),
    )
    .unwrap();
    let t = std::time::Instant::now();
    let out = bin()
        .args(["kernel", "--no-time", "--timeout", "1"])
        .arg(&slow)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("far past its expected time"), "{err}");
    assert!(t.elapsed().as_secs() < 60, "took {:?}", t.elapsed());
}

#[test]
fn tune_kernel_stores_constants_that_kernel_then_runs_with() {
    if common::ctx().is_none() {
        return;
    }
    let cache = common::tmp("lab-tune.json");
    let _ = std::fs::remove_file(&cache);
    let file = example("matmul_f32_nn.wgsl");
    let out = run_ok(
        bin()
            .args(["tune", "--kernel"])
            .arg(&file)
            .args([
                "--gemm-problem",
                "64,64,64",
                "--repeat",
                "1",
                "--tune-cache",
            ])
            .arg(&cache),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("of 16 candidates timed"), "{text}");
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cache).unwrap_or_default())
            .unwrap_or_default();
    if text.contains("kept the defaults") {
        // The defaults won the confirmation: nothing stored, and that is said.
        assert!(
            stored["kernels"].as_object().is_none_or(|m| m.is_empty()),
            "{stored}"
        );
        return;
    }
    let adapters = stored["kernels"].as_object().unwrap();
    let entries = adapters.values().next().unwrap().as_object().unwrap();
    let (key, constants) = entries.iter().next().unwrap();
    assert!(key.starts_with("lab/matmul_nn/f32/gemm/"), "{key}");
    assert!(constants["WG_X"].is_number() && constants["WG_Y"].is_number());
    let out = run_ok(
        bin()
            .args(["kernel", "--quick", "--no-time", "--tune-cache"])
            .arg(&cache)
            .arg(&file),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("(tuned: `tune --kernel`)"), "{text}");
}

#[test]
fn tune_kernel_needs_declared_constants() {
    let out = run_fails(
        bin()
            .args(["tune", "--kernel"])
            .arg(example("matmul_f32_nn_tiled.wgsl")),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing to search"), "{err}");
}
