//! llama.cpp's ggml, linked as a library (`llama-cpp-sys-2`): the CPU backend ggml picks for
//! this CPU, the name every CPU column carries, and the thread count llama-bench uses.
//!
//! ggml's CPU backend is built once per x86 variant (x64, sse42, ..., haswell, skylakex,
//! icelake, zen4, sapphirerapids) as shared modules; [`cpu`] offers them to ggml, which
//! scores each against this CPU's features and keeps the best, so one binary runs every
//! machine at that machine's full speed. The AMX variant is left out unless
//! `WGPU_LAB_GGML_AMX=1` (see build.rs: its matmul crashes where the kernel gives AMX state
//! per thread). The variant chosen is read off ggml's own log line.
//!
//! ggml's and llama.cpp's log goes to the `log` crate (errors and warnings at their level,
//! the rest at debug), never straight to stderr.

pub mod matmul;

use std::ffi::{c_char, c_void, CStr};
use std::sync::{Mutex, OnceLock};

use llama_cpp_sys_2 as sys;

use crate::error::{LabError, Result};

/// The crate that builds and links llama.cpp, as pinned in Cargo.toml (a vendored llama.cpp
/// carries no build number of its own; this names the exact sources).
pub const CRATE: &str = "llama-cpp-sys-2 0.1.161";

/// ggml's CPU backend as loaded for this process.
pub struct CpuBackend {
    pub(crate) dev: sys::ggml_backend_dev_t,
    reg: sys::ggml_backend_reg_t,
    /// The variant ggml loaded (`sapphirerapids`, `haswell`, ...; `unknown` if its log line
    /// was not seen).
    pub variant: String,
    /// The CPU features that variant uses, as ggml names them (`AVX512_VNNI`, `AMX_INT8`).
    pub features: Vec<String>,
    /// Threads every ggml and llama.cpp call uses: this machine's physical cores.
    pub threads: usize,
    /// ggml's version (`0.26.0`).
    pub ggml_version: String,
}

// SAFETY: the device and registry are process-wide objects owned by ggml's registry, never
// freed while the process runs, and only read through ggml's thread-safe getters.
unsafe impl Send for CpuBackend {}
unsafe impl Sync for CpuBackend {}

impl CpuBackend {
    /// `llama.cpp (llama-cpp-sys-2 0.1.161, ggml 0.26.0) sapphirerapids, 2 threads`: what the
    /// tables' `cpu_impl` says.
    pub fn describe(&self) -> String {
        format!(
            "llama.cpp ({CRATE}, ggml {}) {}, {} threads",
            self.ggml_version, self.variant, self.threads
        )
    }

    /// A function the CPU backend exports by name (`ggml_backend_reg_get_proc_address`).
    fn proc(&self, name: &CStr) -> Option<*mut c_void> {
        // SAFETY: reg is a live registry entry; the name is NUL-terminated.
        let p = unsafe { sys::ggml_backend_reg_get_proc_address(self.reg, name.as_ptr()) };
        (!p.is_null()).then_some(p)
    }

    /// The CPU backend's extra weight buffer types (AMX tiles, repacked blocks), in the
    /// order llama.cpp tries them before the plain CPU buffer.
    pub(crate) fn extra_buffer_types(&self) -> Vec<sys::ggml_backend_buffer_type_t> {
        type GetExtra =
            unsafe extern "C" fn(sys::ggml_backend_dev_t) -> *mut sys::ggml_backend_buffer_type_t;
        let Some(p) = self.proc(c"ggml_backend_dev_get_extra_bufts") else {
            return Vec::new();
        };
        // SAFETY: ggml documents this symbol with exactly this signature; the list it
        // returns is NULL-terminated and lives as long as the backend.
        unsafe {
            let f: GetExtra = std::mem::transmute(p);
            let mut list = f(self.dev);
            let mut out = Vec::new();
            while !list.is_null() && !(*list).is_null() {
                out.push(*list);
                list = list.add(1);
            }
            out
        }
    }

    /// Sets the thread count of a CPU backend instance.
    pub(crate) fn set_threads(&self, backend: sys::ggml_backend_t) {
        type SetThreads = unsafe extern "C" fn(sys::ggml_backend_t, i32);
        if let Some(p) = self.proc(c"ggml_backend_set_n_threads") {
            // SAFETY: ggml's documented signature for this symbol; backend is live.
            unsafe {
                let f: SetThreads = std::mem::transmute(p);
                f(backend, self.threads as i32);
            }
        }
    }

    /// A pool of [`Self::threads`] workers, so no timed call starts threads. `poll` is
    /// ggml's polling level (0-100): how long idle workers spin for the next graph before
    /// they sleep. llama-bench's 50 spins for about 6.5M pause instructions (a third of a
    /// second here) after every graph, which takes a core from whatever runs next.
    pub(crate) fn threadpool(&self, poll: u32) -> Option<Threadpool> {
        type New = unsafe extern "C" fn(*mut sys::ggml_threadpool_params) -> sys::ggml_threadpool_t;
        type Free = unsafe extern "C" fn(sys::ggml_threadpool_t);
        let new = self.proc(c"ggml_threadpool_new")?;
        let free = self.proc(c"ggml_threadpool_free")?;
        // SAFETY: ggml's documented signatures; the params are initialised by ggml itself.
        unsafe {
            let mut params = sys::ggml_threadpool_params_default(self.threads as i32);
            params.poll = poll;
            let new: New = std::mem::transmute(new);
            let pool = new(&mut params);
            (!pool.is_null()).then(|| Threadpool {
                pool,
                free: std::mem::transmute::<*mut c_void, Free>(free),
            })
        }
    }

    /// Attaches `pool` to a CPU backend instance (graphs computed on it use the pool).
    pub(crate) fn attach(&self, backend: sys::ggml_backend_t, pool: &Threadpool) {
        type Set = unsafe extern "C" fn(sys::ggml_backend_t, sys::ggml_threadpool_t);
        if let Some(p) = self.proc(c"ggml_backend_cpu_set_threadpool") {
            // SAFETY: ggml's documented signature; both objects are live.
            unsafe {
                let f: Set = std::mem::transmute(p);
                f(backend, pool.pool);
            }
        }
    }
}

/// ggml's worker pool, freed on drop.
pub struct Threadpool {
    pub(crate) pool: sys::ggml_threadpool_t,
    free: unsafe extern "C" fn(sys::ggml_threadpool_t),
}

impl Drop for Threadpool {
    fn drop(&mut self) {
        // SAFETY: created by ggml_threadpool_new, freed once; every user (a backend or a
        // llama context) is dropped before it by the owners' field order.
        unsafe { (self.free)(self.pool) }
    }
}

/// The variant name from ggml's "loaded CPU backend from .../libggml-cpu-NAME.so" line.
static LOADED_VARIANT: Mutex<Option<String>> = Mutex::new(None);

/// The last error line llama.cpp or ggml logged, for the error a failed call returns.
static LAST_ERROR: Mutex<Option<String>> = Mutex::new(None);

/// Takes the last error line llama.cpp or ggml logged since the previous call.
pub(crate) fn take_last_error() -> Option<String> {
    LAST_ERROR.lock().ok().and_then(|mut e| e.take())
}

unsafe extern "C" fn log_to_rust(level: sys::ggml_log_level, text: *const c_char, _: *mut c_void) {
    if text.is_null() {
        return;
    }
    // SAFETY: ggml passes a NUL-terminated string valid for this call.
    let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    if let Some(at) = text.find("libggml-cpu-") {
        let name = &text[at + "libggml-cpu-".len()..];
        let name = name.split('.').next().unwrap_or(name).trim();
        if let Ok(mut v) = LOADED_VARIANT.lock() {
            *v = Some(name.to_string());
        }
    }
    let text = text.trim_end();
    match level {
        sys::GGML_LOG_LEVEL_ERROR => {
            if let Ok(mut e) = LAST_ERROR.lock() {
                *e = Some(text.to_string());
            }
            log::error!(target: "llama.cpp", "{text}")
        }
        sys::GGML_LOG_LEVEL_WARN => log::warn!(target: "llama.cpp", "{text}"),
        _ => log::debug!(target: "llama.cpp", "{text}"),
    }
}

/// Physical cores (what llama-bench's default `-t` counts): distinct thread-sibling sets
/// under /sys, else the threads the OS offers.
pub fn physical_cores() -> usize {
    let logical = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut sets = std::collections::BTreeSet::new();
    for cpu in 0..logical.max(1) * 2 {
        let path = format!("/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list");
        if let Ok(s) = std::fs::read_to_string(path) {
            sets.insert(s.trim().to_string());
        }
    }
    if sets.is_empty() {
        logical
    } else {
        sets.len().min(logical)
    }
}

/// Where ggml's CPU variants are loaded from: every variant ggml built when
/// `WGPU_LAB_GGML_AMX=1` (`None`: ggml's own search), else the folder of those without AMX
/// (see build.rs for why): beside the binary where a copy put them there, else the one
/// build.rs made.
fn cpu_variants_dir() -> Option<std::path::PathBuf> {
    if std::env::var("WGPU_LAB_GGML_AMX").is_ok_and(|v| v == "1") {
        return None;
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|p| p.to_path_buf()))
        .filter(|d| {
            std::fs::read_dir(d).is_ok_and(|mut it| {
                it.any(|e| {
                    e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("libggml-cpu-"))
                })
            })
        });
    Some(beside.unwrap_or_else(|| env!("WGPU_LAB_GGML_CPU_DIR").into()))
}

fn load() -> std::result::Result<CpuBackend, String> {
    // SAFETY: plain calls into ggml's registry; the callback is a static function.
    unsafe {
        sys::ggml_log_set(Some(log_to_rust), std::ptr::null_mut());
        sys::llama_log_set(Some(log_to_rust), std::ptr::null_mut());
        // The CPU variants first: llama_backend_init loads every variant itself when none is.
        match cpu_variants_dir() {
            Some(dir) => {
                let dir = std::ffi::CString::new(dir.to_string_lossy().as_bytes())
                    .map_err(|_| "the ggml CPU folder's path holds a NUL byte".to_string())?;
                sys::ggml_backend_load_all_from_path(dir.as_ptr());
            }
            None => sys::ggml_backend_load_all(),
        }
        sys::llama_backend_init();
        let dev = sys::ggml_backend_dev_by_type(sys::GGML_BACKEND_DEVICE_TYPE_CPU);
        if dev.is_null() {
            return Err(
                "ggml found no CPU backend: its modules (libggml-cpu-*.so) must be in \
                        the folder llama-cpp-sys-2 built them into or beside the binary"
                    .into(),
            );
        }
        let reg = sys::ggml_backend_dev_backend_reg(dev);
        let version = sys::ggml_version();
        let mut backend = CpuBackend {
            dev,
            reg,
            variant: LOADED_VARIANT
                .lock()
                .ok()
                .and_then(|v| v.clone())
                .unwrap_or_else(|| "unknown".into()),
            features: Vec::new(),
            threads: physical_cores(),
            ggml_version: if version.is_null() {
                "?".into()
            } else {
                CStr::from_ptr(version).to_string_lossy().into_owned()
            },
        };
        type Features =
            unsafe extern "C" fn(sys::ggml_backend_reg_t) -> *const sys::ggml_backend_feature;
        if let Some(p) = backend.proc(c"ggml_backend_get_features") {
            let f: Features = std::mem::transmute(p);
            let mut feat = f(reg);
            while !feat.is_null() && !(*feat).name.is_null() {
                let name = CStr::from_ptr((*feat).name).to_string_lossy();
                let value = CStr::from_ptr((*feat).value).to_string_lossy();
                backend.features.push(if value == "1" {
                    name.into_owned()
                } else {
                    format!("{name}={value}")
                });
                feat = feat.add(1);
            }
        }
        Ok(backend)
    }
}

/// ggml's CPU backend, loaded once per process (the first call loads the best variant).
pub fn cpu() -> Result<&'static CpuBackend> {
    static BACKEND: OnceLock<std::result::Result<CpuBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(load)
        .as_ref()
        .map_err(|message| LabError::CpuBaseline {
            library: "llama.cpp",
            message: message.clone(),
        })
}
