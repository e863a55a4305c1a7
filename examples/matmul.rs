//! The shortest honest use of wgpu-lab: pick an adapter, upload, dispatch, read back,
//! compare with the CPU.
//!
//! Run: `cargo run --release --example matmul`
//! (add `-- --fallback`-style selection through `WGPU_LAB_ADAPTER=<index|name>`).

use anyhow::Result;
use wgpu_lab::compare::{ErrorStats, TOL_F32_REL_FROBENIUS};
use wgpu_lab::kernels::matmul::{matmul, Kernel, Layout, Shape};
use wgpu_lab::reference::matmul::matmul_f64;
use wgpu_lab::rng::Rng;
use wgpu_lab::{AdapterSelector, Context};

fn main() -> Result<()> {
    env_logger::init();
    let ctx = Context::new(&AdapterSelector {
        adapter: std::env::var("WGPU_LAB_ADAPTER").ok(),
        ..Default::default()
    })?;
    println!("adapter: {} ({})", ctx.summary.name, ctx.summary.backend);

    let shape = Shape::new(300, 200, 500)?;
    let mut rng = Rng::new(1);
    let a = rng.vec_f32(shape.m * shape.k);
    let b = rng.vec_f32(shape.k * shape.n);

    let kernel = Kernel::named("regblock", Layout::Nn)?;
    let c = matmul(&ctx, kernel, Layout::Nn, shape, &a, &b)?;
    let reference = matmul_f64(Layout::Nn, shape, &a, &b)?;

    let err = ErrorStats::compare(&c, &reference);
    println!(
        "C[0][0] = {:.6} (CPU {:.6}); {}",
        c[0],
        reference[0],
        err.describe(shape.n, TOL_F32_REL_FROBENIUS)
    );
    anyhow::ensure!(
        err.passes(TOL_F32_REL_FROBENIUS),
        "GPU result differs from the CPU"
    );
    println!("ok");
    Ok(())
}
