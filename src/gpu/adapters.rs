//! Adapter discovery and selection: list every adapter, pick one by index, name or backend.

use serde::Serialize;

use crate::error::{LabError, Result};

/// How the user asked for an adapter (`--adapter`, `--backend`, `--fallback`).
#[derive(Debug, Clone, Default)]
pub struct AdapterSelector {
    /// An index into [`list_adapters`]' order, or a case-insensitive name substring.
    pub adapter: Option<String>,
    /// Restrict to one backend.
    pub backend: Option<wgpu::Backend>,
    /// Force the software adapter (lavapipe/llvmpipe, WARP).
    pub fallback: bool,
}

/// Parses a backend name as used on the command line.
pub fn parse_backend(name: &str) -> Result<wgpu::Backend> {
    match name.to_ascii_lowercase().as_str() {
        "vulkan" | "vk" => Ok(wgpu::Backend::Vulkan),
        "metal" => Ok(wgpu::Backend::Metal),
        "dx12" | "d3d12" => Ok(wgpu::Backend::Dx12),
        "gl" | "gles" | "opengl" => Ok(wgpu::Backend::Gl),
        _ => Err(LabError::UnknownBackend(name.to_string())),
    }
}

/// Lower-case backend name as printed and accepted by the CLI.
pub fn backend_name(b: wgpu::Backend) -> &'static str {
    match b {
        wgpu::Backend::Vulkan => "vulkan",
        wgpu::Backend::Metal => "metal",
        wgpu::Backend::Dx12 => "dx12",
        wgpu::Backend::Gl => "gl",
        wgpu::Backend::BrowserWebGpu => "webgpu",
        wgpu::Backend::Noop => "noop",
    }
}

/// What this project needs to know about an adapter: identity, features, limits.
#[derive(Debug, Clone, Serialize)]
pub struct AdapterSummary {
    /// Position in [`list_adapters`]' order (what `--adapter N` takes).
    pub index: usize,
    /// Adapter name, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)".
    pub name: String,
    /// Backend name (vulkan, metal, dx12, gl).
    pub backend: String,
    /// discrete, integrated, virtual, cpu, other.
    pub device_type: String,
    /// Driver name and version.
    pub driver: String,
    /// f16 arithmetic and storage in shaders.
    pub shader_f16: bool,
    /// GPU timestamps around passes.
    pub timestamp_query: bool,
    /// Subgroup builtins (with the size range below).
    pub subgroup: bool,
    /// Smallest subgroup size the adapter may use.
    pub subgroup_min_size: u32,
    /// Largest subgroup size the adapter may use.
    pub subgroup_max_size: u32,
    /// WGSL `dot4I8Packed` / `packed_4x8_integer_dot_product`.
    pub packed_4x8_dot: bool,
    /// Largest storage-buffer binding, bytes.
    pub max_storage_buffer_binding_size: u64,
    /// Largest uniform buffer binding, bytes.
    pub max_uniform_buffer_binding_size: u64,
    /// Largest buffer, bytes.
    pub max_buffer_size: u64,
    /// Workgroup (shared) memory, bytes.
    pub max_compute_workgroup_storage_size: u32,
    /// Invocations in one workgroup.
    pub max_compute_invocations_per_workgroup: u32,
    /// Workgroups in one dispatch dimension.
    pub max_compute_workgroups_per_dimension: u32,
    /// For a CPU adapter (lavapipe, llvmpipe, WARP): the host CPU it runs on ([`host_cpu`]),
    /// part of its identity, since the same driver ranks kernels differently on another CPU.
    pub host_cpu: Option<String>,
}

impl AdapterSummary {
    /// Reads an adapter's identity, features and limits.
    pub fn new(index: usize, adapter: &wgpu::Adapter, instance: &wgpu::Instance) -> Self {
        let info = adapter.get_info();
        let f = adapter.features();
        let l = adapter.limits();
        let driver = match (info.driver.is_empty(), info.driver_info.is_empty()) {
            (false, false) => format!("{} {}", info.driver, info.driver_info),
            (false, true) => info.driver.clone(),
            (true, false) => info.driver_info.clone(),
            (true, true) => "unknown".to_string(),
        };
        Self {
            index,
            name: info.name.clone(),
            backend: backend_name(info.backend).to_string(),
            device_type: device_type_name(info.device_type).to_string(),
            driver,
            shader_f16: f.contains(wgpu::Features::SHADER_F16),
            timestamp_query: f.contains(wgpu::Features::TIMESTAMP_QUERY),
            subgroup: f.contains(wgpu::Features::SUBGROUP),
            subgroup_min_size: info.subgroup_min_size,
            subgroup_max_size: info.subgroup_max_size,
            packed_4x8_dot: instance
                .wgsl_language_features()
                .contains(wgpu::WgslLanguageFeatures::Packed4x8IntegerDotProduct),
            max_storage_buffer_binding_size: l.max_storage_buffer_binding_size,
            max_uniform_buffer_binding_size: l.max_uniform_buffer_binding_size,
            max_buffer_size: l.max_buffer_size,
            max_compute_workgroup_storage_size: l.max_compute_workgroup_storage_size,
            max_compute_invocations_per_workgroup: l.max_compute_invocations_per_workgroup,
            max_compute_workgroups_per_dimension: l.max_compute_workgroups_per_dimension,
            host_cpu: (info.device_type == wgpu::DeviceType::Cpu).then(host_cpu),
        }
    }

    /// One line naming the adapter: `[0] name (backend, type)`.
    pub fn one_line(&self) -> String {
        format!(
            "[{}] {} ({}, {})",
            self.index, self.name, self.backend, self.device_type
        )
    }
}

/// The host CPU as "model name, N threads": the model from `/proc/cpuinfo` (Linux) or the
/// CPUID brand string (x86), else the architecture; the threads a CPU adapter may use.
pub fn host_cpu() -> String {
    let from_proc = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("model name") || l.starts_with("Model"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    });
    let model = from_proc
        .or_else(cpuid_brand)
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    format!(
        "{}, {threads} threads",
        model.split_whitespace().collect::<Vec<_>>().join(" ")
    )
}

/// The x86 CPUID brand string (leaves 0x80000002-4), where the CPU has one.
// `__cpuid` is an unsafe fn before Rust 1.94 and safe after; rust-version is 1.89.
#[allow(unused_unsafe)]
fn cpuid_brand() -> Option<String> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::__cpuid;
        // SAFETY: CPUID exists on every x86_64 CPU; leaf 0x80000000 says which extended
        // leaves do.
        if unsafe { __cpuid(0x8000_0000) }.eax < 0x8000_0004 {
            return None;
        }
        let mut bytes = Vec::with_capacity(48);
        for leaf in 0x8000_0002u32..=0x8000_0004 {
            // SAFETY: as above, the leaf is within the reported range.
            let r = unsafe { __cpuid(leaf) };
            for v in [r.eax, r.ebx, r.ecx, r.edx] {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
        }
        let s = String::from_utf8_lossy(&bytes);
        let s = s.trim_matches(char::from(0)).trim();
        (!s.is_empty()).then(|| s.to_string())
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}

fn device_type_name(t: wgpu::DeviceType) -> &'static str {
    match t {
        wgpu::DeviceType::DiscreteGpu => "discrete",
        wgpu::DeviceType::IntegratedGpu => "integrated",
        wgpu::DeviceType::VirtualGpu => "virtual",
        wgpu::DeviceType::Cpu => "cpu",
        wgpu::DeviceType::Other => "other",
    }
}

/// A fresh instance over every backend compiled in (honouring `WGPU_BACKEND` etc.).
pub fn new_instance() -> wgpu::Instance {
    quiet_headless_probe();
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

/// On a headless machine (no `XDG_RUNTIME_DIR`: no desktop session), turns off Mesa's
/// device-select Vulkan layer, which otherwise tries to connect to a Wayland display at
/// instance creation and prints `error: XDG_RUNTIME_DIR is invalid or not set` for every
/// instance. The layer only reorders GPUs for a display server; wgpu-lab ranks adapters
/// itself. Sets `NODEVICE_SELECT=1` (the layer's own switch) once, unless the user set it.
fn quiet_headless_probe() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if cfg!(target_os = "linux")
            && std::env::var_os("XDG_RUNTIME_DIR").is_none()
            && std::env::var_os("NODEVICE_SELECT").is_none()
        {
            // A write races only with C code reading the environment on another thread:
            // Rust's own reads take std's environment lock, and the C readers here (the
            // Vulkan loader, EGL) run inside instance creation, which waits for this Once.
            std::env::set_var("NODEVICE_SELECT", "1");
        }
    });
}

/// Every adapter on every backend, in a stable order (backend, then name).
pub fn enumerate(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    let mut adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    adapters.sort_by_key(|a| {
        let i = a.get_info();
        (backend_rank(i.backend), i.name.clone(), i.device)
    });
    adapters
}

fn backend_rank(b: wgpu::Backend) -> u8 {
    match b {
        wgpu::Backend::Vulkan => 0,
        wgpu::Backend::Metal => 1,
        wgpu::Backend::Dx12 => 2,
        wgpu::Backend::Gl => 3,
        _ => 4,
    }
}

/// Lists every adapter with its features and limits (the `adapters` command).
pub fn list_adapters() -> Vec<AdapterSummary> {
    let instance = new_instance();
    enumerate(&instance)
        .iter()
        .enumerate()
        .map(|(i, a)| AdapterSummary::new(i, a, &instance))
        .collect()
}

/// Picks the adapter the selector names; returns it with its index in [`enumerate`]'s order.
///
/// Default: the preferred adapter by type (discrete > integrated > virtual > cpu > other),
/// the same ranking wgpu's high-performance preference applies, with Vulkan/Metal/DX12
/// before GL on ties.
pub fn select(instance: &wgpu::Instance, sel: &AdapterSelector) -> Result<(usize, wgpu::Adapter)> {
    let all = enumerate(instance);
    let describe = |list: &[wgpu::Adapter]| -> String {
        if list.is_empty() {
            return "  (none)".to_string();
        }
        list.iter()
            .enumerate()
            .map(|(i, a)| format!("  {}", AdapterSummary::new(i, a, instance).one_line()))
            .collect::<Vec<_>>()
            .join("\n")
    };
    if all.is_empty() {
        return Err(LabError::NoAdapter {
            backend_note: String::new(),
        });
    }
    let mut candidates: Vec<usize> = (0..all.len()).collect();
    if let Some(b) = sel.backend {
        candidates.retain(|&i| all[i].get_info().backend == b);
        if candidates.is_empty() {
            return Err(LabError::AdapterNotFound {
                wanted: format!("backend {}", backend_name(b)),
                available: describe(&all),
            });
        }
    }
    if sel.fallback {
        candidates.retain(|&i| all[i].get_info().device_type == wgpu::DeviceType::Cpu);
        if candidates.is_empty() {
            return Err(LabError::AdapterNotFound {
                wanted: "a software (CPU) adapter (--fallback)".to_string(),
                available: describe(&all),
            });
        }
    }
    if let Some(want) = &sel.adapter {
        if let Ok(idx) = want.parse::<usize>() {
            if candidates.contains(&idx) {
                candidates = vec![idx];
            } else {
                return Err(LabError::AdapterNotFound {
                    wanted: format!("index {idx}"),
                    available: describe(&all),
                });
            }
        } else {
            let needle = want.to_lowercase();
            candidates.retain(|&i| all[i].get_info().name.to_lowercase().contains(&needle));
            if candidates.is_empty() {
                return Err(LabError::AdapterNotFound {
                    wanted: format!("name containing {want:?}"),
                    available: describe(&all),
                });
            }
        }
    }
    let best = *candidates
        .iter()
        .min_by_key(|&&i| {
            let info = all[i].get_info();
            let type_rank = match info.device_type {
                wgpu::DeviceType::DiscreteGpu => 0,
                wgpu::DeviceType::IntegratedGpu => 1,
                wgpu::DeviceType::VirtualGpu => 2,
                wgpu::DeviceType::Cpu => 3,
                wgpu::DeviceType::Other => 4,
            };
            (type_rank, backend_rank(info.backend), i)
        })
        .expect("candidates is non-empty here");
    let adapter = all.into_iter().nth(best).expect("index from the same list");
    Ok((best, adapter))
}
