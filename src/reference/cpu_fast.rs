//! The fast multi-threaded CPU path for every precision, working on the stored (quantized)
//! weights, not on a dequantized f32 copy: the fair CPU baseline of the precision
//! benchmarks. f32 goes through the `gemm` crate; the other formats decode one 32-value
//! block at a time and reuse it for every activation row; int8 quantizes the activations per
//! row and multiplies in integers, as the GPU does.

use crate::bench::precision::Precision;
use crate::error::Result;
use crate::formats::int8::{quantize_rows_with, Int8Rows};
use crate::formats::quant::QK;
use crate::formats::weights::{decode_block, WeightFormat, Weights};
use crate::kernels::matmul::{Layout, Shape};
use crate::reference::matmul::matmul_cpu_fast;

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |t| t.get())
}

/// Splits the n output columns across the cores; `f(col0, col1, out)` fills columns
/// col0..col1 of every row into `out` (m x (col1 - col0), row-major).
fn par_cols(m: usize, n: usize, f: &(dyn Fn(usize, usize, &mut [f32]) + Sync)) -> Vec<f32> {
    let t = threads().min(n).max(1);
    let per = n.div_ceil(t);
    let parts: Vec<(usize, Vec<f32>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(per)
            .map(|c0| {
                let c1 = (c0 + per).min(n);
                s.spawn(move || {
                    let mut out = vec![0f32; m * (c1 - c0)];
                    f(c0, c1, &mut out);
                    (c0, out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a CPU worker panicked"))
            .collect()
    });
    let mut c = vec![0f32; m * n];
    for (c0, part) in parts {
        let w = part.len() / m;
        for r in 0..m {
            c[r * n + c0..r * n + c0 + w].copy_from_slice(&part[r * w..(r + 1) * w]);
        }
    }
    c
}

/// Dot product of 32 values (vectorises; built for AVX2+FMA when the CPU has it).
#[inline(always)]
fn dot32(a: &[f32], b: &[f32; QK]) -> f32 {
    let mut acc = [0f32; 8];
    for (ca, cb) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += ca[i] * cb[i];
        }
    }
    acc.iter().sum()
}

fn wq_cols(a: &[f32], m: usize, w: &Weights, c0: usize, c1: usize, out: &mut [f32]) {
    let bpb = w.format.bytes_per_block();
    let nblk = w.blocks_per_row();
    let width = c1 - c0;
    let mut block = [0f32; QK];
    for col in c0..c1 {
        for b in 0..nblk {
            let at = (col * nblk + b) * bpb;
            decode_block(w.format, &w.bytes[at..at + bpb], &mut block);
            for r in 0..m {
                out[r * width + col - c0] += dot32(&a[r * w.k + b * QK..][..QK], &block);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn wq_cols_avx2(a: &[f32], m: usize, w: &Weights, c0: usize, c1: usize, out: &mut [f32]) {
    wq_cols(a, m, w, c0, c1, out)
}

/// C (m x n) = A (m x k) * W^T on the stored weights; A's rows must be `w.k` long (k padded
/// to whole blocks with zeros, as the GPU path does).
pub fn matmul_wq_cpu(a: &[f32], m: usize, w: &Weights) -> Vec<f32> {
    par_cols(m, w.n, &|c0, c1, out| {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { wq_cols_avx2(a, m, w, c0, c1, out) };
        }
        wq_cols(a, m, w, c0, c1, out)
    })
}

fn i8_cols(aq: &Int8Rows, wq: &Int8Rows, c0: usize, c1: usize, out: &mut [f32]) {
    let width = c1 - c0;
    let (g, groups) = (aq.group_len(), aq.scales_per_row());
    let unpack = |x: &Int8Rows, r: usize| -> Vec<i8> {
        bytemuck::cast_slice::<u32, i8>(&x.words[r * x.kp / 4..(r + 1) * x.kp / 4]).to_vec()
    };
    let arows: Vec<Vec<i8>> = (0..aq.rows).map(|r| unpack(aq, r)).collect();
    for col in c0..c1 {
        let wr = unpack(wq, col);
        for (r, ar) in arows.iter().enumerate() {
            let mut v = 0f32;
            for (b, (xa, xw)) in ar.chunks_exact(g).zip(wr.chunks_exact(g)).enumerate() {
                let dot: i32 = xa.iter().zip(xw).map(|(x, y)| *x as i32 * *y as i32).sum();
                v += dot as f32 * (aq.scales[r * groups + b] * wq.scales[col * groups + b]);
            }
            out[r * width + col - c0] = v;
        }
    }
}

/// W8A8 on the CPU: activations quantized in the weights' scheme like the GPU's, exact i32
/// dot products per scale group.
pub fn matmul_i8_cpu(a: &[f32], m: usize, k: usize, wq: &Int8Rows) -> Result<Vec<f32>> {
    let aq = quantize_rows_with(a, m, k, wq.scheme)?;
    Ok(par_cols(m, wq.rows, &|c0, c1, out| {
        i8_cols(&aq, wq, c0, c1, out)
    }))
}

/// Times the CPU path of `precision` once on A (m x k) and W (n x k): prepares the weights
/// in that precision first (not timed), then returns the wall time of the product in ms.
pub fn time_precision(
    precision: Precision,
    a: &[f32],
    w: &[f32],
    shape: Shape,
    repeat: usize,
) -> Result<Option<f64>> {
    let Shape { m, n, k } = shape;
    enum Prepared {
        F32,
        Wq(Weights, Vec<f32>),
        I8(Int8Rows),
    }
    let prepared = match precision {
        Precision::Weights(WeightFormat::F32) => Prepared::F32,
        Precision::Weights(f) => {
            let Ok(wt) = Weights::encode(f, n, k, w) else {
                return Ok(None);
            };
            let kp = wt.k;
            let mut ap = vec![0f32; m * kp];
            for r in 0..m {
                ap[r * kp..r * kp + k].copy_from_slice(&a[r * k..(r + 1) * k]);
            }
            Prepared::Wq(wt, ap)
        }
        Precision::Int8 | Precision::Int8Rot => {
            let scheme = precision.int8_scheme().expect("an int8 precision");
            Prepared::I8(quantize_rows_with(w, n, k, scheme)?)
        }
        // No f16-arithmetic CPU path: the f16 weights path stands in, labelled by the caller.
        Precision::F16Acc => {
            let wt = Weights::encode(WeightFormat::F16, n, k, w)?;
            let kp = wt.k;
            let mut ap = vec![0f32; m * kp];
            for r in 0..m {
                ap[r * kp..r * kp + k].copy_from_slice(&a[r * k..(r + 1) * k]);
            }
            Prepared::Wq(wt, ap)
        }
    };
    let run = || -> Result<Vec<f32>> {
        match &prepared {
            Prepared::F32 => matmul_cpu_fast(Layout::Nt, shape, a, w),
            Prepared::Wq(wt, ap) => Ok(matmul_wq_cpu(ap, m, wt)),
            Prepared::I8(wq) => matmul_i8_cpu(a, m, k, wq),
        }
    };
    std::hint::black_box(run()?);
    let mut best = Vec::new();
    for _ in 0..repeat.max(1) {
        let t = std::time::Instant::now();
        std::hint::black_box(run()?);
        best.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(crate::stats::Summary::of(&best).map(|s| s.median))
}
