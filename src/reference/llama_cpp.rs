//! llama.cpp itself as the CPU side of the llama decoder: the engine a user would run a GGUF
//! with, linked as a library (`reference::ggml` loads its CPU backend), on the very tensors
//! the GPU row holds.
//!
//! The tensors of a [`LlamaWeights`] (already read and checked by wgpu-lab's own GGUF reader,
//! so llama.cpp never sees a file that could make it abort) are written with the source
//! file's metadata to a temporary GGUF, which llama.cpp loads with its defaults (weights in
//! its extra CPU buffers, repacked or AMX, where it would put them) and runs with threads =
//! physical cores and a polling thread pool, as `llama-bench` does. The validation reference
//! stays the f32 twin (`reference::llama`); llama.cpp's logits agree with it within the
//! 8-bit activation rounding its dot products do (tested at Q8_0, `TOL_LLAMA_CPP_KLD`).

use std::ffi::{CStr, CString};
use std::path::PathBuf;

use llama_cpp_sys_2 as sys;

use crate::error::{LabError, Result};
use crate::formats::gguf::{self, Gguf, TensorData};
use crate::formats::llama::LlamaWeights;
use crate::formats::weights::{WeightFormat, Weights};
use crate::reference::ggml::{self, Threadpool};

fn err(message: impl std::fmt::Display) -> LabError {
    LabError::CpuBaseline {
        library: "llama.cpp",
        message: message.to_string(),
    }
}

/// `what` failed, with llama.cpp's own last error line where it logged one.
fn failed(what: &str) -> LabError {
    match ggml::take_last_error() {
        Some(why) => err(format!("{what}: {why}")),
        None => err(what),
    }
}

/// Removes the temporary file however loading ends.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn matrix(name: String, w: &Weights) -> TensorData {
    TensorData {
        name,
        dims: vec![w.k as u64, w.n as u64],
        format: w.format,
        bytes: w.bytes.clone(),
    }
}

fn vector(name: String, v: &[f32]) -> TensorData {
    TensorData {
        name,
        dims: vec![v.len() as u64],
        format: WeightFormat::F32,
        bytes: bytemuck::cast_slice(v).to_vec(),
    }
}

/// llama.cpp's `general.file_type` for weights whose matrices are mostly `format`
/// (`LLAMA_FTYPE_MOSTLY_*`; K-quants as their `_M` mix, which is what llama-quantize's own
/// Q4_K_M writes).
fn file_type(format: WeightFormat) -> u64 {
    match format {
        WeightFormat::F32 => 0,
        WeightFormat::F16 => 1,
        WeightFormat::Q4_0 => 2,
        WeightFormat::Q4_1 => 3,
        WeightFormat::Q8_0 => 7,
        WeightFormat::Q5_0 => 8,
        WeightFormat::Q4K => 15,
        WeightFormat::Q6K => 18,
        WeightFormat::Bf16 => 32,
    }
}

/// Writes `w`'s tensors, with its source file's metadata (its `general.file_type` set to
/// the format most matrices are in), as a GGUF at `path`: the file a llama.cpp user would
/// run for these weights.
pub fn write_gguf(w: &LlamaWeights, path: &std::path::Path) -> Result<()> {
    let src = Gguf::open(&w.path).map_err(err)?;
    let mut metadata = src.metadata.clone();
    if let Some((main, _)) = w.format_counts().first() {
        let ftype = gguf::Value::U64(file_type(*main));
        match metadata.iter_mut().find(|(k, _)| k == "general.file_type") {
            Some((_, v)) => *v = ftype,
            None => metadata.push(("general.file_type".into(), ftype)),
        }
    }
    let mut tensors = vec![
        matrix("token_embd.weight".into(), &w.embd),
        vector("output_norm.weight".into(), &w.out_norm),
    ];
    if let Some(out) = &w.output {
        tensors.push(matrix("output.weight".into(), out));
    }
    for (i, l) in w.layers.iter().enumerate() {
        let t = |s: &str| format!("blk.{i}.{s}.weight");
        tensors.extend([
            vector(t("attn_norm"), &l.attn_norm),
            matrix(t("attn_q"), &l.q),
            matrix(t("attn_k"), &l.k),
            matrix(t("attn_v"), &l.v),
            matrix(t("attn_output"), &l.o),
            vector(t("ffn_norm"), &l.ffn_norm),
            matrix(t("ffn_gate"), &l.gate),
            matrix(t("ffn_up"), &l.up),
            matrix(t("ffn_down"), &l.down),
        ]);
    }
    gguf::write(path, &metadata, &tensors).map_err(err)
}

/// A llama.cpp model and context on the CPU, with its KV cache.
pub struct LlamaCpp {
    ctx: *mut sys::llama_context,
    model: *mut sys::llama_model,
    /// Vocabulary size (logits per position).
    pub vocab: usize,
    /// Positions the context holds.
    pub n_ctx: usize,
    n_batch: usize,
    pos: usize,
    /// What the tables' `cpu_impl` says: library, version, CPU variant, threads.
    pub describe: String,
    // Dropped after the context (Drop frees the context first).
    _pool: Option<Threadpool>,
    _file: TempFile,
}

impl LlamaCpp {
    /// Loads `w` into llama.cpp with room for `n_ctx` positions (see the module comment).
    pub fn new(w: &LlamaWeights, n_ctx: usize) -> Result<Self> {
        let be = ggml::cpu()?;
        if n_ctx == 0 {
            return Err(err("a context of 0 positions"));
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let file = TempFile(std::env::temp_dir().join(format!(
            "wgpu-lab-llama-cpp-{}-{nanos}.gguf",
            std::process::id()
        )));
        write_gguf(w, &file.0)?;
        let path = CString::new(file.0.to_string_lossy().as_bytes())
            .map_err(|_| err("temporary path holds a NUL byte"))?;
        let n_batch = n_ctx.min(2048);
        // SAFETY: llama.cpp's documented load/init sequence; every pointer it returns is
        // checked for NULL and owned by the returned value (freed once in Drop).
        unsafe {
            let mut mp = sys::llama_model_default_params();
            mp.n_gpu_layers = 0;
            let model = sys::llama_model_load_from_file(path.as_ptr(), mp);
            if model.is_null() {
                return Err(failed("llama.cpp could not load the model"));
            }
            let mut cp = sys::llama_context_default_params();
            cp.n_ctx = n_ctx as u32;
            cp.n_batch = n_batch as u32;
            cp.n_ubatch = n_batch.min(512) as u32;
            cp.n_threads = be.threads as i32;
            cp.n_threads_batch = be.threads as i32;
            cp.no_perf = true;
            let ctx = sys::llama_init_from_model(model, cp);
            if ctx.is_null() {
                sys::llama_model_free(model);
                return Err(failed("llama.cpp could not create a context"));
            }
            // llama-bench's pool: workers poll between graphs (`--poll 50`).
            let pool = be.threadpool(50);
            if let Some(p) = &pool {
                sys::llama_attach_threadpool(ctx, p.pool, std::ptr::null_mut());
            }
            let vocab = sys::llama_vocab_n_tokens(sys::llama_model_get_vocab(model)) as usize;
            let mut desc = [0 as std::ffi::c_char; 128];
            sys::llama_model_desc(model, desc.as_mut_ptr(), desc.len());
            let desc = CStr::from_ptr(desc.as_ptr()).to_string_lossy().into_owned();
            Ok(LlamaCpp {
                ctx,
                model,
                vocab,
                n_ctx: sys::llama_n_ctx(ctx) as usize,
                n_batch,
                pos: 0,
                describe: format!("{} [{desc}]", be.describe()),
                _pool: pool,
                _file: file,
            })
        }
    }

    /// Checks `path` with wgpu-lab's own reader, then loads it into llama.cpp: a file the
    /// reader refuses (truncated, not a llama) is an error before llama.cpp sees it.
    pub fn open(path: &std::path::Path, n_ctx: usize) -> Result<Self> {
        Self::new(&LlamaWeights::load(path)?, n_ctx)
    }

    /// Empties the KV cache (a new sequence).
    pub fn reset(&mut self) {
        // SAFETY: ctx is live; clearing the memory of a live context is always valid.
        unsafe { sys::llama_memory_clear(sys::llama_get_memory(self.ctx), true) };
        self.pos = 0;
    }

    /// Runs `tokens` after what the cache holds, in batches of up to 2048; returns the
    /// logits of every token (`all`, tokens x vocab) or of the last one.
    pub fn forward(&mut self, tokens: &[u32], all: bool) -> Result<Vec<f32>> {
        if tokens.is_empty() || self.pos + tokens.len() > self.n_ctx {
            return Err(err(format!(
                "{} tokens after {} do not fit the context of {}",
                tokens.len(),
                self.pos,
                self.n_ctx
            )));
        }
        if let Some(t) = tokens.iter().find(|&&t| t as usize >= self.vocab) {
            return Err(err(format!(
                "token {t} is outside the vocabulary of {}",
                self.vocab
            )));
        }
        let mut out = Vec::with_capacity(if all {
            tokens.len() * self.vocab
        } else {
            self.vocab
        });
        for (c, chunk) in tokens.chunks(self.n_batch).enumerate() {
            let last_chunk = (c + 1) * self.n_batch >= tokens.len();
            // SAFETY: the batch is allocated for chunk.len() tokens with one sequence id
            // each and freed below; logits are read only for positions marked as outputs,
            // by their index in this batch, before the next decode.
            unsafe {
                let mut b = sys::llama_batch_init(chunk.len() as i32, 0, 1);
                for (i, &t) in chunk.iter().enumerate() {
                    *b.token.add(i) = t as i32;
                    *b.pos.add(i) = (self.pos + i) as i32;
                    *b.n_seq_id.add(i) = 1;
                    **b.seq_id.add(i) = 0;
                    *b.logits.add(i) = (all || (last_chunk && i + 1 == chunk.len())) as i8;
                }
                b.n_tokens = chunk.len() as i32;
                let rc = sys::llama_decode(self.ctx, b);
                if rc != 0 {
                    sys::llama_batch_free(b);
                    return Err(failed(&format!("llama_decode returned {rc}")));
                }
                self.pos += chunk.len();
                for i in 0..chunk.len() {
                    if *b.logits.add(i) != 0 {
                        let l = sys::llama_get_logits_ith(self.ctx, i as i32);
                        if l.is_null() {
                            sys::llama_batch_free(b);
                            return Err(failed("llama.cpp returned no logits"));
                        }
                        out.extend_from_slice(std::slice::from_raw_parts(l, self.vocab));
                    }
                }
                sys::llama_batch_free(b);
            }
        }
        Ok(out)
    }
}

impl Drop for LlamaCpp {
    fn drop(&mut self) {
        // SAFETY: created once in `new`, freed once: the context before its model, both
        // before the thread pool and the file (fields, dropped after this).
        unsafe {
            sys::llama_free(self.ctx);
            sys::llama_model_free(self.model);
        }
    }
}
