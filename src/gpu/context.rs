//! The one `Context`: instance, adapter, device, queue, pipeline cache, error handling.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{LabError, Result};
use crate::gpu::adapters::{self, AdapterSelector, AdapterSummary};

/// Optional features this project uses when the adapter has them.
pub const WANTED_FEATURES: wgpu::Features = wgpu::Features::SHADER_F16
    .union(wgpu::Features::TIMESTAMP_QUERY)
    .union(wgpu::Features::SUBGROUP);

/// Default time allowed for one submission before it is declared hung.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(600);

/// Owns the GPU objects every kernel needs, and a cache of compiled pipelines.
pub struct Context {
    /// The wgpu instance the adapter came from.
    pub instance: wgpu::Instance,
    /// The chosen adapter.
    pub adapter: wgpu::Adapter,
    /// The device, created with the adapter's own limits.
    pub device: wgpu::Device,
    /// The device's queue.
    pub queue: wgpu::Queue,
    /// What the adapter is and can do.
    pub summary: AdapterSummary,
    /// How long to wait for one submission before giving up, ms ([`Context::wait_timeout`]).
    wait_ms: AtomicU64,
    lost: Arc<Mutex<Option<String>>>,
    pipelines: Mutex<HashMap<String, Arc<wgpu::ComputePipeline>>>,
}

impl Context {
    /// Picks an adapter as the selector says and opens a device on it.
    pub fn new(sel: &AdapterSelector) -> Result<Self> {
        let instance = adapters::new_instance();
        let (index, adapter) = adapters::select(&instance, sel)?;
        Self::from_adapter(instance, index, adapter)
    }

    /// Opens a device on a given adapter with its full limits and the wanted features.
    pub fn from_adapter(
        instance: wgpu::Instance,
        index: usize,
        adapter: wgpu::Adapter,
    ) -> Result<Self> {
        let summary = AdapterSummary::new(index, &adapter, &instance);
        let features = adapter.features() & WANTED_FEATURES;
        let desc = wgpu::DeviceDescriptor {
            label: Some("wgpu-lab"),
            required_features: features,
            required_limits: adapter.limits(),
            ..Default::default()
        };
        let (device, queue) =
            pollster::block_on(adapter.request_device(&desc)).map_err(|source| {
                LabError::RequestDevice {
                    adapter: summary.name.clone(),
                    source,
                }
            })?;
        let lost = Arc::new(Mutex::new(None));
        let lost_cb = Arc::clone(&lost);
        device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut slot) = lost_cb.lock() {
                *slot = Some(format!("{reason:?}: {msg}"));
            }
        });
        // Errors outside our scopes are logged rather than panicking the process.
        device.on_uncaptured_error(Arc::new(|e: wgpu::Error| {
            log::error!("uncaptured wgpu error: {e}");
        }));
        Ok(Self {
            instance,
            adapter,
            device,
            queue,
            summary,
            wait_ms: AtomicU64::new(DEFAULT_WAIT.as_millis() as u64),
            lost,
            pipelines: Mutex::new(HashMap::new()),
        })
    }

    /// How long [`Context::wait`] waits for one submission before declaring it hung.
    pub fn wait_timeout(&self) -> Duration {
        Duration::from_millis(self.wait_ms.load(Ordering::Relaxed))
    }

    /// Sets [`Context::wait_timeout`] (the kernel lab bounds a user's kernel by it).
    pub fn set_wait_timeout(&self, d: Duration) {
        self.wait_ms
            .store(d.as_millis().max(1) as u64, Ordering::Relaxed);
    }

    /// Whether the device has a feature (requested at creation when the adapter had it).
    pub fn has(&self, f: wgpu::Features) -> bool {
        self.device.features().contains(f)
    }

    /// The device's limits.
    pub fn limits(&self) -> wgpu::Limits {
        self.device.limits()
    }

    /// Fails with [`LabError::DeviceLost`] if the device has been lost.
    pub fn check_lost(&self) -> Result<()> {
        match self.lost.lock().ok().and_then(|s| s.clone()) {
            Some(reason) => Err(LabError::DeviceLost(reason)),
            None => Ok(()),
        }
    }

    /// [`Context::check_lost`] after a non-blocking poll: a device lost a moment ago (for
    /// example destroyed) reports it through a callback that runs on the next poll.
    pub fn check_lost_now(&self) -> Result<()> {
        let _ = self.device.poll(wgpu::PollType::Poll);
        self.check_lost()
    }

    /// Runs `f` inside validation and out-of-memory error scopes; a captured error becomes
    /// [`LabError::Wgpu`] naming `during`.
    pub fn scoped<T>(&self, during: &str, f: impl FnOnce() -> T) -> Result<T> {
        self.check_lost()?;
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let v = pollster::block_on(validation.pop());
        let o = pollster::block_on(oom.pop());
        if let Some(source) = v.or(o) {
            // A lost device shows up first as validation errors on everything after it:
            // report the loss, the real cause.
            self.check_lost_now()?;
            return Err(LabError::Wgpu {
                during: during.to_string(),
                source,
            });
        }
        self.check_lost()?;
        Ok(out)
    }

    /// Blocks until all submitted work is done, or the wait timeout passes.
    pub fn wait(&self, during: &str) -> Result<()> {
        self.check_lost()?;
        let r = self.device.poll(wgpu::PollType::Wait {
            submission_index: None,
            timeout: Some(self.wait_timeout()),
        });
        self.check_lost()?;
        match r {
            Ok(_) => Ok(()),
            Err(wgpu::PollError::Timeout) => Err(LabError::Timeout {
                during: during.to_string(),
                seconds: self.wait_timeout().as_secs(),
            }),
            Err(e) => Err(LabError::Readback(e.to_string())),
        }
    }

    /// Returns the cached pipeline for `key`, building it with `build` on first use.
    pub fn pipeline(
        &self,
        key: &str,
        build: impl FnOnce() -> Result<wgpu::ComputePipeline>,
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        if let Some(p) = self.pipelines.lock().ok().and_then(|m| m.get(key).cloned()) {
            return Ok(p);
        }
        let p = Arc::new(build()?);
        if let Ok(mut m) = self.pipelines.lock() {
            m.insert(key.to_string(), Arc::clone(&p));
        }
        Ok(p)
    }
}
