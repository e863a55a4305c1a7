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
        )?;
        built_ms = Some(start.elapsed().as_secs_f64() * 1e3);
        Ok(p)
    })?;
    Ok((p, built_ms))
}

/// Compiles WGSL `src` (already assembled) into a pipeline with group 0 laid out as
/// `bindings`, uncached: the kernel lab compiles a user's file through it. Shader, layout
/// and pipeline errors (naga's or the driver's) come back as [`crate::LabError::Wgpu`]
/// naming `label`.
pub fn compile(
    ctx: &Context,
    label: &str,
    src: &str,
    entry: &str,
    constants: &[(&str, f64)],
    bindings: &[Binding],
) -> Result<wgpu::ComputePipeline> {
    ctx.scoped(&format!("compiling {label}"), || {
        let module = ctx
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(src.into()),
            });
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
