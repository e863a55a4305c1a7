//! Symmetric int8 quantization for W8A8, in two schemes ([`Int8Scheme`]):
//! - `PerRow`: one scale per row (per output channel for weights, per token for
//!   activations), q = round_half_away(x / s), s = amax / 127;
//! - `Rot32`: each block of 32 values along a row is first rotated by the normalised
//!   32-point Hadamard matrix H (Sylvester order, entries ±1/sqrt(32)), then quantized with
//!   its own scale. H is orthogonal and symmetric, so (aH)·(wH) = a·w: weights and
//!   activations rotated alike give the same product, while the rotation spreads a block's
//!   outliers over all 32 values (the idea of QuaRot/QuIP#) and the block scales confine
//!   what remains. On all-MiniLM-L6-v2 this is what brings W8A8 to 0.99966 minimum cosine,
//!   where per-row scales give 0.99457 (docs/results/minilm-lavapipe.md).
//!
//! The rotation is a fast Walsh–Hadamard transform in f32 with a fixed butterfly order
//! (stride 1, 2, 4, 8, 16; `a + b` then `a - b`), then one multiply by 1/sqrt(32); the GPU
//! (`shaders/quantize_rot32_i8.wgsl`) does the same operations in the same order.
//!
//! The same arithmetic runs on the GPU (`shaders/quantize_rows_i8.wgsl`,
//! `quantize_rot32_i8.wgsl`): s = amax / 127 in f32, then x * (1 / s) rounded half away from
//! zero, as ggml's `roundf` does. WGSL only promises division to 2.5 ULP, so on some GPUs
//! (an NVIDIA H100 here) the scale can differ from the CPU's in its last bits and a value on
//! a rounding boundary lands one step away. The W8A8 kernel is therefore validated against
//! the activations the GPU itself produced, and the GPU quantizer against this one within
//! one step. Rows are padded with zeros to `kp` values (a multiple of 32) before any
//! rotation and packed four to a u32, element 0 in the lowest byte.

use serde::Serialize;

use crate::error::{LabError, Result};

/// How a row is split into scaled groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Int8Scheme {
    /// One scale per row.
    PerRow,
    /// 32-value blocks, Hadamard-rotated, one scale each.
    Rot32,
}

/// Values per block of [`Int8Scheme::Rot32`].
pub const ROT_BLOCK: usize = 32;

/// 1/sqrt(32) as f32 (= (1/sqrt 2) / 4 exactly): the Hadamard normalisation; the shader
/// writes the same f32 as 0.17677669.
const INV_SQRT_32: f32 = std::f32::consts::FRAC_1_SQRT_2 / 4.0;

/// In-place normalised Hadamard transform of one 32-value block (its own inverse).
pub fn hadamard32(v: &mut [f32; ROT_BLOCK]) {
    let mut h = 1;
    while h < ROT_BLOCK {
        for i in (0..ROT_BLOCK).step_by(2 * h) {
            for j in i..i + h {
                let (a, b) = (v[j], v[j + h]);
                v[j] = a + b;
                v[j + h] = a - b;
            }
        }
        h *= 2;
    }
    for x in v.iter_mut() {
        *x *= INV_SQRT_32;
    }
}

/// Rows quantized to int8 with f32 scales (one per row or one per block, by `scheme`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Int8Rows {
    /// Scheme the rows were quantized with.
    pub scheme: Int8Scheme,
    /// Rows.
    pub rows: usize,
    /// Values per row as given.
    pub k: usize,
    /// Values per row as stored (k padded to a multiple of 32).
    pub kp: usize,
    /// rows x kp / 4 words, four int8 per word.
    pub words: Vec<u32>,
    /// `rows x scales_per_row` scales: value = q * scale.
    pub scales: Vec<f32>,
}

/// Quantizes one group: s = amax / 127, q = round_half_away(v / s) written to `out`.
fn quantize_group(v: &[f32], out: &mut Vec<u8>) -> f32 {
    let amax = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let s = amax / 127.0;
    let inv = if s != 0.0 { 1.0 / s } else { 0.0 };
    out.extend(v.iter().map(|&x| round_half_away(x * inv) as i8 as u8));
    s
}

/// Rounds half away from zero (C's `roundf`), exactly, for any finite f32.
pub fn round_half_away(v: f32) -> f32 {
    v.round()
}

/// Quantizes `x` (rows x k, finite) row by row, one scale per row.
pub fn quantize_rows(x: &[f32], rows: usize, k: usize) -> Result<Int8Rows> {
    quantize_rows_with(x, rows, k, Int8Scheme::PerRow)
}

/// Quantizes `x` (rows x k, finite) in `scheme`.
pub fn quantize_rows_with(
    x: &[f32],
    rows: usize,
    k: usize,
    scheme: Int8Scheme,
) -> Result<Int8Rows> {
    if rows == 0 || k == 0 || x.len() != rows * k {
        return Err(LabError::Shape(format!(
            "int8: {} values for {rows} x {k}",
            x.len()
        )));
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(LabError::Shape(format!(
            "int8: value {} at [{}, {}] is not finite",
            x[i],
            i / k,
            i % k
        )));
    }
    let kp = k.div_ceil(32) * 32;
    let mut bytes = Vec::with_capacity(rows * kp);
    let mut scales = Vec::new();
    let mut padded = vec![0f32; kp];
    for r in 0..rows {
        padded[..k].copy_from_slice(&x[r * k..(r + 1) * k]);
        match scheme {
            Int8Scheme::PerRow => scales.push(quantize_group(&padded, &mut bytes)),
            Int8Scheme::Rot32 => {
                for blk in padded.chunks_exact(ROT_BLOCK) {
                    let mut v: [f32; ROT_BLOCK] = blk.try_into().expect("32 values");
                    hadamard32(&mut v);
                    scales.push(quantize_group(&v, &mut bytes));
                }
            }
        }
    }
    let words = bytes
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok(Int8Rows {
        scheme,
        rows,
        k,
        kp,
        words,
        scales,
    })
}

impl Int8Rows {
    /// The int8 value at (row, col).
    pub fn q(&self, row: usize, col: usize) -> i8 {
        let w = self.words[row * self.kp / 4 + col / 4];
        (w >> (8 * (col % 4))) as u8 as i8
    }

    /// Scales per row: 1, or one per 32-value block.
    pub fn scales_per_row(&self) -> usize {
        match self.scheme {
            Int8Scheme::PerRow => 1,
            Int8Scheme::Rot32 => self.kp / ROT_BLOCK,
        }
    }

    /// Values one scale covers (the row, or a block).
    pub fn group_len(&self) -> usize {
        self.kp / self.scales_per_row()
    }

    /// The scale of (row, col).
    pub fn scale(&self, row: usize, col: usize) -> f32 {
        self.scales[row * self.scales_per_row() + col / self.group_len()]
    }

    /// The values as stored, dequantized: q * scale (rows x k; in the rotated basis for
    /// [`Int8Scheme::Rot32`]).
    pub fn dequantize_stored(&self) -> Vec<f32> {
        (0..self.rows)
            .flat_map(|r| (0..self.k).map(move |c| self.q(r, c) as f32 * self.scale(r, c)))
            .collect()
    }

    /// Dequantized values in the original basis (rows x k): q * scale, rotated back for
    /// [`Int8Scheme::Rot32`].
    pub fn dequantize(&self) -> Vec<f32> {
        if self.scheme == Int8Scheme::PerRow {
            return self.dequantize_stored();
        }
        let mut out = Vec::with_capacity(self.rows * self.k);
        for r in 0..self.rows {
            let mut row = Vec::with_capacity(self.kp);
            for b in 0..self.kp / ROT_BLOCK {
                let mut v: [f32; ROT_BLOCK] = std::array::from_fn(|j| {
                    let c = b * ROT_BLOCK + j;
                    self.q(r, c) as f32 * self.scale(r, c)
                });
                hadamard32(&mut v);
                row.extend(v);
            }
            out.extend(&row[..self.k]);
        }
        out
    }

    /// Bytes as stored: the int8 values and the scales.
    pub fn bytes(&self) -> u64 {
        (self.words.len() * 4 + self.scales.len() * 4) as u64
    }
}
