//! Sparsity patterns and the N:M-compressed weight layout (issue 23).
//!
//! A weight matrix is n rows (outputs) of k values along the reduction axis. An N:M
//! pattern keeps exactly N of every M consecutive values of a row (a *group*). The
//! compressed layout stores, per row:
//!
//! - the kept values in order, `k / M * N` of them, padded with zeros to whole blocks of the
//!   storage format, and encoded in that format ([`Weights`]): a quantized format's blocks
//!   (and scales) are computed over the kept values only;
//! - a mask per group: M bits, bit j set when the group's value j is kept, in fields of
//!   [`NmPattern::field_bits`] bits (4 for M <= 4, 8 for M <= 8), fields packed from the
//!   low bits of 32-bit words, each row starting on a new word.
//!
//! So the bits per weight are `b N / M + field / M` (b the dense format's bits per weight),
//! plus row padding: 2:4 and 4:8 cost 1 bit of metadata per dense weight.
//!
//! Unstructured sparsity (a fraction of each row) has no compressed layout here: it is
//! measured for accuracy only, as dense weights with zeros.

use serde::Serialize;

use crate::error::{LabError, Result};
use crate::formats::quant::QK;
use crate::formats::weights::{WeightFormat, Weights};

/// Keep N of every M consecutive weights along k (1 <= N < M <= 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct NmPattern {
    /// Values kept per group.
    pub n: u32,
    /// Group length.
    pub m: u32,
}

impl NmPattern {
    /// The pattern N:M, refused unless 1 <= N < M <= 8.
    pub fn new(n: u32, m: u32) -> Result<Self> {
        if n == 0 || n >= m || m > 8 {
            return Err(LabError::InvalidArgument(format!(
                "sparsity {n}:{m}: an N:M pattern keeps N < M of every M <= 8 weights, N >= 1"
            )));
        }
        Ok(Self { n, m })
    }

    /// Bits of a group's mask field: 4 when M <= 4, else 8 (fields never straddle words).
    pub fn field_bits(self) -> u32 {
        if self.m <= 4 {
            4
        } else {
            8
        }
    }

    /// Mask fields per 32-bit word.
    pub fn fields_per_word(self) -> u32 {
        32 / self.field_bits()
    }

    /// Fraction of weights removed.
    pub fn sparsity(self) -> f64 {
        1.0 - self.n as f64 / self.m as f64
    }

    /// Checks that rows of `k` values are whole groups.
    pub fn check_k(self, k: usize) -> Result<()> {
        if k == 0 || !k.is_multiple_of(self.m as usize) {
            return Err(LabError::Shape(format!(
                "sparsity {self}: rows of k = {k} values are not whole groups of {}",
                self.m
            )));
        }
        Ok(())
    }
}

impl std::fmt::Display for NmPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.n, self.m)
    }
}

/// How a weight matrix is sparsified: the `--sparsity` vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sparsity {
    /// No pruning.
    Dense,
    /// N of every M along k: stored compressed, run by the sparse kernels.
    Nm(NmPattern),
    /// This percentage of each row removed, anywhere: accuracy only (dense storage).
    Unstructured {
        /// Percent of each row pruned, 1..=99.
        percent: u32,
    },
}

impl Sparsity {
    /// The named patterns: the mild 6:8, 4:8 and 2:4.
    pub const NAMED: [Sparsity; 3] = [
        Sparsity::Nm(NmPattern { n: 6, m: 8 }),
        Sparsity::Nm(NmPattern { n: 4, m: 8 }),
        Sparsity::Nm(NmPattern { n: 2, m: 4 }),
    ];

    /// Parses `dense`, `N:M` or `u<percent>` (e.g. `u50`).
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if s == "dense" {
            return Ok(Sparsity::Dense);
        }
        if let Some((n, m)) = s.split_once(':') {
            let (Ok(n), Ok(m)) = (n.parse::<u32>(), m.parse::<u32>()) else {
                return Err(bad_sparsity(s));
            };
            return Ok(Sparsity::Nm(NmPattern::new(n, m)?));
        }
        if let Some(p) = s.strip_prefix('u') {
            let percent: u32 = p.parse().map_err(|_| bad_sparsity(s))?;
            if !(1..=99).contains(&percent) {
                return Err(LabError::InvalidArgument(format!(
                    "sparsity {s}: an unstructured percentage is 1..=99"
                )));
            }
            return Ok(Sparsity::Unstructured { percent });
        }
        Err(bad_sparsity(s))
    }

    /// Parses a comma list.
    pub fn parse_list(s: &str) -> Result<Vec<Self>> {
        s.split(',').map(Sparsity::parse).collect()
    }

    /// Fraction of weights removed.
    pub fn fraction(self) -> f64 {
        match self {
            Sparsity::Dense => 0.0,
            Sparsity::Nm(p) => p.sparsity(),
            Sparsity::Unstructured { percent } => percent as f64 / 100.0,
        }
    }

    /// The N:M pattern, when it is one.
    pub fn pattern(self) -> Option<NmPattern> {
        match self {
            Sparsity::Nm(p) => Some(p),
            _ => None,
        }
    }
}

impl std::fmt::Display for Sparsity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sparsity::Dense => write!(f, "dense"),
            Sparsity::Nm(p) => write!(f, "{p}"),
            Sparsity::Unstructured { percent } => write!(f, "u{percent}"),
        }
    }
}

impl Serialize for Sparsity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

fn bad_sparsity(s: &str) -> LabError {
    LabError::InvalidArgument(format!(
        "sparsity {s:?}: expected dense, N:M (e.g. 2:4, 4:8, 6:8) or u<percent> (e.g. u50)"
    ))
}

/// Whether the sparse kernels read `format`: the formats with blocks of 32 values (the
/// K-quants' super-blocks of 256 would pad every short row of kept values to 256).
pub fn has_sparse_kernel(format: WeightFormat) -> bool {
    format.block_values() == QK
}

/// An n x k weight matrix in the N:M-compressed layout (module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct SparseWeights {
    /// The pattern every group follows.
    pub pattern: NmPattern,
    /// Rows.
    pub n: usize,
    /// Dense values per row (a multiple of M).
    pub k: usize,
    /// The kept values: n rows of `kept_per_row` values padded to whole blocks.
    pub kept: Weights,
    /// Group masks, `mask_words_per_row` words per row.
    pub masks: Vec<u32>,
}

impl SparseWeights {
    /// Compresses the dense n x k matrix `w` keeping the values where `keep` is true;
    /// every group of M along a row must keep exactly N.
    pub fn compress(
        format: WeightFormat,
        pattern: NmPattern,
        n: usize,
        k: usize,
        w: &[f32],
        keep: &[bool],
    ) -> Result<Self> {
        if !has_sparse_kernel(format) {
            return Err(LabError::InvalidArgument(format!(
                "{}: no N:M-sparse layout (its blocks of {} values would pad short rows)",
                format.name(),
                format.block_values()
            )));
        }
        pattern.check_k(k)?;
        if n == 0 || w.len() != n * k || keep.len() != n * k {
            return Err(LabError::Shape(format!(
                "sparse weights: {} values and {} mask entries for n={n} x k={k}",
                w.len(),
                keep.len()
            )));
        }
        let m = pattern.m as usize;
        let groups = k / m;
        let per_row = groups * pattern.n as usize;
        let kp = per_row.div_ceil(QK) * QK;
        let wpr = groups.div_ceil(pattern.fields_per_word() as usize);
        let fb = pattern.field_bits();
        let fpw = pattern.fields_per_word() as usize;
        let mut kept = vec![0f32; n * kp];
        let mut masks = vec![0u32; n * wpr];
        for r in 0..n {
            let mut j = 0;
            for g in 0..groups {
                let mut bits = 0u32;
                for i in 0..m {
                    let at = r * k + g * m + i;
                    if keep[at] {
                        bits |= 1 << i;
                        if j < per_row {
                            kept[r * kp + j] = w[at];
                        }
                        j += 1;
                    }
                }
                if bits.count_ones() != pattern.n {
                    return Err(LabError::InvalidArgument(format!(
                        "sparse weights: row {r}, group {g} keeps {} of {m}, the pattern {pattern} \
                         keeps {}",
                        bits.count_ones(),
                        pattern.n
                    )));
                }
                masks[r * wpr + g / fpw] |= bits << ((g % fpw) as u32 * fb);
            }
        }
        let kept = Weights::encode(format, n, kp, &kept)?;
        Ok(Self {
            pattern,
            n,
            k,
            kept,
            masks,
        })
    }

    /// The rows of `parts` one after another, as one matrix (matrices that read the same
    /// input, e.g. Q|K|V, run as one product). They must share the pattern, the width and
    /// the kept values' format.
    pub fn stack(parts: &[&SparseWeights]) -> Result<Self> {
        let Some(first) = parts.first() else {
            return Err(LabError::Shape("no sparse matrices to stack".into()));
        };
        if parts.iter().any(|p| {
            p.pattern != first.pattern || p.k != first.k || p.kept.format != first.kept.format
        }) {
            return Err(LabError::Shape(
                "stacked sparse matrices differ in pattern, width or format".into(),
            ));
        }
        Ok(SparseWeights {
            pattern: first.pattern,
            n: parts.iter().map(|p| p.n).sum(),
            k: first.k,
            kept: Weights {
                format: first.kept.format,
                n: parts.iter().map(|p| p.kept.n).sum(),
                k: first.kept.k,
                bytes: parts
                    .iter()
                    .flat_map(|p| p.kept.bytes.iter().copied())
                    .collect(),
            },
            masks: parts.iter().flat_map(|p| p.masks.iter().copied()).collect(),
        })
    }

    /// The matrix's pattern and sizes without its values or masks (what a kernel's
    /// parameter block needs, kept after the values went to the GPU).
    pub fn shape(&self) -> SparseWeights {
        SparseWeights {
            pattern: self.pattern,
            n: self.n,
            k: self.k,
            kept: Weights {
                format: self.kept.format,
                n: self.kept.n,
                k: self.kept.k,
                bytes: Vec::new(),
            },
            masks: Vec::new(),
        }
    }

    /// Groups per row.
    pub fn groups(&self) -> usize {
        self.k / self.pattern.m as usize
    }

    /// Kept values per row (before padding).
    pub fn kept_per_row(&self) -> usize {
        self.groups() * self.pattern.n as usize
    }

    /// Mask words per row.
    pub fn mask_words_per_row(&self) -> usize {
        self.groups()
            .div_ceil(self.pattern.fields_per_word() as usize)
    }

    /// The mask of row `r`'s group `g` (bit j: value j of the group kept).
    pub fn mask(&self, r: usize, g: usize) -> u32 {
        let fpw = self.pattern.fields_per_word() as usize;
        let word = self.masks[r * self.mask_words_per_row() + g / fpw];
        let fb = self.pattern.field_bits();
        (word >> ((g % fpw) as u32 * fb)) & ((1 << fb) - 1)
    }

    /// Bytes as stored: the kept values' format bytes plus the masks.
    pub fn bytes(&self) -> usize {
        self.kept.bytes.len() + self.masks.len() * 4
    }

    /// Storage bits per dense weight.
    pub fn bits_per_weight(&self) -> f64 {
        self.bytes() as f64 * 8.0 / (self.n * self.k) as f64
    }

    /// The dense n x k matrix the sparse kernels compute with: each kept value as its format
    /// decodes it (ggml's dequantization), zeros elsewhere. The CPU twin's input, so a
    /// comparison measures the kernel's error apart from pruning and quantization.
    pub fn densify(&self) -> Vec<f32> {
        let kept = self.kept.dequantize();
        let kp = self.kept.k;
        let m = self.pattern.m as usize;
        let mut out = vec![0f32; self.n * self.k];
        for r in 0..self.n {
            let mut j = 0;
            for g in 0..self.groups() {
                let bits = self.mask(r, g);
                for i in 0..m {
                    if bits & (1 << i) != 0 {
                        out[r * self.k + g * m + i] = kept[r * kp + j];
                        j += 1;
                    }
                }
            }
        }
        out
    }
}

/// Predicted storage bits per weight of `format` under `sparsity` for rows of `k` values
/// (the README's table; [`SparseWeights::bits_per_weight`] is the measured one).
pub fn predicted_bits_per_weight(format: WeightFormat, sparsity: Sparsity, k: usize) -> f64 {
    match sparsity {
        Sparsity::Nm(p) => {
            let groups = k / p.m as usize;
            let kept = (groups * p.n as usize).div_ceil(QK) * QK;
            let words = groups.div_ceil(p.fields_per_word() as usize);
            (format.bytes_for(kept) * 8 + words * 32) as f64 / k as f64
        }
        _ => format.bits_per_weight(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        for s in ["dense", "2:4", "4:8", "6:8", "1:2", "7:8", "u50", "u25"] {
            assert_eq!(Sparsity::parse(s).unwrap().to_string(), s);
        }
        for bad in ["4:4", "5:4", "0:4", "2:9", "u0", "u100", "x", "2:", "half"] {
            assert!(Sparsity::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn compress_round_trips_the_kept_values() {
        let p = NmPattern::new(2, 4).unwrap();
        let (n, k) = (3, 12);
        let w: Vec<f32> = (0..n * k).map(|i| i as f32 + 1.0).collect();
        let keep: Vec<bool> = (0..n * k).map(|i| matches!(i % 4, 1 | 2)).collect();
        let s = SparseWeights::compress(WeightFormat::F32, p, n, k, &w, &keep).unwrap();
        let d = s.densify();
        for i in 0..n * k {
            assert_eq!(d[i], if keep[i] { w[i] } else { 0.0 });
        }
        assert_eq!(s.mask(1, 2), 0b0110);
        let mut bad = keep.clone();
        bad[0] = true;
        assert!(SparseWeights::compress(WeightFormat::F32, p, n, k, &w, &bad).is_err());
        assert!(SparseWeights::compress(WeightFormat::Q4K, p, n, k, &w, &keep).is_err());
    }
}
