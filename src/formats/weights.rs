//! Weight matrices (n x k, the `nn.Linear` layout) in every storage precision, in ggml's
//! byte layout on the host and repacked into 32-bit words for the GPU.
//!
//! GPU packing (`shaders/shared/weights_*.wgsl` decode it; keep in sync): kernels see rows
//! as blocks of 32 values, block `g = row * blocks_per_row + b`. Formats with blocks of 32
//! give block g words `g * WB .. (g + 1) * WB` of the `w` buffer; the K-quants give each
//! super-block of 256 (8 blocks) `SW` words. Scales live in the `s` buffer:
//!
//! | format | WB / SW | words of `w` hold                          | s buffer                    |
//! |--------|---------|-------------------------------------------|-----------------------------|
//! | f32    | 32      | the 32 values                             | unused                      |
//! | f16    | 16      | 2 values per word, first in the low half  | unused                      |
//! | bf16   | 16      | 2 values per word, first in the low half  | unused                      |
//! | q8_0   | 8       | ggml's 32 int8, 4 per word, byte 0 lowest | f16 `d`, 2 blocks per word  |
//! | q4_0   | 4       | ggml's 16 nibble bytes, byte 0 lowest     | f16 `d`, 2 blocks per word  |
//! | q4_1   | 4       | ggml's 16 nibble bytes, byte 0 lowest     | one word per block: d | m<<16 |
//! | q5_0   | 5       | ggml's 16 nibble bytes, then its `qh`     | f16 `d`, 2 blocks per word  |
//! | q4_k   | SW 35   | ggml's 128 nibble bytes, then 12 scale bytes | one word per super-block: d | dmin<<16 |
//! | q6_k   | SW 52   | ggml's ql (128 bytes), qh (64), scales (16) | f16 `d`, 2 super-blocks per word |
//!
//! The quantized blocks' bytes are ggml's own (the 2-byte scales moved out so the 32-bit
//! words align), so GPU bytes equal ggml's bytes: 34, 18, 20, 22 per 32 values, 144 and 210
//! per 256 (plus at most one padding half-word per buffer).

use half::{bf16, f16};
use serde::Serialize;

use crate::error::{LabError, Result};
use crate::formats::kquant::{self, BlockQ4K, BlockQ6K, QK_K};
use crate::formats::quant::{self, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ8_0, QK};
use crate::formats::quant_search::{self, Quantizer};

/// How weights are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightFormat {
    /// 32-bit float.
    F32,
    /// IEEE half.
    F16,
    /// bfloat16 (top half of an f32), round-to-nearest-even.
    Bf16,
    /// ggml Q8_0.
    Q8_0,
    /// ggml Q4_0.
    Q4_0,
    /// ggml Q4_1.
    Q4_1,
    /// ggml Q5_0 (llama.cpp's fallback for Q4_K rows that are not whole super-blocks).
    Q5_0,
    /// ggml Q4_K (super-blocks of 256), the bulk of llama.cpp's Q4_K_M files.
    Q4K,
    /// ggml Q6_K (super-blocks of 256).
    Q6K,
}

impl WeightFormat {
    /// Every format, in table order.
    pub const ALL: [WeightFormat; 9] = [
        WeightFormat::F32,
        WeightFormat::F16,
        WeightFormat::Bf16,
        WeightFormat::Q8_0,
        WeightFormat::Q4_0,
        WeightFormat::Q4_1,
        WeightFormat::Q5_0,
        WeightFormat::Q4K,
        WeightFormat::Q6K,
    ];

    /// Name as used on the command line and in shader modules.
    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::F32 => "f32",
            WeightFormat::F16 => "f16",
            WeightFormat::Bf16 => "bf16",
            WeightFormat::Q8_0 => "q8_0",
            WeightFormat::Q4_0 => "q4_0",
            WeightFormat::Q4_1 => "q4_1",
            WeightFormat::Q5_0 => "q5_0",
            WeightFormat::Q4K => "q4_k",
            WeightFormat::Q6K => "q6_k",
        }
    }

    /// Parses a format name.
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| LabError::UnknownName {
                kind: "weight format",
                name: s.into(),
                expected: Self::ALL.map(|f| f.name()).join(", "),
            })
    }

    /// Whether this is one of ggml's block-quantized formats.
    pub fn is_block_quantized(self) -> bool {
        !matches!(
            self,
            WeightFormat::F32 | WeightFormat::F16 | WeightFormat::Bf16
        )
    }

    /// Values per block of the format: 32, or 256 for the K-quants' super-blocks. Rows of
    /// a quantized format are whole blocks.
    pub fn block_values(self) -> usize {
        match self {
            WeightFormat::Q4K | WeightFormat::Q6K => QK_K,
            _ => QK,
        }
    }

    /// Bytes per block of [`WeightFormat::block_values`] values as stored (host and GPU).
    pub fn bytes_per_block(self) -> usize {
        match self {
            WeightFormat::F32 => 128,
            WeightFormat::F16 | WeightFormat::Bf16 => 64,
            WeightFormat::Q8_0 => 34,
            WeightFormat::Q4_0 => 18,
            WeightFormat::Q4_1 => 20,
            WeightFormat::Q5_0 => 22,
            WeightFormat::Q4K => 144,
            WeightFormat::Q6K => 210,
        }
    }

    /// Storage bits per weight (scales included).
    pub fn bits_per_weight(self) -> f64 {
        self.bytes_per_block() as f64 * 8.0 / self.block_values() as f64
    }

    /// The format rows of `k` values get when this one is asked for: itself when `k` is
    /// whole blocks, else llama.cpp's fallback for a super-block format (`llama-quantize`'s
    /// `tensor_type_fallback`: Q4_K -> Q5_0, Q6_K -> Q8_0), else itself (and encoding
    /// refuses the partial block).
    pub fn for_row_len(self, k: usize) -> WeightFormat {
        match self {
            _ if k.is_multiple_of(self.block_values()) => self,
            WeightFormat::Q4K => WeightFormat::Q5_0,
            WeightFormat::Q6K => WeightFormat::Q8_0,
            _ => self,
        }
    }

    /// Bytes of `values` weights (a whole number of blocks).
    pub fn bytes_for(self, values: usize) -> usize {
        values / self.block_values() * self.bytes_per_block()
    }
}

/// Encodes `values` (rows of `row_len`) in `format`, ggml's byte layout, no padding:
/// quantized formats need whole blocks per row.
pub fn encode_bytes(format: WeightFormat, values: &[f32], row_len: usize) -> Result<Vec<u8>> {
    encode_bytes_with(format, values, row_len, Quantizer::Reference, None)
}

/// [`encode_bytes`] with a choice of quantizer for Q4_0 and Q4_1 (see
/// `formats::quant_search`); `importance` (one weight per column, `row_len` long) is needed
/// by [`Quantizer::Imatrix`] and ignored otherwise. Q8_0 always uses ggml's reference rule:
/// its error is already ~0.4% of the weights' and a search buys almost nothing there (as in
/// llama.cpp); float formats have nothing to choose.
pub fn encode_bytes_with(
    format: WeightFormat,
    values: &[f32],
    row_len: usize,
    quantizer: Quantizer,
    importance: Option<&[f32]>,
) -> Result<Vec<u8>> {
    if row_len == 0 || !values.len().is_multiple_of(row_len) {
        return Err(LabError::Shape(format!(
            "{} values do not make rows of {row_len}",
            values.len()
        )));
    }
    let bv = format.block_values();
    if format.is_block_quantized() && !row_len.is_multiple_of(bv) {
        return Err(LabError::Shape(format!(
            "{}: rows of {row_len} values are not a multiple of the block size {bv}",
            format.name()
        )));
    }
    let quant = |e: quant::QuantError| LabError::Shape(format!("{}: {e}", format.name()));
    let searched = matches!(format, WeightFormat::Q4_0 | WeightFormat::Q4_1);
    let importance = match (quantizer, importance) {
        _ if !searched => None,
        (Quantizer::Reference, _) => None,
        (Quantizer::Rmse, _) => Some(None),
        (Quantizer::Imatrix, Some(imp)) if imp.len() == row_len => Some(Some(imp)),
        (Quantizer::Imatrix, imp) => {
            return Err(LabError::InvalidArgument(format!(
                "imatrix quantizer: needs one importance value per column ({row_len}), got {}",
                imp.map_or(0, |i| i.len())
            )))
        }
    };
    Ok(match format {
        WeightFormat::F32 => bytemuck::cast_slice(values).to_vec(),
        WeightFormat::F16 => values
            .iter()
            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
            .collect(),
        WeightFormat::Bf16 => values
            .iter()
            .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
            .collect(),
        WeightFormat::Q8_0 => {
            bytemuck::cast_slice(&quant::quantize_q8_0(values).map_err(quant)?).to_vec()
        }
        WeightFormat::Q4_0 => bytemuck::cast_slice(
            &match importance {
                None => quant::quantize_q4_0(values),
                Some(imp) => quant_search::quantize_q4_0_search(values, imp),
            }
            .map_err(quant)?,
        )
        .to_vec(),
        WeightFormat::Q4_1 => bytemuck::cast_slice(
            &match importance {
                None => quant::quantize_q4_1(values),
                Some(imp) => quant_search::quantize_q4_1_search(values, imp),
            }
            .map_err(quant)?,
        )
        .to_vec(),
        WeightFormat::Q5_0 => {
            bytemuck::cast_slice(&quant::quantize_q5_0(values).map_err(quant)?).to_vec()
        }
        WeightFormat::Q4K => {
            bytemuck::cast_slice(&kquant::quantize_q4_k(values).map_err(quant)?).to_vec()
        }
        WeightFormat::Q6K => {
            bytemuck::cast_slice(&kquant::quantize_q6_k(values).map_err(quant)?).to_vec()
        }
    })
}

/// Decodes bytes in ggml's layout to f32 (ggml's dequantization; exact for floats).
pub fn decode_bytes(format: WeightFormat, b: &[u8]) -> Vec<f32> {
    match format {
        WeightFormat::F32 => bytemuck::pod_collect_to_vec(b),
        WeightFormat::F16 => b
            .chunks_exact(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        WeightFormat::Bf16 => b
            .chunks_exact(2)
            .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        WeightFormat::Q8_0 => {
            quant::dequantize_q8_0(&bytemuck::pod_collect_to_vec::<u8, BlockQ8_0>(b))
        }
        WeightFormat::Q4_0 => {
            quant::dequantize_q4_0(&bytemuck::pod_collect_to_vec::<u8, BlockQ4_0>(b))
        }
        WeightFormat::Q4_1 => {
            quant::dequantize_q4_1(&bytemuck::pod_collect_to_vec::<u8, BlockQ4_1>(b))
        }
        WeightFormat::Q5_0 => {
            quant::dequantize_q5_0(&bytemuck::pod_collect_to_vec::<u8, BlockQ5_0>(b))
        }
        WeightFormat::Q4K => {
            kquant::dequantize_q4_k(&bytemuck::pod_collect_to_vec::<u8, BlockQ4K>(b))
        }
        WeightFormat::Q6K => {
            kquant::dequantize_q6_k(&bytemuck::pod_collect_to_vec::<u8, BlockQ6K>(b))
        }
    }
}

/// Decodes one block ([`WeightFormat::block_values`] values from ggml's layout,
/// [`WeightFormat::bytes_per_block`] bytes) into `out`, without allocating; the same
/// arithmetic as [`decode_bytes`].
pub fn decode_block(format: WeightFormat, b: &[u8], out: &mut [f32]) {
    let h = |i: usize| f16::from_le_bytes([b[i], b[i + 1]]).to_f32();
    match format {
        WeightFormat::F32 => {
            for (i, o) in out.iter_mut().enumerate() {
                *o = f32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
            }
        }
        WeightFormat::F16 => {
            for (i, o) in out.iter_mut().enumerate() {
                *o = h(2 * i);
            }
        }
        WeightFormat::Bf16 => {
            for (i, o) in out.iter_mut().enumerate() {
                *o = bf16::from_le_bytes([b[2 * i], b[2 * i + 1]]).to_f32();
            }
        }
        WeightFormat::Q8_0 => {
            let d = h(0);
            for (i, o) in out.iter_mut().enumerate() {
                *o = d * (b[2 + i] as i8) as f32;
            }
        }
        WeightFormat::Q4_0 => {
            let d = h(0);
            for j in 0..QK / 2 {
                out[j] = d * ((b[2 + j] & 0x0F) as i32 - 8) as f32;
                out[j + QK / 2] = d * ((b[2 + j] >> 4) as i32 - 8) as f32;
            }
        }
        WeightFormat::Q4_1 => {
            let (d, m) = (h(0), h(2));
            for j in 0..QK / 2 {
                out[j] = d * (b[4 + j] & 0x0F) as f32 + m;
                out[j + QK / 2] = d * (b[4 + j] >> 4) as f32 + m;
            }
        }
        WeightFormat::Q5_0 => {
            out.copy_from_slice(&quant::dequantize_q5_0(&[bytemuck::pod_read_unaligned(b)]))
        }
        WeightFormat::Q4K => kquant::dequantize_q4_k_block(&bytemuck::pod_read_unaligned(b), out),
        WeightFormat::Q6K => kquant::dequantize_q6_k_block(&bytemuck::pod_read_unaligned(b), out),
    }
}

/// An n x k weight matrix in one format, rows of `k` values (k a multiple of 32, and of the
/// format's block), each row stored as ggml stores it: blocks of
/// [`WeightFormat::bytes_per_block`] bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    /// Storage format.
    pub format: WeightFormat,
    /// Rows (output features).
    pub n: usize,
    /// Columns (input features), a multiple of 32.
    pub k: usize,
    /// Row-major bytes, ggml's layout.
    pub bytes: Vec<u8>,
}

impl Weights {
    /// Encodes an n x k f32 matrix. Float formats pad each row with zeros to a multiple of
    /// 32 (exact: zeros add nothing to a dot product); quantized formats refuse a `k` that
    /// is not a whole number of blocks, since ggml's formats have no partial blocks.
    pub fn encode(format: WeightFormat, n: usize, k: usize, w: &[f32]) -> Result<Self> {
        Self::encode_with(format, n, k, w, Quantizer::Reference, None)
    }

    /// [`Weights::encode`] with a choice of quantizer; `importance` (k values) as in
    /// [`encode_bytes_with`].
    pub fn encode_with(
        format: WeightFormat,
        n: usize,
        k: usize,
        w: &[f32],
        quantizer: Quantizer,
        importance: Option<&[f32]>,
    ) -> Result<Self> {
        if n == 0 || k == 0 || w.len() != n * k {
            return Err(LabError::Shape(format!(
                "weights: {} values for n={n} x k={k}",
                w.len()
            )));
        }
        let kp = k.div_ceil(QK) * QK;
        let bv = format.block_values();
        if format.is_block_quantized() && !k.is_multiple_of(bv) {
            return Err(LabError::Shape(format!(
                "{}: k = {k} is not a multiple of the block size {bv}",
                format.name()
            )));
        }
        let padded;
        let values = if kp == k {
            w
        } else {
            padded = (0..n)
                .flat_map(|r| {
                    w[r * k..(r + 1) * k]
                        .iter()
                        .copied()
                        .chain(std::iter::repeat_n(0.0, kp - k))
                })
                .collect::<Vec<f32>>();
            &padded
        };
        let bytes = encode_bytes_with(format, values, kp, quantizer, importance)?;
        Ok(Self {
            format,
            n,
            k: kp,
            bytes,
        })
    }

    /// Wraps bytes already in ggml's layout (e.g. from a GGUF file), checking their count.
    pub fn from_bytes(format: WeightFormat, n: usize, k: usize, bytes: Vec<u8>) -> Result<Self> {
        let bv = format.block_values().max(QK);
        if !k.is_multiple_of(bv) {
            return Err(LabError::Shape(format!(
                "{}: rows of {k} values are not whole blocks of {bv}",
                format.name()
            )));
        }
        let want = format.bytes_for(n * k);
        if bytes.len() != want {
            return Err(LabError::Shape(format!(
                "{} {n}x{k} needs {want} bytes, got {}",
                format.name(),
                bytes.len()
            )));
        }
        Ok(Self {
            format,
            n,
            k,
            bytes,
        })
    }

    /// Blocks of 32 per row (the kernels' unit, also for the K-quants' super-blocks).
    pub fn blocks_per_row(&self) -> usize {
        self.k / QK
    }

    /// The exact f32 values the GPU computes with (ggml's dequantization).
    pub fn dequantize(&self) -> Vec<f32> {
        decode_bytes(self.format, &self.bytes)
    }

    /// The first `k` decoded values of each row (n x k): the matrix as given to
    /// [`Weights::encode`], without the zero padding to whole blocks.
    pub fn dequantize_cols(&self, k: usize) -> Vec<f32> {
        let full = self.dequantize();
        (0..self.n)
            .flat_map(|r| full[r * self.k..r * self.k + k.min(self.k)].iter().copied())
            .collect()
    }

    /// The GPU packing: (`w` words, `s` words), see the module table. `w` is padded with
    /// zeros to whole 16 bytes (kernels may also bind it as vec4s).
    pub fn gpu_words(&self) -> (Vec<u32>, Vec<u32>) {
        let (mut w, s) = self.gpu_words_unpadded();
        w.resize(w.len().div_ceil(4) * 4, 0);
        (w, s)
    }

    fn gpu_words_unpadded(&self) -> (Vec<u32>, Vec<u32>) {
        let bpb = self.format.bytes_per_block();
        let words = |bytes: &[u8]| -> Vec<u32> {
            bytes
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        };
        match self.format {
            WeightFormat::F32 | WeightFormat::F16 | WeightFormat::Bf16 => {
                (words(&self.bytes), vec![0])
            }
            WeightFormat::Q8_0 | WeightFormat::Q4_0 | WeightFormat::Q5_0 => {
                // Q5_0's qh (bytes 2..6) moves behind the nibbles: 4 nibble words, then qh.
                let mut w = Vec::new();
                let mut halves = Vec::new();
                for blk in self.bytes.chunks_exact(bpb) {
                    halves.push(u16::from_le_bytes([blk[0], blk[1]]));
                    if self.format == WeightFormat::Q5_0 {
                        w.extend(words(&blk[6..]));
                        w.extend(words(&blk[2..6]));
                    } else {
                        w.extend(words(&blk[2..]));
                    }
                }
                (w, pair_halves(&halves))
            }
            WeightFormat::Q4K => {
                // d | dmin << 16 to `s`; nibbles (bytes 16..144) then scales (4..16) to `w`.
                let mut w = Vec::new();
                let mut s = Vec::new();
                for blk in self.bytes.chunks_exact(bpb) {
                    s.push(u32::from_le_bytes([blk[0], blk[1], blk[2], blk[3]]));
                    w.extend(words(&blk[16..]));
                    w.extend(words(&blk[4..16]));
                }
                (w, s)
            }
            WeightFormat::Q6K => {
                // ql, qh, scales (bytes 0..208) to `w`; d (208..210) to `s`.
                let mut w = Vec::new();
                let mut halves = Vec::new();
                for blk in self.bytes.chunks_exact(bpb) {
                    w.extend(words(&blk[..208]));
                    halves.push(u16::from_le_bytes([blk[208], blk[209]]));
                }
                (w, pair_halves(&halves))
            }
            WeightFormat::Q4_1 => {
                let mut w = Vec::new();
                let mut s = Vec::new();
                for blk in self.bytes.chunks_exact(bpb) {
                    s.push(u32::from_le_bytes([blk[0], blk[1], blk[2], blk[3]]));
                    w.extend(words(&blk[4..]));
                }
                (w, s)
            }
        }
    }
}

/// Packs f16 bit patterns two per word, the even one in the low half.
fn pair_halves(halves: &[u16]) -> Vec<u32> {
    halves
        .chunks(2)
        .map(|p| p[0] as u32 | (p.get(1).copied().unwrap_or(0) as u32) << 16)
        .collect()
}
