//! The precision vocabulary shared by every layer: how weights (and possibly activations)
//! are stored and what a kernel accumulates in. Kernels, CPU twins, models and benchmarks
//! all name precisions with [`Precision`].

use serde::Serialize;

use crate::error::{LabError, Result};
use crate::formats::int8::Int8Scheme;
use crate::formats::weights::WeightFormat;

/// A precision: how weights (and possibly activations) are stored and
/// what the kernel accumulates in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// f32 activations, weights in this format, f32 accumulation (`matmul_wq`).
    Weights(WeightFormat),
    /// f16 activations and weights, f16 accumulation (`matmul_f16acc`, SHADER_F16).
    F16Acc,
    /// W8A8: int8 weights per channel, int8 activations per row, i32 accumulation.
    Int8,
    /// W8A8 with Hadamard-rotated 32-value blocks, a scale per block for weights and
    /// activations (`formats::int8::Int8Scheme::Rot32`): the accurate int8.
    Int8Rot,
}

impl Precision {
    /// Every precision, in table order.
    pub const ALL: [Precision; 12] = [
        Precision::Weights(WeightFormat::F32),
        Precision::Weights(WeightFormat::F16),
        Precision::F16Acc,
        Precision::Weights(WeightFormat::Bf16),
        Precision::Int8,
        Precision::Int8Rot,
        Precision::Weights(WeightFormat::Q8_0),
        Precision::Weights(WeightFormat::Q4_0),
        Precision::Weights(WeightFormat::Q4_1),
        Precision::Weights(WeightFormat::Q5_0),
        Precision::Weights(WeightFormat::Q4K),
        Precision::Weights(WeightFormat::Q6K),
    ];

    /// Name on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Weights(f) => f.name(),
            Precision::F16Acc => "f16acc",
            Precision::Int8 => "int8",
            Precision::Int8Rot => "int8rot",
        }
    }

    /// The int8 scheme of a W8A8 precision.
    pub fn int8_scheme(self) -> Option<Int8Scheme> {
        match self {
            Precision::Int8 => Some(Int8Scheme::PerRow),
            Precision::Int8Rot => Some(Int8Scheme::Rot32),
            _ => None,
        }
    }

    /// Parses one name, or `all`.
    pub fn parse_list(s: &str) -> Result<Vec<Precision>> {
        if s == "all" {
            return Ok(Self::ALL.to_vec());
        }
        s.split(',')
            .map(|name| {
                Self::ALL
                    .into_iter()
                    .find(|p| p.name() == name)
                    .ok_or_else(|| LabError::UnknownName {
                        kind: "precision",
                        name: name.into(),
                        expected: format!("{}, all", Self::ALL.map(|p| p.name()).join(", ")),
                    })
            })
            .collect()
    }
}
