//! The CPU baseline of every precision: the fastest CPU implementation a Rust user would
//! pick for it, called as that user would, so "vs CPU" compares with the best the CPU side
//! has rather than with our own CPU twins (which stay the validation references).
//!
//! | precision | library | what it computes |
//! |---|---|---|
//! | f32 | `gemm` | f32 GEMM on every core |
//! | f16, f16acc | `gemm` (f16) | f16 x f16 -> f16 (f32 accumulation inside); activations rounded to f16 per call |
//! | bf16 | `gemm` (f32) | weights widened from bf16 per call, then f32 GEMM: what candle does for bf16 on the CPU |
//! | q8_0, q4_0, q4_1, q5_0, q4_k, q6_k | `candle-core` `QMatMul` | ggml's blocks as stored, activations quantized to q8_0/q8_1 per call, integer block dots (ggml's CPU path) |
//! | int8, int8rot | `candle-core` `QMatMul` (q8_0) | the int8 weights as q8_0 blocks (int8rot: of the rotated weights, each block's own scale; int8: the row's scale in every block), activations quantized per 32 per call (int8rot rotates them first): ggml's integer W8A8 path, the fastest int8 x int8 CPU matmul in a Rust crate |
//!
//! Preparing (encoding weights, building candle's tensor) is untimed; everything a call
//! does per product (converting activations, rotating and quantizing them) is timed.
//! wgpu-lab's own multi-threaded W8A8 CPU path measured 8-9 GOP/s at 512^3
//! where candle's q8_0 path did 71 on the same machine, so it was removed.

use candle_core::quantized::{ggml_file::qtensor_from_ggml, GgmlDType, QMatMul};
use candle_core::{Device, Module, Tensor};
use half::{bf16, f16};

use crate::error::{LabError, Result};
use crate::formats::int8::{hadamard32, quantize_rows_with, Int8Rows, Int8Scheme};
use crate::formats::precision::Precision;
use crate::formats::weights::{WeightFormat, Weights};
use crate::kernels::matmul::{Layout, Shape};
use crate::reference::matmul::{gemm_any, matmul_cpu_fast};
use crate::stats::Summary;

const CANDLE: &str = "candle-core 0.11 QMatMul";

fn candle_err(e: candle_core::Error) -> LabError {
    LabError::CpuBaseline {
        library: CANDLE,
        message: e.to_string(),
    }
}

/// The weights of one precision, prepared for its library.
enum Prepared {
    F32,
    F16(Vec<f16>),
    Bf16(Vec<bf16>),
    /// candle's matmul, the padded k, and whether activations are rotated first.
    Candle(QMatMul, usize, bool),
}

/// A precision's CPU baseline on fixed A (m x k) and W (n x k), weights already prepared.
pub struct CpuBaseline<'a> {
    /// The library and path, as the tables name it (`cpu_impl`).
    pub library: &'static str,
    prepared: Prepared,
    a: &'a [f32],
    w: &'a [f32],
    shape: Shape,
}

/// The library of `precision`'s baseline, for tables.
pub fn library(precision: Precision) -> &'static str {
    match precision {
        Precision::Weights(WeightFormat::F32) => "gemm 0.19 f32",
        Precision::Weights(WeightFormat::F16) | Precision::F16Acc => "gemm 0.19 f16",
        Precision::Weights(WeightFormat::Bf16) => "gemm 0.19 f32 (bf16 widened)",
        Precision::Weights(_) => CANDLE,
        Precision::Int8 | Precision::Int8Rot => "candle-core 0.11 QMatMul (q8_0)",
    }
}

/// Prepares the baseline of `precision` for C = A (m x k) * W^T (W n x k). `None` when the
/// precision cannot store this shape (a block format with k not a multiple of 32).
pub fn prepare<'a>(
    precision: Precision,
    a: &'a [f32],
    w: &'a [f32],
    shape: Shape,
) -> Result<Option<CpuBaseline<'a>>> {
    shape.check(a.len(), w.len())?;
    let Shape { n, k, .. } = shape;
    let prepared = match precision {
        Precision::Weights(WeightFormat::F32) => Prepared::F32,
        Precision::Weights(WeightFormat::F16) | Precision::F16Acc => {
            Prepared::F16(w.iter().map(|&v| f16::from_f32(v)).collect())
        }
        Precision::Weights(WeightFormat::Bf16) => {
            Prepared::Bf16(w.iter().map(|&v| bf16::from_f32(v)).collect())
        }
        Precision::Weights(format) => {
            let dtype = match format {
                WeightFormat::Q8_0 => GgmlDType::Q8_0,
                WeightFormat::Q4_0 => GgmlDType::Q4_0,
                WeightFormat::Q4_1 => GgmlDType::Q4_1,
                WeightFormat::Q5_0 => GgmlDType::Q5_0,
                WeightFormat::Q4K => GgmlDType::Q4K,
                WeightFormat::Q6K => GgmlDType::Q6K,
                _ => unreachable!("float formats handled above"),
            };
            let Ok(wt) = Weights::encode(format, n, k, w) else {
                return Ok(None);
            };
            let qt = qtensor_from_ggml(dtype, &wt.bytes, vec![n, wt.k], &Device::Cpu)
                .map_err(candle_err)?;
            Prepared::Candle(QMatMul::from_qtensor(qt).map_err(candle_err)?, wt.k, false)
        }
        Precision::Int8 | Precision::Int8Rot => {
            let scheme = precision.int8_scheme().expect("an int8 precision");
            let wq = quantize_rows_with(w, n, k, scheme)?;
            let bytes = q8_0_blocks(&wq);
            let qt = qtensor_from_ggml(GgmlDType::Q8_0, &bytes, vec![n, wq.kp], &Device::Cpu)
                .map_err(candle_err)?;
            let qm = QMatMul::from_qtensor(qt).map_err(candle_err)?;
            Prepared::Candle(qm, wq.kp, scheme == Int8Scheme::Rot32)
        }
    };
    Ok(Some(CpuBaseline {
        library: library(precision),
        prepared,
        a,
        w,
        shape,
    }))
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
    /// One product, C (m x n, f32), doing per call what the library's user would.
    pub fn run(&self) -> Result<Vec<f32>> {
        let Shape { m, k, .. } = self.shape;
        match &self.prepared {
            Prepared::F32 => matmul_cpu_fast(Layout::Nt, self.shape, self.a, self.w),
            Prepared::F16(w16) => {
                let a16: Vec<f16> = self.a.iter().map(|&v| f16::from_f32(v)).collect();
                Ok(
                    gemm_any(Layout::Nt, self.shape, &a16, w16, f16::ZERO, f16::ONE)
                        .iter()
                        .map(|v| v.to_f32())
                        .collect(),
                )
            }
            Prepared::Bf16(wb) => {
                let wide: Vec<f32> = wb.iter().map(|v| v.to_f32()).collect();
                matmul_cpu_fast(Layout::Nt, self.shape, self.a, &wide)
            }
            Prepared::Candle(qm, kp, rotate) => {
                let x = if *kp == k && !rotate {
                    Tensor::from_slice(self.a, (m, k), &Device::Cpu)
                } else {
                    let mut ap = vec![0f32; m * kp];
                    for r in 0..m {
                        ap[r * kp..r * kp + k].copy_from_slice(&self.a[r * k..(r + 1) * k]);
                    }
                    if *rotate {
                        for blk in ap.chunks_exact_mut(32) {
                            hadamard32(blk.try_into().expect("32 values"));
                        }
                    }
                    Tensor::from_vec(ap, (m, *kp), &Device::Cpu)
                }
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
