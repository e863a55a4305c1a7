//! Compute pipelines from `shaders/` with explicit bind group layouts, cached in the
//! [`Context`], and bind groups over plain buffer lists.

use std::sync::Arc;
use std::time::Instant;

use crate::error::Result;
use crate::gpu::Context;
use crate::shaders::{self, Define};

/// How a kernel binds one buffer (bindings are numbered 0, 1, 2... in group 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// `var<uniform>`.
    Uniform,
    /// `var<storage, read>`.
    ReadOnly,
    /// `var<storage, read_write>`.
    ReadWrite,
}

/// Which of naga's runtime checks a shader module is compiled with. wgpu adds three by
/// default: bounds checks on every index, guards on integer `/` and `%`, and a counter in
/// every loop (`force_loop_bounding`) so that a driver may not assume a loop ends. The
/// counter is the one that costs: on lavapipe it slows a workgroup-tiled GEMM 1.3-2.6x, likely
/// by keeping its short tile loops from being unrolled (docs/results/public-gemm-lavapipe.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Checks {
    /// Every check wgpu adds by default: right for any WGSL, a user's included.
    #[default]
    All,
    /// All but the loop counter. Sound only for code whose every loop ends (each runs to a
    /// bound the host sets): the built-in kernels, and a user's kernel when the user vouches
    /// for it (`kernel --trusted-loops`). Bounds checks and division guards stay.
    TrustedLoops,
}

impl Checks {
    /// The checks the built-in kernels get: [`Checks::TrustedLoops`], or [`Checks::All`]
    /// when the environment sets `WGPU_LAB_LOOP_COUNTER=1` (to measure what the counter
    /// costs, or to rule it out when a driver is suspected of miscompiling a loop).
    pub fn built_in() -> Self {
        match std::env::var("WGPU_LAB_LOOP_COUNTER").as_deref() {
            Ok("1") => Checks::All,
            _ => Checks::TrustedLoops,
        }
    }

    /// A short name for tables and messages.
    pub fn name(self) -> &'static str {
        match self {
            Checks::All => "naga's checks",
            Checks::TrustedLoops => "trusted loops",
        }
    }
}

/// Creates the shader module for WGSL `src` with `checks`. naga parses and validates it the
/// same way whichever checks are chosen.
pub fn shader_module(ctx: &Context, label: &str, src: &str, checks: Checks) -> wgpu::ShaderModule {
    let desc = wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(src.into()),
    };
    match checks {
        Checks::All => ctx.device.create_shader_module(desc),
        Checks::TrustedLoops => {
            let runtime = wgpu::ShaderRuntimeChecks {
                force_loop_bounding: false,
                ..wgpu::ShaderRuntimeChecks::checked()
            };
            // SAFETY: only the loop counter is off; bounds checks and division guards stay,
            // so no access leaves its buffer. What the counter guards against, a loop that
            // never ends being assumed to end, cannot happen for the code the caller passes
            // here (see `Checks::TrustedLoops`).
            unsafe { ctx.device.create_shader_module_trusted(desc, runtime) }
        }
    }
}

/// Everything that determines one compiled pipeline.
#[derive(Debug, Clone)]
pub struct PipelineSpec<'a> {
    /// Shader stem in `shaders/` (also the pipeline's label).
    pub stem: &'a str,
    /// The variant prefix (see [`crate::shaders`]).
    pub defines: Vec<Define>,
    /// Entry point.
    pub entry: &'a str,
    /// `override` constants.
    pub constants: Vec<(&'a str, f64)>,
    /// Group 0's bindings in order.
    pub bindings: Vec<Binding>,
}

impl PipelineSpec<'_> {
    /// The cache key: every field, since each changes the compiled pipeline.
    pub fn key(&self) -> String {
        format!(
            "{}:{}:{:?}:{:?}:{:?}",
            self.stem, self.entry, self.defines, self.constants, self.bindings
        )
    }
}

/// Compiles the pipeline (or fetches it from the context's cache). Returns it and the host
/// time its creation took, `None` when it came from the cache.
pub fn build(
    ctx: &Context,
    spec: &PipelineSpec,
) -> Result<(Arc<wgpu::ComputePipeline>, Option<f64>)> {
    let mut built_ms = None;
    let p = ctx.pipeline(&spec.key(), || {
        let src = shaders::assemble(spec.stem, &spec.defines)?;
        let start = Instant::now();
        let p = compile(
            ctx,
            spec.stem,
            &src,
            spec.entry,
            &spec.constants,
            &spec.bindings,
            Checks::built_in(),
        )?;
        built_ms = Some(start.elapsed().as_secs_f64() * 1e3);
        Ok(p)
    })?;
    Ok((p, built_ms))
}

/// Compiles WGSL `src` (already assembled) with `checks` into a pipeline with group 0 laid
/// out as `bindings`, uncached: the kernel lab compiles a user's file through it. Shader,
/// layout and pipeline errors (naga's or the driver's) come back as
/// [`crate::LabError::Wgpu`] naming `label`.
pub fn compile(
    ctx: &Context,
    label: &str,
    src: &str,
    entry: &str,
    constants: &[(&str, f64)],
    bindings: &[Binding],
    checks: Checks,
) -> Result<wgpu::ComputePipeline> {
    ctx.scoped(&format!("compiling {label}"), || {
        let module = shader_module(ctx, label, src, checks);
        let entries: Vec<wgpu::BindGroupLayoutEntry> = bindings
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: match b {
                        Binding::Uniform => wgpu::BufferBindingType::Uniform,
                        Binding::ReadOnly => wgpu::BufferBindingType::Storage { read_only: true },
                        Binding::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let bgl = ctx
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(label),
                entries: &entries,
            });
        let layout = ctx
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(label),
                bind_group_layouts: &[Some(&bgl)],
                immediate_size: 0,
            });
        ctx.device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(label),
                layout: Some(&layout),
                module: &module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            })
    })
}

/// Binds `buffers` (whole) to bindings 0, 1, 2... of the pipeline's group 0.
pub fn bind_group(
    ctx: &Context,
    pipeline: &wgpu::ComputePipeline,
    label: &str,
    buffers: &[&wgpu::Buffer],
) -> Result<wgpu::BindGroup> {
    let parts: Vec<(&wgpu::Buffer, Option<u64>)> = buffers.iter().map(|&b| (b, None)).collect();
    bind_group_parts(ctx, pipeline, label, &parts)
}

/// As [`bind_group`], where `(buffer, Some(bytes))` binds only the buffer's first `bytes`
/// (a uniform view of the head of a larger buffer).
pub fn bind_group_parts(
    ctx: &Context,
    pipeline: &wgpu::ComputePipeline,
    label: &str,
    parts: &[(&wgpu::Buffer, Option<u64>)],
) -> Result<wgpu::BindGroup> {
    let layout = pipeline.get_bind_group_layout(0);
    ctx.scoped(&format!("binding {label} buffers"), || {
        let entries: Vec<wgpu::BindGroupEntry> = parts
            .iter()
            .enumerate()
            .map(|(i, &(b, bytes))| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: b,
                    offset: 0,
                    size: bytes.and_then(wgpu::BufferSize::new),
                }),
            })
            .collect();
        ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &layout,
            entries: &entries,
        })
    })
}
