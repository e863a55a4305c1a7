//! Two things about llama.cpp's shared libraries (built by `llama-cpp-sys-2`):
//!
//! - every binary (the CLI, tests, examples) finds them without `LD_LIBRARY_PATH`: an rpath
//!   to where the crate installed them, and one to the binary's own folder, so a copy of the
//!   binary with the libraries beside it runs elsewhere (`scripts/device-bench prepare`);
//! - ggml's CPU variants minus the AMX one (`sapphirerapids`) are linked into a folder of
//!   their own, `WGPU_LAB_GGML_CPU_DIR`, which `reference::ggml` loads from: ggml's AMX
//!   matmul crashes (SIGILL in `tileloadd`) on machines whose kernel gives AMX state per
//!   thread (llama.cpp PR #26954, open), stock llama.cpp included; the next best variant
//!   (AVX-512 VNNI/BF16) runs instead. `WGPU_LAB_GGML_AMX=1` at run time loads them all.

use std::path::Path;

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    println!("cargo:rerun-if-env-changed=DEP_LLAMA_GGML_CMAKE_DIR");
    println!("cargo:rerun-if-env-changed=DEP_LLAMA_BACKENDS_DIR");
    let origin = match os.as_str() {
        "linux" | "android" | "freebsd" => Some("$ORIGIN"),
        "macos" | "ios" => Some("@loader_path"),
        _ => None,
    };
    if let Some(origin) = origin {
        // `links = "llama"` exports the folder of ggml's CMake package: <out>/lib/cmake.
        if let Ok(cmake_dir) = std::env::var("DEP_LLAMA_GGML_CMAKE_DIR") {
            if let Some(lib) = Path::new(&cmake_dir).parent() {
                println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
            }
        }
        println!("cargo:rustc-link-arg=-Wl,-rpath,{origin}");
    }
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let dir = Path::new(&out).join("ggml-cpu");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create OUT_DIR/ggml-cpu");
    if let Ok(backends) = std::env::var("DEP_LLAMA_BACKENDS_DIR") {
        for entry in std::fs::read_dir(&backends).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.contains("ggml-cpu-") && !name.contains("sapphirerapids") {
                link(&entry.path(), &dir.join(&name));
            }
        }
    }
    println!("cargo:rustc-env=WGPU_LAB_GGML_CPU_DIR={}", dir.display());
}

#[cfg(unix)]
fn link(from: &Path, to: &Path) {
    std::os::unix::fs::symlink(from, to).expect("symlink a ggml CPU variant");
}

#[cfg(not(unix))]
fn link(from: &Path, to: &Path) {
    std::fs::copy(from, to).expect("copy a ggml CPU variant");
}
