//! Buffer helpers: upload, NaN-poison, read back, all under error scopes.

use std::sync::{Arc, Mutex};

use wgpu::util::DeviceExt;

use crate::error::{LabError, Result};
use crate::gpu::Context;

/// Usage of every storage buffer: bound in shaders (as storage, or as a uniform view of its
/// head where a kernel reads a small input that way), filled and read by copies.
pub const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::UNIFORM)
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC);

/// Checks `bytes` against the adapter's buffer and binding limits before allocation.
pub fn check_binding_size(ctx: &Context, what: &str, bytes: u64) -> Result<()> {
    let l = ctx.limits();
    if bytes > l.max_buffer_size {
        return Err(LabError::OverLimit {
            what: what.to_string(),
            asked: bytes,
            limit_name: "max_buffer_size",
            limit: l.max_buffer_size,
        });
    }
    if bytes > l.max_storage_buffer_binding_size {
        return Err(LabError::OverLimit {
            what: what.to_string(),
            asked: bytes,
            limit_name: "max_storage_buffer_binding_size",
            limit: l.max_storage_buffer_binding_size,
        });
    }
    Ok(())
}

/// Creates a storage buffer holding `data` (padded to 4 bytes, at least 4 bytes long).
pub fn upload<T: bytemuck::Pod>(ctx: &Context, label: &str, data: &[T]) -> Result<wgpu::Buffer> {
    let bytes: &[u8] = bytemuck::cast_slice(data);
    check_binding_size(ctx, label, bytes.len() as u64)?;
    let mut padded;
    let contents = if !bytes.len().is_multiple_of(4) || bytes.is_empty() {
        padded = bytes.to_vec();
        padded.resize(bytes.len().div_ceil(4).max(1) * 4, 0);
        &padded[..]
    } else {
        bytes
    };
    // Filled at creation (a host copy, so no upload lands in a later timed submission).
    // On a device lost a moment ago, mapping at creation panics inside wgpu before the loss
    // is reported: ask for it first.
    ctx.check_lost_now()?;
    ctx.scoped(&format!("creating buffer {label}"), || {
        ctx.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage: STORAGE,
            })
    })
}

/// Creates an uninitialised storage buffer of `bytes` bytes.
pub fn storage(ctx: &Context, label: &str, bytes: u64) -> Result<wgpu::Buffer> {
    check_binding_size(ctx, label, bytes)?;
    ctx.scoped(&format!("creating buffer {label}"), || {
        ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(4).div_ceil(4) * 4,
            usage: STORAGE,
            mapped_at_creation: false,
        })
    })
}

/// Creates a uniform buffer holding one `#[repr(C)]` parameter block.
pub fn uniform<T: bytemuck::Pod>(ctx: &Context, label: &str, value: &T) -> Result<wgpu::Buffer> {
    ctx.check_lost_now()?; // see `upload`
    ctx.scoped(&format!("creating uniform {label}"), || {
        ctx.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::bytes_of(value),
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            })
    })
}

/// Fills a buffer with NaN bit patterns so an output the kernel forgot to write shows up.
pub fn poison(ctx: &Context, buffer: &wgpu::Buffer) {
    let words = (buffer.size() / 4) as usize;
    let nan = vec![f32::NAN.to_bits(); words];
    ctx.queue
        .write_buffer(buffer, 0, bytemuck::cast_slice(&nan));
}

/// Copies a buffer's first `len` elements back to the host (waits for the GPU).
pub fn read<T: bytemuck::Pod>(ctx: &Context, buffer: &wgpu::Buffer, len: usize) -> Result<Vec<T>> {
    let bytes = (len * std::mem::size_of::<T>()) as u64;
    let size = bytes.div_ceil(4).max(1) * 4;
    let staging = ctx.scoped("creating read-back buffer", || {
        let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("readback"),
            });
        enc.copy_buffer_to_buffer(buffer, 0, &staging, 0, size);
        ctx.queue.submit([enc.finish()]);
        staging
    })?;
    // map_async only completes during a poll; the callback reports into this slot.
    let slot: Arc<Mutex<Option<std::result::Result<(), wgpu::BufferAsyncError>>>> =
        Arc::new(Mutex::new(None));
    let cb_slot = Arc::clone(&slot);
    staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
        if let Ok(mut s) = cb_slot.lock() {
            *s = Some(r);
        }
    });
    // Another thread's poll may be the one that runs our callback, after our own poll has
    // returned: keep polling until the callback has reported, within the wait timeout.
    let start = std::time::Instant::now();
    let status = loop {
        ctx.wait("read-back")?;
        if let Some(r) = slot.lock().ok().and_then(|mut s| s.take()) {
            break r;
        }
        if start.elapsed() > ctx.wait_timeout() {
            return Err(LabError::Timeout {
                during: "read-back mapping".into(),
                seconds: ctx.wait_timeout().as_secs(),
            });
        }
        std::thread::yield_now();
    };
    status.map_err(|e| LabError::Readback(e.to_string()))?;
    let view = staging
        .slice(..)
        .get_mapped_range()
        .map_err(|e| LabError::Readback(e.to_string()))?;
    let out: Vec<T> = bytemuck::pod_collect_to_vec(&view[..bytes as usize]);
    drop(view);
    staging.unmap();
    Ok(out)
}
