//! ggml's block quantization formats Q8_0, Q4_0, Q4_1 and Q5_0, byte-identical to ggml's
//! reference quantizers (`quantize_row_q8_0_ref`, `quantize_row_q4_0_ref`,
//! `quantize_row_q4_1_ref`, `quantize_row_q5_0_ref` in ggml-quants.c), and their
//! dequantizers. The super-block K-quants are in `formats::kquant`.
//!
//! All four use blocks of [`QK`] = 32 consecutive values along a row. The arithmetic is
//! done in f32 exactly as the C code does it (including `1/d` then multiply, not divide),
//! and scales are rounded to f16 with round-to-nearest-even (`GGML_FP32_TO_FP16`).
//!
//! Non-finite input (NaN, ±Inf) has no meaningful quantization — ggml's C code would
//! convert a NaN to an integer, which is undefined — so the quantizers refuse it with
//! [`QuantError::NonFinite`], naming the first offending index.

use half::f16;

/// Values per block, for every format here.
pub const QK: usize = 32;

/// Why a row could not be quantized.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuantError {
    /// The row length is not a whole number of blocks.
    #[error("row length {len} is not a multiple of the block size {block}")]
    NotBlockMultiple {
        /// The length given.
        len: usize,
        /// The format's block size (32, or 256 for the K-quants).
        block: usize,
    },
    /// An importance vector (one weight per column) that does not fit the rows.
    #[error(
        "importance has {len} values; it needs one per column of a row, in whole blocks of {QK}"
    )]
    ImportanceLength {
        /// The length given.
        len: usize,
    },
    /// A NaN or infinity in the input.
    #[error("value {value} at index {index} is not finite; quantization needs finite input")]
    NonFinite {
        /// Its index in the row.
        index: usize,
        /// The value.
        value: f32,
    },
}

/// Q8_0 block (34 bytes): `d` (f16), then 32 signed bytes; value = d * q.
///
/// ```text
/// byte  0..2   d  (f16, little-endian)
/// byte  2..34  q0 q1 ... q31  (int8)
/// ```
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ8_0 {
    /// Scale.
    pub d: f16,
    /// Quantized values.
    pub qs: [i8; QK],
}

/// Q4_0 block (18 bytes): `d` (f16), then 16 bytes of nibbles; value = d * (q - 8).
///
/// ```text
/// byte  0..2   d  (f16)
/// byte  2+j    low nibble: element j, high nibble: element j+16   (j = 0..16)
/// ```
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4_0 {
    /// Scale.
    pub d: f16,
    /// Packed nibbles.
    pub qs: [u8; QK / 2],
}

/// Q4_1 block (20 bytes): `d` and `m` (f16), then 16 bytes of nibbles; value = d * q + m.
///
/// ```text
/// byte  0..2   d  (f16)
/// byte  2..4   m  (f16, the block minimum)
/// byte  4+j    low nibble: element j, high nibble: element j+16   (j = 0..16)
/// ```
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4_1 {
    /// Scale.
    pub d: f16,
    /// Minimum.
    pub m: f16,
    /// Packed nibbles.
    pub qs: [u8; QK / 2],
}

/// Q5_0 block (22 bytes): `d` (f16), the fifth bits `qh`, then 16 bytes of low nibbles;
/// value = d * (q - 16) with q = nibble | bit << 4.
///
/// ```text
/// byte  0..2   d  (f16)
/// byte  2..6   qh (u32, little-endian): bit j is the fifth bit of element j
/// byte  6+j    low nibble: element j, high nibble: element j+16   (j = 0..16)
/// ```
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ5_0 {
    /// Scale.
    pub d: f16,
    /// Fifth bits, little-endian u32 (bytes, so the block stays 2-aligned as in ggml).
    pub qh: [u8; 4],
    /// Packed low nibbles.
    pub qs: [u8; QK / 2],
}

const _: () = assert!(std::mem::size_of::<BlockQ8_0>() == 34);
const _: () = assert!(std::mem::size_of::<BlockQ5_0>() == 22);
const _: () = assert!(std::mem::size_of::<BlockQ4_0>() == 18);
const _: () = assert!(std::mem::size_of::<BlockQ4_1>() == 20);

fn blocks_of(x: &[f32]) -> Result<std::slice::ChunksExact<'_, f32>, QuantError> {
    check_row(x, QK)?;
    Ok(x.chunks_exact(QK))
}

/// Refuses a row that is not whole blocks of `block` values or holds a non-finite value.
pub(crate) fn check_row(x: &[f32], block: usize) -> Result<(), QuantError> {
    if !x.len().is_multiple_of(block) {
        return Err(QuantError::NotBlockMultiple {
            len: x.len(),
            block,
        });
    }
    if let Some((index, &value)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(QuantError::NonFinite { index, value });
    }
    Ok(())
}

/// The signed value of largest magnitude (the first one on ties), as ggml picks it for the
/// symmetric formats.
pub(crate) fn signed_absmax(b: &[f32]) -> f32 {
    let (mut amax, mut max) = (0f32, 0f32);
    for &v in b {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    max
}

/// The reciprocal ggml uses: `d ? 1.0f/d : 0.0f`.
fn inv(d: f32) -> f32 {
    if d != 0.0 {
        1.0 / d
    } else {
        0.0
    }
}

/// Quantizes a row to Q8_0 (ggml `quantize_row_q8_0_ref`).
pub fn quantize_q8_0(x: &[f32]) -> Result<Vec<BlockQ8_0>, QuantError> {
    Ok(blocks_of(x)?
        .map(|b| {
            let amax = b.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            let id = inv(d);
            let mut qs = [0i8; QK];
            for (q, &v) in qs.iter_mut().zip(b) {
                // C's roundf: half away from zero, which f32::round is.
                *q = (v * id).round() as i8;
            }
            BlockQ8_0 {
                d: f16::from_f32(d),
                qs,
            }
        })
        .collect())
}

/// Quantizes a row to Q4_0 (ggml `quantize_row_q4_0_ref`).
pub fn quantize_q4_0(x: &[f32]) -> Result<Vec<BlockQ4_0>, QuantError> {
    Ok(blocks_of(x)?
        .map(|b| {
            let d = signed_absmax(b) / -8.0;
            let id = inv(d);
            let nib = |v: f32| ((v * id + 8.5) as i8).min(15) as u8;
            let mut qs = [0u8; QK / 2];
            for (j, q) in qs.iter_mut().enumerate() {
                *q = nib(b[j]) | (nib(b[j + QK / 2]) << 4);
            }
            BlockQ4_0 {
                d: f16::from_f32(d),
                qs,
            }
        })
        .collect())
}

/// Quantizes a row to Q4_1 (ggml `quantize_row_q4_1_ref`).
pub fn quantize_q4_1(x: &[f32]) -> Result<Vec<BlockQ4_1>, QuantError> {
    Ok(blocks_of(x)?
        .map(|b| {
            let min = b.iter().fold(f32::MAX, |m, &v| if v < m { v } else { m });
            let max = b.iter().fold(-f32::MAX, |m, &v| if v > m { v } else { m });
            let d = (max - min) / 15.0;
            let id = inv(d);
            let nib = |v: f32| (((v - min) * id + 0.5) as i8).min(15) as u8;
            let mut qs = [0u8; QK / 2];
            for (j, q) in qs.iter_mut().enumerate() {
                *q = nib(b[j]) | (nib(b[j + QK / 2]) << 4);
            }
            BlockQ4_1 {
                d: f16::from_f32(d),
                m: f16::from_f32(min),
                qs,
            }
        })
        .collect())
}

/// Quantizes a row to Q5_0 (ggml `quantize_row_q5_0_ref`): Q4_0's rule with 32 levels,
/// d = max / -16, the fifth bit of each code in `qh`.
pub fn quantize_q5_0(x: &[f32]) -> Result<Vec<BlockQ5_0>, QuantError> {
    Ok(blocks_of(x)?
        .map(|b| {
            let d = signed_absmax(b) / -16.0;
            let id = inv(d);
            let code = |v: f32| ((v * id + 16.5) as i8).min(31) as u8;
            let mut qs = [0u8; QK / 2];
            let mut qh = 0u32;
            for (j, q) in qs.iter_mut().enumerate() {
                let (lo, hi) = (code(b[j]), code(b[j + QK / 2]));
                *q = (lo & 0x0F) | ((hi & 0x0F) << 4);
                qh |= ((lo as u32 >> 4) & 1) << j;
                qh |= ((hi as u32 >> 4) & 1) << (j + QK / 2);
            }
            BlockQ5_0 {
                d: f16::from_f32(d),
                qh: qh.to_le_bytes(),
                qs,
            }
        })
        .collect())
}

/// Dequantizes Q5_0 blocks: d * (q - 16).
pub fn dequantize_q5_0(blocks: &[BlockQ5_0]) -> Vec<f32> {
    let mut out = Vec::with_capacity(blocks.len() * QK);
    for b in blocks {
        let d = b.d.to_f32();
        let qh = u32::from_le_bytes(b.qh);
        let code = |j: usize, nib: u8| (nib as i32 | (((qh >> j) & 1) << 4) as i32) - 16;
        out.extend((0..QK / 2).map(|j| d * code(j, b.qs[j] & 0x0F) as f32));
        out.extend((0..QK / 2).map(|j| d * code(j + QK / 2, b.qs[j] >> 4) as f32));
    }
    out
}

/// Dequantizes Q8_0 blocks: d * q.
pub fn dequantize_q8_0(blocks: &[BlockQ8_0]) -> Vec<f32> {
    blocks
        .iter()
        .flat_map(|b| {
            let d = b.d.to_f32();
            b.qs.map(|q| d * q as f32)
        })
        .collect()
}

/// Dequantizes Q4_0 blocks: d * (q - 8).
pub fn dequantize_q4_0(blocks: &[BlockQ4_0]) -> Vec<f32> {
    let mut out = Vec::with_capacity(blocks.len() * QK);
    for b in blocks {
        let d = b.d.to_f32();
        out.extend(b.qs.iter().map(|&q| d * ((q & 0x0F) as i32 - 8) as f32));
        out.extend(b.qs.iter().map(|&q| d * ((q >> 4) as i32 - 8) as f32));
    }
    out
}

/// Dequantizes Q4_1 blocks: d * q + m.
pub fn dequantize_q4_1(blocks: &[BlockQ4_1]) -> Vec<f32> {
    let mut out = Vec::with_capacity(blocks.len() * QK);
    for b in blocks {
        let (d, m) = (b.d.to_f32(), b.m.to_f32());
        out.extend(b.qs.iter().map(|&q| d * (q & 0x0F) as f32 + m));
        out.extend(b.qs.iter().map(|&q| d * (q >> 4) as f32 + m));
    }
    out
}
