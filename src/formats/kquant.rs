//! ggml's K-quants Q4_K and Q6_K: super-blocks of [`QK_K`] = 256 values with quantized
//! per-sub-block scales, the types llama.cpp's Q4_K_M files are made of. Byte layouts are
//! ggml's; quantization follows ggml's reference quantizers without an importance matrix
//! (what `llama-quantize` writes when not given `--imatrix`), byte for byte; dequantization
//! does gguf-py's arithmetic (`(d * sc) * q - dmin * m`, `(d * sc) * q`), exactly.
//!
//! The algorithms, as this module implements them:
//! - **Q4_K**: each 32-value sub-block gets a scale and a min (value = scale * q - min,
//!   q in 0..=15) from a weighted least-squares search over 21 stretched grids (weights
//!   `sqrt(mean x^2) + |x|`); the 8 scales and 8 mins are then quantized to 6 bits against
//!   the super-block's largest (stored as f16 `d` and `dmin`), and each value re-coded
//!   against its 6-bit-quantized scale and min.
//! - **Q6_K**: each 16-value sub-block gets a signed scale from a search over 19 grids
//!   weighted by x^2 (codes -32..=31); the 16 scales are quantized to int8 against the
//!   largest magnitude (f16 `d`), and each value re-coded against its quantized scale.
//!
//! Rounding is ggml's `nearest_int` (round half to even through the float adder), and all
//! arithmetic is f32 in the C code's order: Rust never fuses a multiply-add, which is what a
//! ggml build without FMA contraction computes (GGML_NATIVE=OFF; the fixtures are made so).

use half::f16;

use crate::formats::quant::{check_row, signed_absmax, QuantError};

/// Values per super-block.
pub const QK_K: usize = 256;

/// ggml's threshold below which a group counts as all zero.
const GROUP_MAX_EPS: f32 = 1e-15;

/// Q4_K super-block (144 bytes): 8 sub-blocks of 32, each with a 6-bit scale and min.
///
/// ```text
/// byte   0..2    d     (f16, multiplies the 6-bit scales)
/// byte   2..4    dmin  (f16, multiplies the 6-bit mins)
/// byte   4..16   scales: sub-block j < 4: scale = s[j] & 63, min = s[j+4] & 63;
///                j >= 4: scale = s[j+4] & 15 | (s[j-4] >> 6) << 4,
///                        min   = s[j+4] >> 4 | (s[j]   >> 6) << 4
/// byte  16..144  qs: 4 chunks of 32 bytes; chunk c holds sub-block 2c in its low nibbles
///                and sub-block 2c+1 in its high nibbles (byte l: element l of each)
/// ```
/// value = (d * scale) * q - (dmin * min).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4K {
    /// Super-block scale of the scales.
    pub d: f16,
    /// Super-block scale of the mins.
    pub dmin: f16,
    /// 8 scales and 8 mins, 6 bits each, packed.
    pub scales: [u8; 12],
    /// Nibbles.
    pub qs: [u8; QK_K / 2],
}

/// Q6_K super-block (210 bytes): 16 sub-blocks of 16, each with an int8 scale.
///
/// ```text
/// byte    0..128  ql: low 4 bits; half h (128 values) uses bytes 64h..64h+64: byte l
///                 (l < 32) holds element l (low nibble) and l+64 (high), byte l+32 holds
///                 l+32 and l+96
/// byte  128..192  qh: high 2 bits; half h uses bytes 32h..32h+32: byte l holds elements
///                 l, l+32, l+64, l+96 in bits 0-1, 2-3, 4-5, 6-7
/// byte  192..208  scales (int8), one per 16 values
/// byte  208..210  d (f16)
/// ```
/// value = (d * scale) * (q - 32).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ6K {
    /// Low 4 bits of the codes.
    pub ql: [u8; QK_K / 2],
    /// High 2 bits of the codes.
    pub qh: [u8; QK_K / 4],
    /// Sub-block scales.
    pub scales: [i8; QK_K / 16],
    /// Super-block scale.
    pub d: f16,
}

const _: () = assert!(std::mem::size_of::<BlockQ4K>() == 144);
const _: () = assert!(std::mem::size_of::<BlockQ6K>() == 210);

/// ggml's `nearest_int`: adding 1.5 * 2^23 leaves the rounded integer (half to even) in
/// the low mantissa bits. Valid for |f| < 2^22, which every caller's codes are.
fn nearest_int(f: f32) -> i32 {
    let v = f + 12_582_912.0;
    (v.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

/// The 6-bit scale and min of sub-block `j` from a Q4_K `scales` array.
pub fn q4k_scale_min(j: usize, s: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

/// Scale and min (as a positive offset: value = scale * code - min) of one sub-block, from
/// the weighted search over stretched grids; `codes` receives the chosen codes (0..=nmax).
fn search_scale_min(x: &[f32], weights: &[f32], nmax: i32, codes: &mut [u8]) -> (f32, f32) {
    const RMIN: f32 = -1.0;
    const RDELTA: f32 = 0.1;
    const NSTEP: i32 = 20;
    let (mut min, mut max) = (x[0], x[0]);
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for (&v, &w) in x.iter().zip(weights).skip(1) {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
        sum_w += w;
        sum_x += w * v;
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        codes.fill(0);
        return (0.0, -min);
    }
    // As in ggml, later grids are laid from the best min found so far, not the data's.
    let code = |iscale: f32, v: f32, min: f32| nearest_int(iscale * (v - min)).clamp(0, nmax) as u8;
    let err = |scale: f32, min: f32, codes: &[u8]| {
        let mut e = 0f32;
        for ((&v, &w), &l) in x.iter().zip(weights).zip(codes) {
            let diff = scale * l as f32 + min - v;
            e += w * (diff * diff);
        }
        e
    };
    let iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    for (l, &v) in codes.iter_mut().zip(x) {
        *l = code(iscale, v, min);
    }
    let mut best_error = err(scale, min, codes);
    let mut aux = [0u8; 32];
    let aux = &mut aux[..x.len()];
    for is in 0..=NSTEP {
        let iscale = (RMIN + RDELTA * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0f32, 0f32, 0f32);
        for ((a, &v), &w) in aux.iter_mut().zip(x).zip(weights) {
            *a = code(iscale, v, min);
            let l = *a as f32;
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * v;
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let e = err(this_scale, this_min, aux);
            if e < best_error {
                codes.copy_from_slice(aux);
                best_error = e;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// Quantizes a row to Q4_K (ggml `quantize_row_q4_K_ref`).
pub fn quantize_q4_k(x: &[f32]) -> Result<Vec<BlockQ4K>, QuantError> {
    check_row(x, QK_K)?;
    Ok(x.chunks_exact(QK_K)
        .map(|x| {
            let mut codes = [0u8; QK_K];
            let mut scales = [0f32; 8];
            let mut mins = [0f32; 8];
            let (mut max_scale, mut max_min) = (0f32, 0f32);
            for j in 0..8 {
                let xs = &x[32 * j..32 * (j + 1)];
                let mut sum_x2 = 0f32;
                for &v in xs {
                    sum_x2 += v * v;
                }
                let av_x = (sum_x2 / 32.0).sqrt();
                let mut weights = [0f32; 32];
                for (w, &v) in weights.iter_mut().zip(xs) {
                    *w = av_x + v.abs();
                }
                let codes_j = &mut codes[32 * j..32 * (j + 1)];
                (scales[j], mins[j]) = search_scale_min(xs, &weights, 15, codes_j);
                if scales[j] > max_scale {
                    max_scale = scales[j];
                }
                if mins[j] > max_min {
                    max_min = mins[j];
                }
            }
            let inv_scale = if max_scale > 0.0 {
                63.0 / max_scale
            } else {
                0.0
            };
            let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
            let mut s = [0u8; 12];
            for j in 0..8 {
                // C stores the int in a uint8_t (modulo 256) before clamping to 63.
                let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
                let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
                if j < 4 {
                    s[j] = ls;
                    s[j + 4] = lm;
                } else {
                    s[j + 4] = (ls & 0x0F) | ((lm & 0x0F) << 4);
                    s[j - 4] |= (ls >> 4) << 6;
                    s[j] |= (lm >> 4) << 6;
                }
            }
            let d = f16::from_f32(max_scale / 63.0);
            let dmin = f16::from_f32(max_min / 63.0);
            for j in 0..8 {
                let (sc, m) = q4k_scale_min(j, &s);
                let dj = d.to_f32() * sc as f32;
                if dj == 0.0 {
                    continue;
                }
                let dm = dmin.to_f32() * m as f32;
                for i in 32 * j..32 * (j + 1) {
                    codes[i] = nearest_int((x[i] + dm) / dj).clamp(0, 15) as u8;
                }
            }
            let mut qs = [0u8; QK_K / 2];
            for (c, chunk) in qs.chunks_exact_mut(32).enumerate() {
                for (l, q) in chunk.iter_mut().enumerate() {
                    *q = codes[64 * c + l] | (codes[64 * c + l + 32] << 4);
                }
            }
            BlockQ4K {
                d,
                dmin,
                scales: s,
                qs,
            }
        })
        .collect())
}

/// Signed scale of one Q6_K sub-block (codes -nmax..nmax-1, stored offset by nmax) from
/// a search over 19 stretched grids weighted by x^2; `codes` receives the offset codes.
fn search_scale_signed(x: &[f32], nmax: i32, codes: &mut [u8]) -> f32 {
    let max = signed_absmax(x);
    if max.abs() < GROUP_MAX_EPS {
        codes.fill(0);
        return 0.0;
    }
    let code = |iscale: f32, v: f32| nearest_int(iscale * v).clamp(-nmax, nmax - 1);
    let sums = |iscale: f32| {
        let (mut sumlx, mut suml2) = (0f32, 0f32);
        for &v in x {
            let l = code(iscale, v) as f32;
            let w = v * v;
            sumlx += w * v * l;
            suml2 += w * l * l;
        }
        (sumlx, suml2)
    };
    let store = |iscale: f32, codes: &mut [u8]| {
        for (q, &v) in codes.iter_mut().zip(x) {
            *q = (code(iscale, v) + nmax) as u8;
        }
    };
    let iscale = -(nmax as f32) / max;
    store(iscale, codes);
    let (sumlx, suml2) = sums(iscale);
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in (-9..=9).filter(|&i| i != 0) {
        let iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        let (sumlx, suml2) = sums(iscale);
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            store(iscale, codes);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// Quantizes a row to Q6_K (ggml `quantize_row_q6_K_ref`).
pub fn quantize_q6_k(x: &[f32]) -> Result<Vec<BlockQ6K>, QuantError> {
    check_row(x, QK_K)?;
    Ok(x.chunks_exact(QK_K)
        .map(|x| {
            let mut codes = [0u8; QK_K];
            let mut scales = [0f32; 16];
            let (mut max_scale, mut max_abs_scale) = (0f32, 0f32);
            for (ib, scale) in scales.iter_mut().enumerate() {
                let r = 16 * ib..16 * (ib + 1);
                *scale = search_scale_signed(&x[r.clone()], 32, &mut codes[r]);
                if scale.abs() > max_abs_scale {
                    max_abs_scale = scale.abs();
                    max_scale = *scale;
                }
            }
            if max_abs_scale < GROUP_MAX_EPS {
                return BlockQ6K {
                    ql: [0; QK_K / 2],
                    qh: [0; QK_K / 4],
                    scales: [0; 16],
                    d: f16::ZERO,
                };
            }
            let iscale = -128.0 / max_scale;
            let d = f16::from_f32(1.0 / iscale);
            let mut sc = [0i8; 16];
            for (s, &scale) in sc.iter_mut().zip(&scales) {
                // C stores the clamped int in an int8_t (modulo 256).
                *s = nearest_int(iscale * scale).min(127) as i8;
            }
            for (j, &s) in sc.iter().enumerate() {
                let dj = d.to_f32() * s as f32;
                if dj == 0.0 {
                    continue;
                }
                for i in 16 * j..16 * (j + 1) {
                    codes[i] = (nearest_int(x[i] / dj).clamp(-32, 31) + 32) as u8;
                }
            }
            let mut ql = [0u8; QK_K / 2];
            let mut qh = [0u8; QK_K / 4];
            for h in 0..2 {
                let (l8, h8, c) = (&mut ql[64 * h..], &mut qh[32 * h..], &codes[128 * h..]);
                for l in 0..32 {
                    l8[l] = (c[l] & 0x0F) | ((c[l + 64] & 0x0F) << 4);
                    l8[l + 32] = (c[l + 32] & 0x0F) | ((c[l + 96] & 0x0F) << 4);
                    h8[l] = (c[l] >> 4)
                        | ((c[l + 32] >> 4) << 2)
                        | ((c[l + 64] >> 4) << 4)
                        | ((c[l + 96] >> 4) << 6);
                }
            }
            BlockQ6K {
                ql,
                qh,
                scales: sc,
                d,
            }
        })
        .collect())
}

/// Dequantizes one Q4_K super-block into `out` (256 values).
pub fn dequantize_q4_k_block(b: &BlockQ4K, out: &mut [f32]) {
    let (d, dmin) = (b.d.to_f32(), b.dmin.to_f32());
    for j in 0..8 {
        let (sc, m) = q4k_scale_min(j, &b.scales);
        let (scale, min) = (d * sc as f32, dmin * m as f32);
        let shift = 4 * (j % 2);
        let chunk = &b.qs[32 * (j / 2)..32 * (j / 2 + 1)];
        for (o, &q) in out[32 * j..32 * (j + 1)].iter_mut().zip(chunk) {
            *o = scale * ((q >> shift) & 0x0F) as f32 - min;
        }
    }
}

/// Dequantizes one Q6_K super-block into `out` (256 values).
pub fn dequantize_q6_k_block(b: &BlockQ6K, out: &mut [f32]) {
    let d = b.d.to_f32();
    for (i, o) in out.iter_mut().enumerate().take(QK_K) {
        *o = d * b.scales[i / 16] as f32 * q6k_code(b, i) as f32;
    }
}

/// The signed code (-32..=31) of element `i` of a Q6_K super-block.
pub fn q6k_code(b: &BlockQ6K, i: usize) -> i32 {
    let (h, r) = (i / 128, i % 128);
    let (group, l) = (r / 32, r % 32);
    let lo = (b.ql[64 * h + l + 32 * (group % 2)] >> (4 * (group / 2))) & 0x0F;
    let hi = (b.qh[32 * h + l] >> (2 * group)) & 3;
    (lo | (hi << 4)) as i32 - 32
}

/// Dequantizes Q4_K super-blocks.
pub fn dequantize_q4_k(blocks: &[BlockQ4K]) -> Vec<f32> {
    let mut out = vec![0f32; blocks.len() * QK_K];
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
        dequantize_q4_k_block(b, o);
    }
    out
}

/// Dequantizes Q6_K super-blocks.
pub fn dequantize_q6_k(blocks: &[BlockQ6K]) -> Vec<f32> {
    let mut out = vec![0f32; blocks.len() * QK_K];
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
        dequantize_q6_k_block(b, o);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_rounds_half_to_even() {
        for (f, want) in [
            (0.5, 0),
            (1.5, 2),
            (2.5, 2),
            (-0.5, 0),
            (-1.5, -2),
            (3.49, 3),
        ] {
            assert_eq!(nearest_int(f), want, "{f}");
        }
    }
}
