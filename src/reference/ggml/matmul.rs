//! ggml's own CPU matmul on the bytes wgpu-lab stores: `ggml_mul_mat` in a one-node graph on
//! the CPU backend, C (m x n) = A (m x k, f32) * W^T (W n x k in a ggml type), with weights
//! placed as llama.cpp places them (the first of the CPU's extra buffer types, AMX tiles or
//! repacked blocks, that supports the product, else the plain CPU buffer) and a polling
//! thread pool, so a timed call is what llama.cpp's CPU path does per product: quantize the
//! activations to the weights' dot type (q8_0, q8_1, q8_K; f16 or bf16 for those weights),
//! then its integer or float dot kernels on every core.

use std::ffi::CStr;

use llama_cpp_sys_2 as sys;

use super::{cpu, CpuBackend, Threadpool};
use crate::error::{LabError, Result};
use crate::formats::weights::WeightFormat;

fn err(message: impl Into<String>) -> LabError {
    LabError::CpuBaseline {
        library: "ggml",
        message: message.into(),
    }
}

/// ggml's type for a weight format.
pub fn ggml_type(format: WeightFormat) -> sys::ggml_type {
    match format {
        WeightFormat::F32 => sys::GGML_TYPE_F32,
        WeightFormat::F16 => sys::GGML_TYPE_F16,
        WeightFormat::Bf16 => sys::GGML_TYPE_BF16,
        WeightFormat::Q8_0 => sys::GGML_TYPE_Q8_0,
        WeightFormat::Q4_0 => sys::GGML_TYPE_Q4_0,
        WeightFormat::Q4_1 => sys::GGML_TYPE_Q4_1,
        WeightFormat::Q5_0 => sys::GGML_TYPE_Q5_0,
        WeightFormat::Q4K => sys::GGML_TYPE_Q4_K,
        WeightFormat::Q6K => sys::GGML_TYPE_Q6_K,
    }
}

/// One product's graph, weights uploaded, ready to run on new activations.
pub struct GgmlMatmul {
    backend: sys::ggml_backend_t,
    ctx: *mut sys::ggml_context,
    graph: *mut sys::ggml_cgraph,
    x: *mut sys::ggml_tensor,
    y: *mut sys::ggml_tensor,
    weights: sys::ggml_backend_buffer_t,
    io: sys::ggml_backend_buffer_t,
    m: usize,
    n: usize,
    k: usize,
    /// The buffer type the weights sit in (`CPU`, `CPU_REPACK`, `AMX`).
    pub weight_buffer: String,
    // Dropped after `backend` (Drop frees the backend first).
    _pool: Option<Threadpool>,
}

/// Whether the CPU device computes `y` with its weights in `buft` (llama.cpp's test: a
/// zero-sized buffer of that type under the weights, then `supports_op`).
///
/// # Safety
/// `w` must be `y`'s first source and have no buffer of its own.
unsafe fn supports(
    be: &CpuBackend,
    buft: sys::ggml_backend_buffer_type_t,
    w: *mut sys::ggml_tensor,
    y: *mut sys::ggml_tensor,
) -> bool {
    let dummy = sys::ggml_backend_buft_alloc_buffer(buft, 0);
    if dummy.is_null() {
        return false;
    }
    (*w).buffer = dummy;
    let ok = sys::ggml_backend_dev_supports_op(be.dev, y);
    (*w).buffer = std::ptr::null_mut();
    sys::ggml_backend_buffer_free(dummy);
    ok
}

impl GgmlMatmul {
    /// Prepares C = A * W^T for `m` rows of activations, W being `bytes` of `format` for an
    /// n x k matrix (ggml's row layout, which is wgpu-lab's). Errors (never aborts) on a k
    /// that is not whole blocks or bytes of the wrong size.
    pub fn new(format: WeightFormat, bytes: &[u8], m: usize, n: usize, k: usize) -> Result<Self> {
        let be = cpu()?;
        let ty = ggml_type(format);
        if m == 0 || n == 0 || k == 0 {
            return Err(err(format!("empty product {m}x{n}x{k}")));
        }
        // SAFETY: pure functions of the type.
        let (block, row) = unsafe {
            let block = sys::ggml_blck_size(ty) as usize;
            (
                block,
                k.is_multiple_of(block)
                    .then(|| sys::ggml_row_size(ty, k as i64)),
            )
        };
        let Some(row) = row else {
            return Err(err(format!(
                "k = {k} is not a whole number of {}-value blocks",
                block
            )));
        };
        if bytes.len() != row * n {
            return Err(err(format!(
                "{} bytes for {n} rows of {k} {} values; expected {}",
                bytes.len(),
                format.name(),
                row * n
            )));
        }
        // SAFETY: every pointer below is checked for NULL where ggml may return it, tensors
        // are created in `ctx` before any buffer is set, and each object is owned by the
        // returned value (freed in Drop) or freed on the error paths.
        unsafe {
            let ctx = sys::ggml_init(sys::ggml_init_params {
                mem_size: sys::ggml_tensor_overhead() * 4 + sys::ggml_graph_overhead(),
                mem_buffer: std::ptr::null_mut(),
                no_alloc: true,
            });
            if ctx.is_null() {
                return Err(err("ggml_init failed"));
            }
            let w = sys::ggml_new_tensor_2d(ctx, ty, k as i64, n as i64);
            let x = sys::ggml_new_tensor_2d(ctx, sys::GGML_TYPE_F32, k as i64, m as i64);
            let y = sys::ggml_mul_mat(ctx, w, x);
            let graph = sys::ggml_new_graph(ctx);
            sys::ggml_build_forward_expand(graph, y);
            let backend = sys::ggml_backend_dev_init(be.dev, std::ptr::null());
            let mut me = GgmlMatmul {
                backend,
                ctx,
                graph,
                x,
                y,
                weights: std::ptr::null_mut(),
                io: std::ptr::null_mut(),
                m,
                n,
                k,
                weight_buffer: String::new(),
                _pool: None,
            };
            if backend.is_null() {
                return Err(err("the CPU backend did not start"));
            }
            be.set_threads(backend);
            // llama.cpp's polling pool (measured here: without polling a 1x512x512 GEMV
            // takes 30 us instead of 6, 512^3 8% longer). Its workers spin for a while after
            // each call: the owner drops this before timing anything else.
            me._pool = be.threadpool(50);
            if let Some(pool) = &me._pool {
                be.attach(backend, pool);
            }
            let plain = sys::ggml_backend_dev_buffer_type(be.dev);
            let buft = be
                .extra_buffer_types()
                .into_iter()
                .find(|&b| supports(be, b, w, y))
                .unwrap_or(plain);
            me.weight_buffer = CStr::from_ptr(sys::ggml_backend_buft_name(buft))
                .to_string_lossy()
                .into_owned();
            me.weights = sys::ggml_backend_buft_alloc_buffer(
                buft,
                sys::ggml_backend_buft_get_alloc_size(buft, w),
            );
            if me.weights.is_null() {
                return Err(err("could not allocate the weights' buffer"));
            }
            sys::ggml_backend_buffer_set_usage(me.weights, sys::GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
            let base = sys::ggml_backend_buffer_get_base(me.weights);
            if sys::ggml_backend_tensor_alloc(me.weights, w, base) != sys::GGML_STATUS_SUCCESS {
                return Err(err("could not place the weights"));
            }
            sys::ggml_backend_tensor_set(w, bytes.as_ptr().cast(), 0, bytes.len());
            me.io = sys::ggml_backend_alloc_ctx_tensors_from_buft(ctx, plain);
            if me.io.is_null() {
                return Err(err("could not allocate the activations"));
            }
            Ok(me)
        }
    }

    /// C = A * W^T for `a` (m x k, row-major); C is m x n, row-major.
    pub fn run(&self, a: &[f32]) -> Result<Vec<f32>> {
        if a.len() != self.m * self.k {
            return Err(err(format!(
                "{} activations for {} x {}",
                a.len(),
                self.m,
                self.k
            )));
        }
        let mut c = vec![0f32; self.m * self.n];
        // SAFETY: x and y are allocated in `io` with exactly these sizes (f32, m x k and
        // m x n); the graph and backend are live.
        unsafe {
            sys::ggml_backend_tensor_set(self.x, a.as_ptr().cast(), 0, a.len() * 4);
            let status = sys::ggml_backend_graph_compute(self.backend, self.graph);
            if status != sys::GGML_STATUS_SUCCESS {
                return Err(err(format!("graph compute returned status {status}")));
            }
            sys::ggml_backend_tensor_get(self.y, c.as_mut_ptr().cast(), 0, c.len() * 4);
        }
        Ok(c)
    }
}

impl Drop for GgmlMatmul {
    fn drop(&mut self) {
        // SAFETY: each object was created once by `new` (or is NULL) and is freed once,
        // the backend before the buffers it computed on, the pool (a field) after it.
        unsafe {
            if !self.backend.is_null() {
                sys::ggml_backend_free(self.backend);
            }
            if !self.io.is_null() {
                sys::ggml_backend_buffer_free(self.io);
            }
            if !self.weights.is_null() {
                sys::ggml_backend_buffer_free(self.weights);
            }
            sys::ggml_free(self.ctx);
        }
    }
}
