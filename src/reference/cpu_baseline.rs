//! The CPU baseline of every precision: the fastest CPU library for it on this machine,
//! called as its user would, so "vs CPU" compares with the best the CPU side has rather than
//! with our own CPU twins (which stay the validation references).
//!
//! Each precision has candidates; [`prepare`] runs each on the problem (untimed calls, then
//! the median of 3-25 timed) and keeps the fastest, named in the tables. Which wins
//! depends on the CPU (measured on one machine: docs/results/cpu-llamacpp.md), so it is
//! decided where the numbers are taken:
//!
//! | precision | candidates | what they compute |
//! |---|---|---|
//! | f32, bf16 | ggml `mul_mat`; `gemm` f32 | ggml: f32 (bf16: activations rounded to bf16, as llama.cpp does) with its tinyBLAS kernels; `gemm`: f32 (bf16 weights widened per call) |
//! | f16, f16acc | ggml `mul_mat`; `gemm` f16 | activations rounded to f16 per call, f16 products with f32 accumulation |
//! | q8_0, q4_0, q4_1, q5_0, q4_k, q6_k | ggml `mul_mat` (llama.cpp's CPU backend); candle-core `QMatMul` | ggml's blocks as stored, activations quantized to q8_0/q8_1/q8_K per call, integer block dots (ggml in repacked layouts where it has them) |
//! | int8, int8rot | ggml (q8_0); candle-core (q8_0) | the int8 weights as q8_0 blocks (int8rot: of the rotated weights, each block's own scale; int8: the row's scale in every block), activations quantized per 32 per call (int8rot rotates them first): the integer W8A8 path |
//!
//! Preparing (encoding weights, uploading them, the race) is untimed; everything a call does
//! per product (converting activations, rotating and quantizing them) is timed. candle stays
//! a candidate because on some CPUs its K-quant and q8_0 kernels match or beat ggml's.

use std::borrow::Cow;

use candle_core::quantized::{ggml_file::qtensor_from_ggml, GgmlDType, QMatMul};
use candle_core::{Device, Module, Tensor};
use half::{bf16, f16};

use crate::error::{LabError, Result};
use crate::formats::int8::{hadamard32, quantize_rows_with, Int8Rows, Int8Scheme};
use crate::formats::precision::Precision;
use crate::formats::weights::{WeightFormat, Weights};
use crate::kernels::matmul::{Layout, Shape};
use crate::reference::ggml::matmul::GgmlMatmul;
use crate::reference::matmul::{gemm_any, matmul_cpu_fast};
use crate::stats::Summary;

const CANDLE: &str = "candle-core 0.11 QMatMul";

fn candle_err(e: candle_core::Error) -> LabError {
    LabError::CpuBaseline {
        library: CANDLE,
        message: e.to_string(),
    }
}

/// The weights of one candidate, prepared for its library.
enum Prepared {
    GemmF32,
    GemmF16(Vec<f16>),
    GemmBf16(Vec<bf16>),
    /// ggml's matmul, the padded k, and whether activations are rotated first.
    Ggml(GgmlMatmul, usize, bool),
    /// candle's matmul, the padded k, and whether activations are rotated first.
    Candle(QMatMul, usize, bool),
}

/// One library's baseline on fixed A (m x k) and W (n x k), weights already prepared.
pub struct CpuBaseline<'a> {
    /// The library and path, as the tables name it (`cpu_impl`).
    pub library: String,
    prepared: Prepared,
    a: &'a [f32],
    w: &'a [f32],
    shape: Shape,
}

/// ggml's name in the tables: the crate, ggml's version, the CPU variant and threads.
fn ggml_name(what: &str) -> String {
    match crate::reference::ggml::cpu() {
        Ok(b) => format!(
            "ggml mul_mat{what} ({}, ggml {}) {}, {} threads",
            crate::reference::ggml::CRATE,
            b.ggml_version,
            b.variant,
            b.threads
        ),
        Err(e) => format!("ggml (not loaded: {e})"),
    }
}

/// candle's type for a ggml block format (`None` for the float formats).
pub fn candle_dtype(format: WeightFormat) -> Option<GgmlDType> {
    Some(match format {
        WeightFormat::Q8_0 => GgmlDType::Q8_0,
        WeightFormat::Q4_0 => GgmlDType::Q4_0,
        WeightFormat::Q4_1 => GgmlDType::Q4_1,
        WeightFormat::Q5_0 => GgmlDType::Q5_0,
        WeightFormat::Q4K => GgmlDType::Q4K,
        WeightFormat::Q6K => GgmlDType::Q6K,
        _ => return None,
    })
}

fn candle(dtype: GgmlDType, bytes: &[u8], n: usize, kp: usize) -> Result<QMatMul> {
    let qt = qtensor_from_ggml(dtype, bytes, vec![n, kp], &Device::Cpu).map_err(candle_err)?;
    QMatMul::from_qtensor(qt).map_err(candle_err)
}

/// Every library that can run `precision` on this shape, weights prepared (empty when the
/// precision cannot store it: a block format with k not a whole number of its blocks).
/// ggml is left out, with a log line, where its CPU backend did not load.
pub fn candidates<'a>(
    precision: Precision,
    a: &'a [f32],
    w: &'a [f32],
    shape: Shape,
) -> Result<Vec<CpuBaseline<'a>>> {
    shape.check(a.len(), w.len())?;
    let Shape { m, n, k } = shape;
    let mut out: Vec<(String, Prepared)> = Vec::new();
    let ggml = |format: WeightFormat, bytes: &[u8], kp: usize, rotate: bool, what: &str| {
        match GgmlMatmul::new(format, bytes, m, n, kp) {
            Ok(g) => Some((ggml_name(what), Prepared::Ggml(g, kp, rotate))),
            Err(e) => {
                log::warn!("no ggml baseline for {}: {e}", precision.name());
                None
            }
        }
    };
    match precision {
        Precision::Weights(WeightFormat::F32) => {
            let bytes: &[u8] = bytemuck::cast_slice(w);
            out.extend(ggml(WeightFormat::F32, bytes, k, false, ""));
            out.push(("gemm 0.19 f32".into(), Prepared::GemmF32));
        }
        Precision::Weights(WeightFormat::F16) | Precision::F16Acc => {
            let w16: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
            out.extend(ggml(
                WeightFormat::F16,
                bytemuck::cast_slice(&w16),
                k,
                false,
                "",
            ));
            out.push(("gemm 0.19 f16".into(), Prepared::GemmF16(w16)));
        }
        Precision::Weights(WeightFormat::Bf16) => {
            let wb: Vec<bf16> = w.iter().map(|&v| bf16::from_f32(v)).collect();
            out.extend(ggml(
                WeightFormat::Bf16,
                bytemuck::cast_slice(&wb),
                k,
                false,
                "",
            ));
            out.push((
                "gemm 0.19 f32 (bf16 widened)".into(),
                Prepared::GemmBf16(wb),
            ));
        }
        Precision::Weights(format) => {
            let Ok(wt) = Weights::encode(format, n, k, w) else {
                return Ok(Vec::new());
            };
            out.extend(ggml(format, &wt.bytes, wt.k, false, ""));
            if let Some(dtype) = candle_dtype(format) {
                let qm = candle(dtype, &wt.bytes, n, wt.k)?;
                out.push((CANDLE.into(), Prepared::Candle(qm, wt.k, false)));
            }
        }
        Precision::Int8 | Precision::Int8Rot => {
            let scheme = precision.int8_scheme().expect("an int8 precision");
            let rotate = scheme == Int8Scheme::Rot32;
            let wq = quantize_rows_with(w, n, k, scheme)?;
            let bytes = q8_0_blocks(&wq);
            out.extend(ggml(WeightFormat::Q8_0, &bytes, wq.kp, rotate, " q8_0"));
            let qm = candle(GgmlDType::Q8_0, &bytes, n, wq.kp)?;
            out.push((
                format!("{CANDLE} (q8_0)"),
                Prepared::Candle(qm, wq.kp, rotate),
            ));
        }
    }
    Ok(out
        .into_iter()
        .map(|(library, prepared)| CpuBaseline {
            library,
            prepared,
            a,
            w,
            shape,
        })
        .collect())
}

/// The fastest of [`candidates`] on this problem (the median of up to 25 timed calls each),
/// named with how much longer the others took. `None` when no library can store the shape.
pub fn prepare<'a>(
    precision: Precision,
    a: &'a [f32],
    w: &'a [f32],
    shape: Shape,
) -> Result<Option<CpuBaseline<'a>>> {
    let all = candidates(precision, a, w, shape)?;
    if all.len() < 2 {
        return Ok(all.into_iter().next());
    }
    // The median of timed runs (a library whose speed swings from call to call is judged by
    // its typical call, and a stall of the 2-core VM's scheduler, milliseconds against a
    // GEMV's microseconds, by neither): as many as fit ~30 ms, 3 to 25, after one untimed
    // call; one for big problems (a few seconds each at 4096^3).
    // ggml (the first candidate) is timed last: its pool's workers spin after each call and
    // would take a core from a library timed after it. The losers are dropped (their pools
    // stopped) before this returns.
    let mut timed = Vec::with_capacity(all.len());
    for c in all.into_iter().rev() {
        let t = std::time::Instant::now();
        std::hint::black_box(c.run()?);
        let first_ms = t.elapsed().as_secs_f64() * 1e3;
        let runs = if shape.flops() > 1e10 {
            1
        } else {
            ((30.0 / first_ms.max(1e-3)) as usize).clamp(3, 25)
        };
        let ms = c.time(runs)?.median;
        timed.push((ms, c));
    }
    timed.sort_by(|x, y| x.0.total_cmp(&y.0));
    let beaten: Vec<String> = timed[1..]
        .iter()
        .map(|(ms, c)| {
            let name = c.library.split(" (").next().unwrap_or(&c.library);
            format!("{name} took {:.2}x as long", ms / timed[0].0)
        })
        .collect();
    let (_, mut best) = timed.swap_remove(0);
    best.library = format!("{}; {}", best.library, beaten.join(", "));
    Ok(Some(best))
}

/// int8 rows as ggml q8_0 blocks (an f16 scale, 32 int8 values): the same int8 values, each
/// block carrying its scale (per-row scales repeat in every block of the row).
fn q8_0_blocks(wq: &Int8Rows) -> Vec<u8> {
    let per_row = wq.kp / 32;
    let q: &[u8] = bytemuck::cast_slice(&wq.words);
    let mut out = Vec::with_capacity(wq.rows * per_row * 34);
    for r in 0..wq.rows {
        for b in 0..per_row {
            let d = f16::from_f32(wq.scale(r, b * 32));
            out.extend_from_slice(&d.to_bits().to_le_bytes());
            out.extend_from_slice(&q[r * wq.kp + b * 32..][..32]);
        }
    }
    out
}

impl CpuBaseline<'_> {
    /// The activations as a block library takes them: rows padded to `kp` with zeros and,
    /// for int8rot, each 32-value block rotated (the weights were rotated alike).
    fn activations(&self, kp: usize, rotate: bool) -> Cow<'_, [f32]> {
        let Shape { m, k, .. } = self.shape;
        if kp == k && !rotate {
            return Cow::Borrowed(self.a);
        }
        let mut ap = vec![0f32; m * kp];
        for r in 0..m {
            ap[r * kp..r * kp + k].copy_from_slice(&self.a[r * k..(r + 1) * k]);
        }
        if rotate {
            for blk in ap.chunks_exact_mut(32) {
                hadamard32(blk.try_into().expect("32 values"));
            }
        }
        Cow::Owned(ap)
    }

    /// One product, C (m x n, f32), doing per call what the library's user would.
    pub fn run(&self) -> Result<Vec<f32>> {
        let Shape { m, .. } = self.shape;
        match &self.prepared {
            Prepared::GemmF32 => matmul_cpu_fast(Layout::Nt, self.shape, self.a, self.w),
            Prepared::GemmF16(w16) => {
                let a16: Vec<f16> = self.a.iter().map(|&v| f16::from_f32(v)).collect();
                Ok(
                    gemm_any(Layout::Nt, self.shape, &a16, w16, f16::ZERO, f16::ONE)
                        .iter()
                        .map(|v| v.to_f32())
                        .collect(),
                )
            }
            Prepared::GemmBf16(wb) => {
                let wide: Vec<f32> = wb.iter().map(|v| v.to_f32()).collect();
                matmul_cpu_fast(Layout::Nt, self.shape, self.a, &wide)
            }
            Prepared::Ggml(g, kp, rotate) => g.run(&self.activations(*kp, *rotate)),
            Prepared::Candle(qm, kp, rotate) => {
                let x = Tensor::from_slice(&self.activations(*kp, *rotate), (m, *kp), &Device::Cpu)
                    .map_err(candle_err)?;
                let y = qm.forward(&x).map_err(candle_err)?;
                y.flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .map_err(candle_err)
            }
        }
    }

    /// Runs once untimed (first-call setup, caches), then `repeat` timed runs (ms).
    pub fn time(&self, repeat: usize) -> Result<Summary> {
        std::hint::black_box(self.run()?);
        let mut samples = Vec::with_capacity(repeat.max(1));
        for _ in 0..repeat.max(1) {
            let t = std::time::Instant::now();
            std::hint::black_box(self.run()?);
            samples.push(t.elapsed().as_secs_f64() * 1e3);
        }
        Ok(Summary::of(&samples).expect("at least one sample"))
    }
}
