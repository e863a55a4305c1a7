//! Your kernel in your own `cargo test`: validate a WGSL file against the float64 twin of
//! its op on the shape battery, and fail the test with the shape and element that are
//! wrong. Copy this file into your project's tests/ (with `wgpu-lab` as a dev-dependency)
//! and point it at your kernel.
//!
//! ```text
//! cargo run --release --example lab_check -- examples/kernels/matmul_q4_k_nt.wgsl
//! cargo test --release --example lab_check
//! ```
//!
//! Output (lavapipe, Mesa 22.3.6):
//!
//! ```text
//! examples/kernels/matmul_q4_k_nt.wgsl as matmul_nt/q4_k on llvmpipe (LLVM 15.0.6, 256 bits)
//!          1x1x1  ok    rel. error 3.00e-8
//!         7x13x5  ok    rel. error 1.61e-7
//! ...
//! ```

use anyhow::Result;
use wgpu_lab::lab::{check, Kernel, Report, Shapes};
use wgpu_lab::{AdapterSelector, Context};

/// Validates the kernel at `path` as its header's op on `shapes`.
fn validate(ctx: &Context, path: &str, shapes: &Shapes) -> Result<Report> {
    let kernel = Kernel::from_file(path)?;
    // The op and precision come from the file's `// lab:` header.
    let op = kernel.op(None, None)?;
    Ok(check(ctx, &kernel, op, shapes)?)
}

fn main() -> Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "examples/kernels/matmul_q4_0_nt.wgsl".into());
    let ctx = Context::new(&AdapterSelector::default())?;
    let report = validate(&ctx, &path, &Shapes::battery())?;
    println!("{path} as {} on {}", report.op, report.adapter);
    print!("{}", report.describe());
    if !report.passed() && report.skipped.is_none() {
        anyhow::bail!("{path} failed validation");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn my_kernel_passes_the_battery() {
        // Where there is no adapter at all (CI sets one up), say so rather than fail.
        let ctx = match Context::new(&AdapterSelector::default()) {
            Ok(c) => c,
            Err(e) if std::env::var("WGPU_LAB_ALLOW_NO_ADAPTER").as_deref() == Ok("1") => {
                eprintln!("SKIPPED: {e}");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/kernels/matmul_q4_k_nt.wgsl"
        );
        let report = validate(&ctx, path, &Shapes::quick()).unwrap();
        // On failure: the shape, the first wrong element, expected and actual.
        assert!(report.passed(), "{}", report.describe());
    }
}
