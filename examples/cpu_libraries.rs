//! Every CPU library wgpu-lab could use as a baseline, side by side on one product: `gemm`
//! (f32, f16), ggml's `mul_mat` (every format, as llama.cpp runs it) and candle-core's
//! QMatMul (the block formats), each validated against the float64 twin and timed (median of
//! the runs after one untimed). This is the measurement behind `reference::cpu_baseline`'s
//! choice of library per precision.
//!
//! ```sh
//! cargo run --release --example cpu_libraries -- 512 512 512     # m n k
//! cargo run --release --example cpu_libraries -- 1 4096 4096     # a GEMV
//! ```

use std::time::Instant;

use candle_core::quantized::{ggml_file::qtensor_from_ggml, QMatMul};
use candle_core::{Device, Module, Tensor};
use half::f16;
use wgpu_lab::compare::ErrorStats;
use wgpu_lab::formats::weights::{WeightFormat, Weights};
use wgpu_lab::kernels::matmul::{Layout, Shape};
use wgpu_lab::reference::cpu_baseline::candle_dtype;
use wgpu_lab::reference::ggml::matmul::GgmlMatmul;
use wgpu_lab::reference::matmul::{gemm_any, matmul_cpu_fast};
use wgpu_lab::reference::matmul_wq::matmul_wq_f64;
use wgpu_lab::rng::Rng;

/// Median milliseconds of `runs` calls after one untimed, and the last result.
fn time(
    runs: usize,
    mut f: impl FnMut() -> anyhow::Result<Vec<f32>>,
) -> anyhow::Result<(f64, Vec<f32>)> {
    let mut out = f()?;
    let mut ms = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        out = std::hint::black_box(f()?);
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    Ok((ms[ms.len() / 2], out))
}

fn main() -> anyhow::Result<()> {
    let dims: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let [m, n, k] = dims[..] else {
        anyhow::bail!("usage: cpu_libraries M N K");
    };
    let shape = Shape::new(m, n, k)?;
    let mut rng = Rng::new(1);
    let (a, w) = (rng.vec_f32(m * k), rng.vec_f32(n * k));
    let runs = if shape.flops() > 2e9 { 5 } else { 21 };
    let be = wgpu_lab::reference::ggml::cpu()?;
    println!(
        "{m}x{n}x{k}; ggml: {} (features: {})",
        be.describe(),
        be.features.join(" ")
    );
    println!("| format | library | ms | GFLOP/s | rel err vs twin |");
    println!("|---|---|---|---|---|");
    let row = |format: &str, lib: &str, ms: f64, c: &[f32], want: &[f64]| {
        let e = ErrorStats::compare(c, want).rel_frobenius;
        println!(
            "| {format} | {lib} | {ms:.3} | {:.1} | {e:.1e} |",
            shape.flops() / ms / 1e6
        );
    };
    for format in WeightFormat::ALL {
        let Ok(wt) = Weights::encode(format, n, k, &w) else {
            println!(
                "| {} | - | k = {k} is not whole blocks | | |",
                format.name()
            );
            continue;
        };
        let want = matmul_wq_f64(&a, m, k, &wt)?;
        // ggml last: its pool's workers spin after each call and would slow what runs next.
        match format {
            WeightFormat::F32 | WeightFormat::Bf16 => {
                let wide = wt.dequantize();
                let (ms, c) = time(runs, || Ok(matmul_cpu_fast(Layout::Nt, shape, &a, &wide)?))?;
                row(format.name(), "gemm f32", ms, &c, &want);
            }
            WeightFormat::F16 => {
                let w16: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
                let (ms, c) = time(runs, || {
                    let a16: Vec<f16> = a.iter().map(|&v| f16::from_f32(v)).collect();
                    Ok(gemm_any(Layout::Nt, shape, &a16, &w16, f16::ZERO, f16::ONE)
                        .iter()
                        .map(|v| v.to_f32())
                        .collect())
                })?;
                row(format.name(), "gemm f16", ms, &c, &want);
            }
            _ => {}
        }
        if let Some(dtype) = candle_dtype(format) {
            let qt = qtensor_from_ggml(dtype, &wt.bytes, vec![n, k], &Device::Cpu)?;
            let qm = QMatMul::from_qtensor(qt)?;
            let (ms, c) = time(runs, || {
                let x = Tensor::from_slice(&a, (m, k), &Device::Cpu)?;
                Ok(qm.forward(&x)?.flatten_all()?.to_vec1::<f32>()?)
            })?;
            row(format.name(), "candle-core 0.11 QMatMul", ms, &c, &want);
        }
        let g = GgmlMatmul::new(format, &wt.bytes, m, n, k)?;
        let (ms, c) = time(runs, || Ok(g.run(&a)?))?;
        row(
            format.name(),
            &format!("ggml ({})", g.weight_buffer),
            ms,
            &c,
            &want,
        );
    }
    Ok(())
}
