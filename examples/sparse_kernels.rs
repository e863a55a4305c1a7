//! Every sparse-kernel candidate on one problem, next to the dense kernels of the same
//! format: where the N:M kernels stand and which shape wins on this adapter.
//!
//! Run: `cargo run --release --example sparse_kernels -- [FORMAT] [N:M] [M] [N] [K]`
//! (default: q4_0 2:4 1 4096 4096). Every result is validated against the CPU twin.
//! `WGPU_LAB_SPARSE_KERNELS=NAME` runs only the sparse candidates whose name contains NAME
//! (e.g. `bcast`).

use anyhow::{ensure, Result};
use wgpu_lab::compare::{ErrorStats, TOL_WQ_KERNEL_REL_FROBENIUS};
use wgpu_lab::formats::sparse::{SparseWeights, Sparsity};
use wgpu_lab::formats::weights::{WeightFormat, Weights};
use wgpu_lab::gpu::measure::{measure, Runs};
use wgpu_lab::kernels::matmul_wq::{PreparedMatmulWq, WqKernel, WqVariant};
use wgpu_lab::kernels::sparse::{PreparedSparse, SparseKernel};
use wgpu_lab::prune::{prune, Method};
use wgpu_lab::reference::sparse::matmul_sparse_f64;
use wgpu_lab::rng::Rng;
use wgpu_lab::{AdapterSelector, Context};

fn main() -> Result<()> {
    env_logger::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let format = WeightFormat::parse(&arg(0, "q4_0"))?;
    let Sparsity::Nm(pattern) = Sparsity::parse(&arg(1, "2:4"))? else {
        anyhow::bail!("give an N:M pattern");
    };
    let (m, n, k): (usize, usize, usize) = (
        arg(2, "1").parse()?,
        arg(3, "4096").parse()?,
        arg(4, "4096").parse()?,
    );
    let ctx = Context::new(&AdapterSelector {
        adapter: std::env::var("WGPU_LAB_ADAPTER").ok(),
        ..Default::default()
    })?;
    println!(
        "adapter: {} ({}); {} {pattern} {m}x{n}x{k}",
        ctx.summary.name,
        ctx.summary.backend,
        format.name()
    );
    let mut rng = Rng::new(5);
    let a = rng.vec_f32(m * k);
    let w = rng.vec_f32(n * k);
    let runs = Runs {
        warmup: 2,
        repeat: 7,
    };
    let dense = Weights::encode(format, n, k, &w)?;
    let mut dense_variants = vec![WqVariant::Regblock(WqKernel::default_for(m))];
    if m == 1 {
        dense_variants.push(WqVariant::GEMV);
        // The decoder's default at m = 1 on CPU adapters.
        dense_variants.push(WqVariant::Broadcast {
            lanes: 16,
            quads: 2,
        });
    }
    for v in dense_variants {
        let op = PreparedMatmulWq::with_variant(&ctx, v, &a, m, k, &dense)?;
        let (t, _) = measure(&ctx, &op, runs)?;
        println!(
            "dense {:<40} {:8.3} ms  {:6.2} GB/s  {} bytes",
            format!("{v:?}"),
            t.gpu.median,
            op.weight_bytes as f64 / t.gpu.median / 1e6,
            op.weight_bytes
        );
    }
    let pr = prune(Method::Magnitude, Sparsity::Nm(pattern), &w, n, k, None)?;
    let sw = SparseWeights::compress(format, pattern, n, k, &pr.w, &pr.keep)?;
    let reference = matmul_sparse_f64(&a, m, k, &sw)?;
    let only = std::env::var("WGPU_LAB_SPARSE_KERNELS").ok();
    let candidates = SparseKernel::candidates(m)
        .into_iter()
        .filter(|k| only.as_ref().is_none_or(|o| k.name().contains(o.as_str())));
    for kernel in candidates {
        let op = PreparedSparse::new(&ctx, kernel, &a, m, k, &sw)?;
        let (t, c) = measure(&ctx, &op, runs)?;
        let e = ErrorStats::compare(&c, &reference);
        ensure!(
            e.passes(TOL_WQ_KERNEL_REL_FROBENIUS),
            "{kernel:?}: {}",
            e.describe(n, TOL_WQ_KERNEL_REL_FROBENIUS)
        );
        println!(
            "{pattern:5} {:<40} {:8.3} ms  {:6.2} GB/s  {} bytes",
            kernel.describe(),
            t.gpu.median,
            op.weight_bytes as f64 / t.gpu.median / 1e6,
            op.weight_bytes
        );
    }
    Ok(())
}
