//! How the KV cache stores keys and values: f32, or f16 (half the memory and the
//! attention's cache reads, each value rounded to the nearest f16 as it is stored). Shared
//! by the GPU model and its CPU twin, which rounds alike so the two stay comparable.

use crate::error::{LabError, Result};

/// Storage of the KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KvPrecision {
    /// 32-bit floats.
    #[default]
    F32,
    /// IEEE half floats, two per 32-bit word (no SHADER_F16 needed).
    F16,
}

impl KvPrecision {
    /// Name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            KvPrecision::F32 => "f32",
            KvPrecision::F16 => "f16",
        }
    }

    /// Parses `f32` or `f16`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(KvPrecision::F32),
            "f16" => Ok(KvPrecision::F16),
            _ => Err(LabError::UnknownName {
                kind: "KV cache precision",
                name: s.into(),
                expected: "f32, f16".into(),
            }),
        }
    }

    /// Bytes per stored value.
    pub fn bytes(self) -> usize {
        match self {
            KvPrecision::F32 => 4,
            KvPrecision::F16 => 2,
        }
    }

    /// A value as the cache holds it.
    pub fn round(self, v: f32) -> f32 {
        match self {
            KvPrecision::F32 => v,
            KvPrecision::F16 => half::f16::from_f32(v).to_f32(),
        }
    }
}
