//! The fast multi-threaded CPU path for every precision, working on the stored (quantized)
//! weights, not on a dequantized f32 copy: the fair CPU baseline of the precision
//! benchmarks. f32 goes through the `gemm` crate; the other formats decode one 32-value
//! block at a time and reuse it for every activation row; int8 quantizes the activations per
//! row and multiplies in integers, as the GPU does; f16acc rounds every multiply-add to f16.

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

/// Lanes of the f16 accumulation: 8 partial sums per output, each rounded to f16 after every
/// multiply-add, then summed pairwise in f16 (the GPU kernel keeps 4, one per vec4 lane).
const F16_LANES: usize = 8;

/// Sums the 8 lanes pairwise, rounding each sum to f16.
fn f16_hsum(v: [f32; F16_LANES]) -> f32 {
    let r = |x: f32| half::f16::from_f32(x).to_f32();
    let a = [
        r(v[0] + v[4]),
        r(v[1] + v[5]),
        r(v[2] + v[6]),
        r(v[3] + v[7]),
    ];
    let b = [r(a[0] + a[2]), r(a[1] + a[3])];
    r(b[0] + b[1])
}

fn f16acc_cols(a: &[u16], w: &[u16], m: usize, kp: usize, c0: usize, c1: usize, out: &mut [f32]) {
    let h = |x: u16| half::f16::from_bits(x).to_f32();
    let width = c1 - c0;
    for col in c0..c1 {
        let wr = &w[col * kp..(col + 1) * kp];
        for r in 0..m {
            let ar = &a[r * kp..(r + 1) * kp];
            let mut acc = [0f32; F16_LANES];
            for (ca, cw) in ar.chunks_exact(F16_LANES).zip(wr.chunks_exact(F16_LANES)) {
                for l in 0..F16_LANES {
                    acc[l] = half::f16::from_f32(h(ca[l]).mul_add(h(cw[l]), acc[l])).to_f32();
                }
            }
            out[r * width + col - c0] = f16_hsum(acc);
        }
    }
}

/// The same with F16C: 8 f16 lanes widened, one f32 FMA (exact products of f16 values),
/// rounded back to f16 each step.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16acc_cols_f16c(
    a: &[u16],
    w: &[u16],
    m: usize,
    kp: usize,
    c0: usize,
    c1: usize,
    out: &mut [f32],
) {
    use std::arch::x86_64::*;
    let width = c1 - c0;
    // Four rows at a time: four independent FMA-and-round chains (each step waits on the
    // last conversion), sharing the weight loads.
    const R: usize = 4;
    for col in c0..c1 {
        let wr = &w[col * kp..(col + 1) * kp];
        for r0 in (0..m).step_by(R) {
            let rows = R.min(m - r0);
            let mut acc = [_mm256_setzero_ps(); R];
            for i in (0..kp).step_by(F16_LANES) {
                // SAFETY: i + 8 <= kp, so every 16-byte load is inside its row.
                let wv = _mm256_cvtph_ps(_mm_loadu_si128(wr.as_ptr().add(i) as *const __m128i));
                for (j, acc) in acc.iter_mut().enumerate().take(rows) {
                    let ar = a.as_ptr().add((r0 + j) * kp + i);
                    let av = _mm256_cvtph_ps(_mm_loadu_si128(ar as *const __m128i));
                    let t = _mm256_fmadd_ps(av, wv, *acc);
                    *acc = _mm256_cvtph_ps(_mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(t));
                }
            }
            for (j, acc) in acc.iter().enumerate().take(rows) {
                let mut lanes = [0f32; F16_LANES];
                _mm256_storeu_ps(lanes.as_mut_ptr(), *acc);
                out[(r0 + j) * width + col - c0] = f16_hsum(lanes);
            }
        }
    }
}

/// f16acc on the CPU: A (m x k) and W (n x k) rounded to f16, every multiply-add rounded to
/// f16 (8 lanes along k, then a pairwise f16 sum). x86 has no f16 arithmetic before
/// AVX512-FP16, so each step is an f32 FMA of the exact f16 product and a conversion back
/// (F16C when present); the GPU's f16 FMA rounds once, this twice, which differs from it in
/// rare last bits — a timing baseline with the same work, not a validation reference.
pub fn matmul_f16acc_cpu(a: &[f32], w: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
    let kp = k.div_ceil(F16_LANES) * F16_LANES;
    let pack = |x: &[f32], rows: usize| -> Vec<u16> {
        let mut v = vec![0u16; rows * kp];
        for r in 0..rows {
            for (d, s) in v[r * kp..r * kp + k].iter_mut().zip(&x[r * k..(r + 1) * k]) {
                *d = half::f16::from_f32(*s).to_bits();
            }
        }
        v
    };
    let (a16, w16) = (pack(a, m), pack(w, n));
    par_cols(m, n, &|c0, c1, out| {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c")
        {
            // SAFETY: the CPU supports AVX2, FMA and F16C (checked just above).
            return unsafe { f16acc_cols_f16c(&a16, &w16, m, kp, c0, c1, out) };
        }
        f16acc_cols(&a16, &w16, m, kp, c0, c1, out)
    })
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
        F16Acc,
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
        Precision::F16Acc => Prepared::F16Acc,
    };
    let run = || -> Result<Vec<f32>> {
        match &prepared {
            Prepared::F32 => matmul_cpu_fast(Layout::Nt, shape, a, w),
            Prepared::Wq(wt, ap) => Ok(matmul_wq_cpu(ap, m, wt)),
            Prepared::I8(wq) => matmul_i8_cpu(a, m, k, wq),
            Prepared::F16Acc => Ok(matmul_f16acc_cpu(a, w, m, n, k)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn f16acc_f16c_and_portable_paths_agree_bit_for_bit() {
        let (m, n, k): (usize, usize, usize) = (3, 5, 203);
        let mut rng = Rng::new(4);
        let kp = k.div_ceil(F16_LANES) * F16_LANES;
        let pack = |x: Vec<f32>| -> Vec<u16> {
            x.iter()
                .map(|v| half::f16::from_f32(*v).to_bits())
                .collect()
        };
        let (a, w) = (pack(rng.vec_f32(m * kp)), pack(rng.vec_f32(n * kp)));
        let mut portable = vec![0f32; m * n];
        f16acc_cols(&a, &w, m, kp, 0, n, &mut portable);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c")
        {
            let mut fast = vec![0f32; m * n];
            // SAFETY: the features were just detected.
            unsafe { f16acc_cols_f16c(&a, &w, m, kp, 0, n, &mut fast) };
            assert_eq!(portable, fast);
        }
        // Every output is an f16 value.
        assert!(portable
            .iter()
            .all(|v| half::f16::from_f32(*v).to_f32() == *v));
    }
}
