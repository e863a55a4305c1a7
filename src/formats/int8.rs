//! Symmetric int8 quantization for W8A8: one scale per row (per output channel for
//! weights, per token for activations), q = round_half_away(x / s), s = amax / 127.
//!
//! The same arithmetic runs on the GPU (`shaders/quantize_rows_i8.wgsl`): s = amax / 127 in
//! f32, then x * (1 / s) rounded half away from zero, as ggml's `roundf` does. WGSL only
//! promises division to 2.5 ULP, so on some GPUs (an NVIDIA H100 here) the scale can differ
//! from the CPU's in its last bits and a value on a rounding boundary lands one step away.
//! The W8A8 kernel is therefore validated against the activations the GPU itself produced,
//! and the GPU quantizer against this one within one step. Rows are padded with zeros to `kp` values (a multiple
//! of 32) and packed four to a u32, element 0 in the lowest byte.

use serde::Serialize;

use crate::error::{LabError, Result};

/// Rows quantized to int8 with one f32 scale each.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Int8Rows {
    /// Rows.
    pub rows: usize,
    /// Values per row as given.
    pub k: usize,
    /// Values per row as stored (k padded to a multiple of 32).
    pub kp: usize,
    /// rows x kp / 4 words, four int8 per word.
    pub words: Vec<u32>,
    /// One scale per row: value = q * scale.
    pub scales: Vec<f32>,
}

/// Rounds half away from zero (C's `roundf`), exactly, for any finite f32.
pub fn round_half_away(v: f32) -> f32 {
    v.round()
}

/// Quantizes `x` (rows x k, finite) row by row.
pub fn quantize_rows(x: &[f32], rows: usize, k: usize) -> Result<Int8Rows> {
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
    let mut words = Vec::with_capacity(rows * kp / 4);
    let mut scales = Vec::with_capacity(rows);
    for r in 0..rows {
        let row = &x[r * k..(r + 1) * k];
        let amax = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let s = amax / 127.0;
        let inv = if s != 0.0 { 1.0 / s } else { 0.0 };
        let q = |i: usize| -> u8 {
            let v = if i < k { row[i] } else { 0.0 };
            round_half_away(v * inv) as i8 as u8
        };
        for w in 0..kp / 4 {
            words.push(u32::from_le_bytes([
                q(4 * w),
                q(4 * w + 1),
                q(4 * w + 2),
                q(4 * w + 3),
            ]));
        }
        scales.push(s);
    }
    Ok(Int8Rows {
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

    /// Dequantized values (rows x k): q * scale.
    pub fn dequantize(&self) -> Vec<f32> {
        (0..self.rows)
            .flat_map(|r| (0..self.k).map(move |c| self.q(r, c) as f32 * self.scales[r]))
            .collect()
    }

    /// Bytes as stored: the int8 values and the scales.
    pub fn bytes(&self) -> u64 {
        (self.words.len() * 4 + self.scales.len() * 4) as u64
    }
}
