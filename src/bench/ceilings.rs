//! The hardware's own ceilings, measured: memory bandwidth and peak arithmetic of the
//! adapter (micro-kernels) and of the CPU (an FMA loop with 256-bit vectors, a large copy).
//! The roofline of every benchmark row is drawn from these.

use std::time::Instant;

use serde::Serialize;

use crate::error::{LabError, Result};
use crate::gpu::pipeline::{self as gpu_pipeline, Binding, PipelineSpec};
use crate::gpu::timing::{self, GpuTimer};
use crate::gpu::{buffers, dispatch, Context};
use crate::shaders::Define;
use crate::stats::Summary;

/// Measured ceilings of one device.
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Ceilings {
    /// Streaming copy bandwidth, GB/s counting bytes read + written.
    pub bandwidth_gbps: f64,
    /// f32 FMA throughput, GFLOP/s (an FMA counts 2).
    pub f32_gflops: f64,
    /// f16 FMA throughput, GFLOP/s (None without SHADER_F16).
    pub f16_gflops: Option<f64>,
    /// Packed int8 dot throughput, GOP/s (None without packed_4x8_integer_dot_product).
    pub int8_gops: Option<f64>,
}

/// Runs of each micro-benchmark; the best is kept (a ceiling is what the device *can* do).
const RUNS: usize = 5;

fn best_ms(ctx: &Context, label: &str, run: &dyn Fn(&mut wgpu::ComputePass<'_>)) -> Result<f64> {
    let timer = GpuTimer::new(ctx);
    timing::time_pass(ctx, timer.as_ref(), label, run)?; // warm-up and JIT
    let mut samples = Vec::new();
    for _ in 0..RUNS {
        samples.push(timing::time_pass(ctx, timer.as_ref(), label, run)?.0);
    }
    Ok(Summary::of(&samples).expect("RUNS > 0").min)
}

/// Streaming bandwidth with a vec4 copy kernel over `bytes` (capped by the binding limit).
pub fn gpu_bandwidth(ctx: &Context, bytes: u64) -> Result<f64> {
    let bytes = bytes
        .min(ctx.limits().max_storage_buffer_binding_size)
        .min(ctx.limits().max_buffer_size)
        / 16
        * 16;
    let (pipe, _) = gpu_pipeline::build(
        ctx,
        &PipelineSpec {
            stem: "ceiling_copy",
            defines: vec![],
            entry: "main",
            constants: vec![],
            bindings: vec![Binding::ReadOnly, Binding::ReadWrite],
        },
    )?;
    // A known pattern, checked after the timed runs: a copy that moved the wrong bytes (or
    // none) is not a bandwidth.
    let pattern: Vec<u32> = (0..(bytes / 4) as u32)
        .map(|i| i.wrapping_mul(2654435761))
        .collect();
    let src = buffers::upload(ctx, "ceiling.src", &pattern)?;
    let dst = buffers::storage(ctx, "ceiling.dst", bytes)?;
    let group = gpu_pipeline::bind_group(ctx, &pipe, "ceiling_copy", &[&src, &dst])?;
    let grid = dispatch::grid(
        (bytes / 16).div_ceil(256),
        ctx.limits().max_compute_workgroups_per_dimension,
    )?;
    let ms = best_ms(ctx, "ceiling_copy", &|pass| {
        pass.set_pipeline(&pipe);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups(grid.0, grid.1, 1);
    })?;
    let copied: Vec<u32> = buffers::read(ctx, &dst, pattern.len())?;
    if let Some(i) = copied.iter().zip(&pattern).position(|(a, b)| a != b) {
        return Err(LabError::Readback(format!(
            "ceiling_copy copied word {i} wrong ({:#x} instead of {:#x})",
            copied[i], pattern[i]
        )));
    }
    Ok(2.0 * bytes as f64 / (ms * 1e6))
}

/// Peak arithmetic of `stem` (ceiling_fma or ceiling_dot4) over `workgroups` x 256
/// invocations; returns G(FL)OP/s with `ops_per_iter` operations per invocation and round.
fn gpu_peak(
    ctx: &Context,
    stem: &'static str,
    defines: Vec<Define>,
    ops_per_iter: f64,
) -> Result<f64> {
    const ITERS: u32 = 512;
    let workgroups: u64 = 2048;
    let mut defines = defines;
    defines.push(Define::U32("ITERS", ITERS));
    let (pipe, _) = gpu_pipeline::build(
        ctx,
        &PipelineSpec {
            stem,
            defines,
            entry: "main",
            constants: vec![],
            bindings: vec![Binding::ReadWrite],
        },
    )?;
    let out = buffers::storage(ctx, "ceiling.out", workgroups * 256 * 4)?;
    let group = gpu_pipeline::bind_group(ctx, &pipe, stem, &[&out])?;
    let grid = dispatch::grid(
        workgroups,
        ctx.limits().max_compute_workgroups_per_dimension,
    )?;
    let ms = best_ms(ctx, stem, &|pass| {
        pass.set_pipeline(&pipe);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups(grid.0, grid.1, 1);
    })?;
    let ops = workgroups as f64 * 256.0 * ITERS as f64 * ops_per_iter;
    Ok(ops / (ms * 1e6))
}

/// Measures the adapter's ceilings (a few hundred ms on a GPU, a few seconds on lavapipe).
pub fn gpu(ctx: &Context) -> Result<Ceilings> {
    // 8 vec4 FMAs per round: 8 x 4 lanes x 2 FLOP.
    let fma_ops = 8.0 * 4.0 * 2.0;
    Ok(Ceilings {
        bandwidth_gbps: gpu_bandwidth(ctx, 64 << 20)?,
        f32_gflops: gpu_peak(
            ctx,
            "ceiling_fma",
            vec![Define::Alias("ELEM", "f32")],
            fma_ops,
        )?,
        f16_gflops: if ctx.has(wgpu::Features::SHADER_F16) {
            Some(gpu_peak(
                ctx,
                "ceiling_fma",
                vec![Define::Enable("f16"), Define::Alias("ELEM", "f16")],
                fma_ops,
            )?)
        } else {
            None
        },
        // 8 dot4 per round: 4 multiplies + 4 adds each.
        int8_gops: if ctx.summary.packed_4x8_dot {
            Some(gpu_peak(ctx, "ceiling_dot4", vec![], 8.0 * 8.0)?)
        } else {
            None
        },
    })
}

/// The CPU's ceilings: an FMA loop on every core (256-bit AVX2+FMA where the CPU has it,
/// 128-bit otherwise) and a large copy (read + written bytes).
pub fn cpu() -> Ceilings {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let iters: u64 = 20_000_000;
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        std::thread::scope(|s| {
            for i in 0..threads {
                s.spawn(move || std::hint::black_box(fma_loop(iters, i as f32)));
            }
        });
        best = best.min(t.elapsed().as_secs_f64());
    }
    let (lanes, chains) = fma_shape();
    let flops = threads as f64 * iters as f64 * chains as f64 * lanes as f64 * 2.0;
    // Copy: 256 MiB, larger than any cache.
    let n = 64 << 20;
    let src = vec![1f32; n];
    let mut dst = vec![0f32; n];
    let mut best_copy = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        dst.copy_from_slice(&src);
        std::hint::black_box(&dst);
        best_copy = best_copy.min(t.elapsed().as_secs_f64());
    }
    Ceilings {
        bandwidth_gbps: 2.0 * (n * 4) as f64 / best_copy / 1e9,
        f32_gflops: flops / best / 1e9,
        f16_gflops: None,
        int8_gops: None,
    }
}

/// (f32 lanes per vector, independent accumulator chains) of [`fma_loop`] on this CPU.
fn fma_shape() -> (usize, usize) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        return (8, 10);
    }
    (4, 10)
}

/// `iters` rounds of 10 independent FMA chains; returns a value so nothing is eliminated.
fn fma_loop(iters: u64, seed: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
        return unsafe { fma_loop_avx2(iters, seed) };
    }
    let mut acc = [[seed; 4]; 10];
    for _ in 0..iters {
        for a in acc.iter_mut() {
            for v in a.iter_mut() {
                *v = *v * 0.999 + 0.001;
            }
        }
    }
    acc.iter().flatten().sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_loop_avx2(iters: u64, seed: f32) -> f32 {
    use std::arch::x86_64::*;
    let m = _mm256_set1_ps(0.999);
    let c = _mm256_set1_ps(0.001);
    let mut a = [_mm256_set1_ps(seed); 10];
    for _ in 0..iters {
        for v in a.iter_mut() {
            *v = _mm256_fmadd_ps(*v, m, c);
        }
    }
    let mut out = [0f32; 8];
    let mut s = a[0];
    for v in &a[1..] {
        s = _mm256_add_ps(s, *v);
    }
    _mm256_storeu_ps(out.as_mut_ptr(), s);
    out.iter().sum()
}
