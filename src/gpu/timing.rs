//! GPU timestamps around a compute pass, with a wall-clock fallback.

use std::time::Instant;

use serde::Serialize;

use crate::error::Result;
use crate::gpu::{buffers, Context};

/// Where a duration came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimingSource {
    /// Timestamp queries written at the start and end of the compute pass.
    GpuTimestamp,
    /// Host clock around submit + wait (includes submission overhead).
    WallClock,
}

impl TimingSource {
    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            TimingSource::GpuTimestamp => "gpu-timestamp",
            TimingSource::WallClock => "wall-clock",
        }
    }
}

/// Two timestamp queries and the buffer they resolve into.
pub struct GpuTimer {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    period_ns: f64,
}

impl GpuTimer {
    /// A timer, or `None` when the device lacks TIMESTAMP_QUERY.
    pub fn new(ctx: &Context) -> Option<Self> {
        if !ctx.has(wgpu::Features::TIMESTAMP_QUERY) {
            return None;
        }
        let set = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("pass-timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        });
        let resolve = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamp-resolve"),
            size: 2 * 8,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        Some(Self {
            set,
            resolve,
            period_ns: ctx.queue.get_timestamp_period() as f64,
        })
    }
}

/// Runs one compute pass built by `encode` and returns its duration in milliseconds.
///
/// With a timer the duration is the GPU's own, from the pass's first to last command;
/// without one it is host time from submit to completion.
pub fn time_pass(
    ctx: &Context,
    timer: Option<&GpuTimer>,
    label: &str,
    encode: impl FnOnce(&mut wgpu::ComputePass<'_>),
) -> Result<(f64, TimingSource)> {
    let cmd = ctx.scoped(&format!("encoding {label}"), || {
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(label),
                timestamp_writes: timer.map(|t| wgpu::ComputePassTimestampWrites {
                    query_set: &t.set,
                    beginning_of_pass_write_index: Some(0),
                    end_of_pass_write_index: Some(1),
                }),
            });
            encode(&mut pass);
        }
        if let Some(t) = timer {
            enc.resolve_query_set(&t.set, 0..2, &t.resolve, 0);
        }
        enc.finish()
    })?;
    let start = Instant::now();
    ctx.scoped(&format!("submitting {label}"), || ctx.queue.submit([cmd]))?;
    ctx.wait(label)?;
    let wall_ms = start.elapsed().as_secs_f64() * 1e3;
    match timer {
        Some(t) => {
            let ticks: Vec<u64> = buffers::read(ctx, &t.resolve, 2)?;
            let ns = ticks[1].wrapping_sub(ticks[0]) as f64 * t.period_ns;
            // A zero or wrapped reading (some drivers, some passes) is no measurement.
            if ticks[1] > ticks[0] {
                Ok((ns / 1e6, TimingSource::GpuTimestamp))
            } else {
                Ok((wall_ms, TimingSource::WallClock))
            }
        }
        None => Ok((wall_ms, TimingSource::WallClock)),
    }
}

/// Most dispatches `time_each` times in one submission (two queries each; wgpu caps a
/// query set at 4096).
pub const MAX_TIMED_DISPATCHES: usize = 2048;

/// What `time_each` measured.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatchTimes {
    /// Each dispatch's GPU time (its pass's start to end), ms.
    pub each: Vec<f64>,
    /// First start to last end, ms: the dispatches and what runs between them (barriers,
    /// pass boundaries).
    pub span: f64,
}

/// Records `n` dispatches, each in its own compute pass with a timestamp at its start and
/// end, submits them at once and returns each one's GPU time and the whole span: a
/// profile of a submission that `time_pass` would time as a whole. The device must have
/// TIMESTAMP_QUERY. What runs between two dispatches (the barrier a dependent dispatch
/// needs, the pass boundary) falls outside every dispatch's time and inside the span.
pub fn time_each(
    ctx: &Context,
    label: &str,
    n: usize,
    mut encode: impl FnMut(&mut wgpu::ComputePass<'_>, usize),
) -> Result<DispatchTimes> {
    use crate::error::LabError;
    if !ctx.has(wgpu::Features::TIMESTAMP_QUERY) {
        return Err(LabError::MissingFeature {
            feature: "TIMESTAMP_QUERY (needed to profile each dispatch)",
            adapter: ctx.summary.name.clone(),
        });
    }
    if n == 0 || n > MAX_TIMED_DISPATCHES {
        return Err(LabError::InvalidArgument(format!(
            "{n} dispatches to time (1..={MAX_TIMED_DISPATCHES} per submission)"
        )));
    }
    let count = 2 * n as u32;
    let set = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
        label: Some("dispatch-timestamps"),
        ty: wgpu::QueryType::Timestamp,
        count,
    });
    let resolve = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("dispatch-timestamp-resolve"),
        size: count as u64 * 8,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let cmd = ctx.scoped(&format!("encoding {label} (profiled)"), || {
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
        for i in 0..n {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(label),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: &set,
                    beginning_of_pass_write_index: Some(2 * i as u32),
                    end_of_pass_write_index: Some(2 * i as u32 + 1),
                }),
            });
            encode(&mut pass, i);
        }
        enc.resolve_query_set(&set, 0..count, &resolve, 0);
        enc.finish()
    })?;
    ctx.scoped(&format!("submitting {label} (profiled)"), || {
        ctx.queue.submit([cmd])
    })?;
    ctx.wait(label)?;
    let ticks: Vec<u64> = buffers::read(ctx, &resolve, 2 * n)?;
    let period = ctx.queue.get_timestamp_period() as f64;
    let ms = |from: u64, to: u64| to.saturating_sub(from) as f64 * period / 1e6;
    Ok(DispatchTimes {
        each: ticks.chunks(2).map(|t| ms(t[0], t[1])).collect(),
        span: ms(ticks[0], ticks[2 * n - 1]),
    })
}
