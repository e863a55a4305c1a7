//! An adapter's ceilings, measured with WGSL micro-kernels: f32 and f16 FMA peaks, the packed
//! int8 dot peak, and the bandwidth of each memory level, the better of a read-only stream
//! (`ceiling_read`, a GEMV's traffic) and a copy (`ceiling_copy`). An adapter that runs on
//! the CPU (lavapipe, WARP) streams from the CPU's caches, so it is probed at the host's
//! cache sizes; a GPU's cache sizes are not exposed by wgpu, so it is probed at 2, 16 and
//! up to 256 MiB, each probe naming the working sets it stands for.

use crate::error::{LabError, Result};
use crate::gpu::pipeline::{self as gpu_pipeline, Binding, PipelineSpec};
use crate::gpu::timing::{self, GpuTimer};
use crate::gpu::{buffers, dispatch, Context};
use crate::shaders::Define;
use crate::stats::Summary;

use super::{Ceilings, MemoryLevel};

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

/// Dispatches per timed pass for a probe of `bytes`: small probes repeat so that a pass
/// lasts long enough for its timestamps to mean something.
fn reps_for(bytes: u64) -> usize {
    ((64u64 << 20) / bytes.max(1)).clamp(1, 16) as usize
}

/// A known pattern, checked after the timed runs: a kernel that moved the wrong bytes (or
/// none) is not a bandwidth.
fn pattern(words: usize) -> Vec<u32> {
    (0..words as u32)
        .map(|i| i.wrapping_mul(2654435761))
        .collect()
}

fn wrong(stem: &str, i: usize, got: u32, want: u32) -> LabError {
    LabError::Readback(format!(
        "{stem} wrote word {i} wrong ({got:#x} instead of {want:#x})"
    ))
}

/// The largest probe the adapter can bind: `bytes` capped by its binding and buffer limits.
fn cap(ctx: &Context, bytes: u64) -> u64 {
    bytes
        .min(ctx.limits().max_storage_buffer_binding_size)
        .min(ctx.limits().max_buffer_size)
        / 256
        * 256
}

/// Copy bandwidth (bytes read + written per second, GB/s) over a working set of `bytes`
/// (half source, half destination).
pub fn gpu_bandwidth(ctx: &Context, bytes: u64) -> Result<f64> {
    let half = cap(ctx, bytes / 2).max(256);
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
    let src_words = pattern((half / 4) as usize);
    let src = buffers::upload(ctx, "ceiling.src", &src_words)?;
    let dst = buffers::storage(ctx, "ceiling.dst", half)?;
    let group = gpu_pipeline::bind_group(ctx, &pipe, "ceiling_copy", &[&src, &dst])?;
    let grid = dispatch::grid(
        (half / 16).div_ceil(256),
        ctx.limits().max_compute_workgroups_per_dimension,
    )?;
    let reps = reps_for(2 * half);
    let ms = best_ms(ctx, "ceiling_copy", &|pass| {
        pass.set_pipeline(&pipe);
        pass.set_bind_group(0, &group, &[]);
        for _ in 0..reps {
            pass.dispatch_workgroups(grid.0, grid.1, 1);
        }
    })?;
    let copied: Vec<u32> = buffers::read(ctx, &dst, src_words.len())?;
    if let Some(i) = copied.iter().zip(&src_words).position(|(a, b)| a != b) {
        return Err(wrong("ceiling_copy", i, copied[i], src_words[i]));
    }
    Ok(reps as f64 * 2.0 * half as f64 / (ms * 1e6))
}

/// Read-only bandwidth (bytes read per second, GB/s) over `bytes`, checked word for word
/// against the host's sums.
pub fn gpu_read_bandwidth(ctx: &Context, bytes: u64) -> Result<f64> {
    const READS: u32 = 16;
    let lanes = (cap(ctx, bytes) / 16 / READS as u64).max(256) as usize;
    let (pipe, _) = gpu_pipeline::build(
        ctx,
        &PipelineSpec {
            stem: "ceiling_read",
            defines: vec![Define::U32("READS", READS)],
            entry: "main",
            constants: vec![],
            bindings: vec![Binding::ReadOnly, Binding::ReadWrite],
        },
    )?;
    let words = pattern(lanes * READS as usize * 4);
    let src = buffers::upload(ctx, "ceiling.src", &words)?;
    let dst = buffers::storage(ctx, "ceiling.dst", (lanes * 16) as u64)?;
    let group = gpu_pipeline::bind_group(ctx, &pipe, "ceiling_read", &[&src, &dst])?;
    let grid = dispatch::grid(
        (lanes as u64).div_ceil(256),
        ctx.limits().max_compute_workgroups_per_dimension,
    )?;
    let read_bytes = (words.len() * 4) as u64;
    let reps = reps_for(read_bytes);
    let ms = best_ms(ctx, "ceiling_read", &|pass| {
        pass.set_pipeline(&pipe);
        pass.set_bind_group(0, &group, &[]);
        for _ in 0..reps {
            pass.dispatch_workgroups(grid.0, grid.1, 1);
        }
    })?;
    let got: Vec<u32> = buffers::read(ctx, &dst, lanes * 4)?;
    for (j, g) in got.iter().enumerate() {
        let (lane, c) = (j / 4, j % 4);
        let want = (0..READS as usize)
            .map(|r| words[(r * lanes + lane) * 4 + c])
            .fold(0u32, u32::wrapping_add);
        if *g != want {
            return Err(wrong("ceiling_read", j, *g, want));
        }
    }
    Ok(reps as f64 * (read_bytes + got.len() as u64 * 4) as f64 / (ms * 1e6))
}

/// The memory levels of the adapter, innermost first, each the better of read and copy.
fn levels(ctx: &Context, host: &Ceilings) -> Result<Vec<MemoryLevel>> {
    let probes: Vec<(String, Option<u64>, u64)> = if ctx.summary.device_type == "cpu" {
        host.levels
            .iter()
            .map(|l| (l.name.clone(), l.fits_bytes, l.probe_bytes))
            .collect()
    } else {
        vec![
            ("<= 4 MiB".into(), Some(4 << 20), 2 << 20),
            ("<= 32 MiB".into(), Some(32 << 20), 16 << 20),
            ("memory".into(), None, 512 << 20),
        ]
    };
    let mut levels = Vec::new();
    for (name, fits_bytes, probe) in probes {
        let gbps = gpu_bandwidth(ctx, probe)?.max(gpu_read_bandwidth(ctx, probe)?);
        levels.push(MemoryLevel {
            name,
            fits_bytes,
            probe_bytes: probe.min(2 * cap(ctx, probe)),
            gbps,
        });
    }
    super::monotone(&mut levels);
    Ok(levels)
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
    // Enough invocations to fill a large GPU; a CPU adapter fills its cores with far fewer,
    // and 2048 workgroups there would take seconds per run.
    let workgroups: u64 = if ctx.summary.device_type == "cpu" {
        256
    } else {
        4096
    };
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

/// Measures the adapter's ceilings (a few hundred ms on a GPU, a few seconds on lavapipe);
/// `host` gives the cache levels of an adapter that runs on the CPU (lavapipe, WARP).
pub fn measure(ctx: &Context, host: &Ceilings) -> Result<Ceilings> {
    // 8 vec4 FMAs per round: 8 x 4 lanes x 2 FLOP.
    let fma_ops = 8.0 * 4.0 * 2.0;
    let levels = levels(ctx, host)?;
    Ok(Ceilings {
        bandwidth_gbps: levels.last().map_or(0.0, |l| l.gbps),
        levels,
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
        method: "WGSL micro-kernels: vec4 FMA, dot4I8Packed, read and copy streams".into(),
    })
}
