//! The kernel contract: for each op the lab can validate, the bindings, the uniform's fields
//! and the storage layout a user's WGSL kernel must follow. It is the layout the built-in
//! kernels use (`shaders/shared/matmul_params.wgsl`, `matmul_wq_params.wgsl`,
//! `int8_params.wgsl`), written down once; docs/kernel-lab.md explains it with the examples
//! in `examples/kernels/`.

use serde::Serialize;

use crate::error::{LabError, Result};
use crate::formats::weights::WeightFormat;
use crate::kernels::matmul::Layout;

/// An operation a user's kernel implements. Every op is a matmul C (m x n) = A (m x k) x B;
/// m = 1 is the GEMV of the same op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// f32: B is k x n, row-major.
    MatmulNn,
    /// B is W, n x k (the `nn.Linear` layout), stored as `precision`: f32 through the f32
    /// bindings, every other format through the weight-format bindings.
    MatmulNt {
        /// How W is stored.
        precision: WeightFormat,
    },
    /// W8A8: int8 activations (a scale per row) times int8 weights (a scale per row of W).
    MatmulI8,
}

/// The element type a storage binding holds (any vector of it is accepted too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Elem {
    /// `f32`.
    F32,
    /// `u32` (packed words).
    U32,
}

impl Elem {
    /// The WGSL scalar name.
    pub fn wgsl(self) -> &'static str {
        match self {
            Elem::F32 => "f32",
            Elem::U32 => "u32",
        }
    }
}

/// What one binding of group 0 must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Slot {
    /// `var<uniform>` of a struct of `u32` fields, named in order (a prefix may be declared).
    Uniform(&'static [&'static str]),
    /// `var<storage, read>` of an array of `Elem` (or of vectors of it).
    Read(Elem),
    /// `var<storage, read_write>` of an array of `Elem` (or of vectors of it): the output.
    Write(Elem),
}

/// One binding of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BindingContract {
    /// The name the examples give it.
    pub name: &'static str,
    /// Its address space and element type.
    pub slot: Slot,
    /// What it holds, for error messages and the docs.
    pub holds: &'static str,
}

/// Fields of the f32 ops' uniform (`MatmulParams`).
pub const MATMUL_FIELDS: &[&str] = &["m", "n", "k", "tiles_n", "tiles", "lda", "ldb", "_pad"];
/// Fields of the weight formats' uniform (`WqParams`).
pub const WQ_FIELDS: &[&str] = &["m", "n", "kp", "nblk", "tiles_n", "tiles", "ldc", "col0"];
/// Fields of the int8 op's uniform (`I8Params`).
pub const I8_FIELDS: &[&str] = &["m", "n", "k", "kp", "tiles_n", "tiles", "_pad0", "_pad1"];

/// Bytes of every op's uniform: eight `u32`.
pub const UNIFORM_BYTES: u64 = 32;

impl Op {
    /// Every op name `--op` takes.
    pub const NAMES: [&'static str; 3] = ["matmul_nn", "matmul_nt", "matmul_i8"];

    /// Parses an op name and precision (`f32` for the f32 ops, a weight format for
    /// `matmul_nt`, `int8` for `matmul_i8`; `None` takes the op's only or first one).
    pub fn parse(op: &str, precision: Option<&str>) -> Result<Self> {
        let bad = |p: &str, expected: String| LabError::UnknownName {
            kind: "precision for this op",
            name: p.into(),
            expected,
        };
        match op {
            "matmul_nn" => match precision {
                None | Some("f32") => Ok(Op::MatmulNn),
                Some(p) => Err(bad(p, "f32".into())),
            },
            "matmul_nt" => Ok(Op::MatmulNt {
                precision: match precision {
                    None => WeightFormat::F32,
                    Some(p) => WeightFormat::parse(p)
                        .map_err(|_| bad(p, WeightFormat::ALL.map(|f| f.name()).join(", ")))?,
                },
            }),
            "matmul_i8" => match precision {
                None | Some("int8") => Ok(Op::MatmulI8),
                Some(p) => Err(bad(p, "int8".into())),
            },
            _ => Err(LabError::UnknownName {
                kind: "op",
                name: op.into(),
                expected: Self::NAMES.join(", "),
            }),
        }
    }

    /// The op's name (`matmul_nn`, `matmul_nt`, `matmul_i8`).
    pub fn name(&self) -> &'static str {
        match self {
            Op::MatmulNn => "matmul_nn",
            Op::MatmulNt { .. } => "matmul_nt",
            Op::MatmulI8 => "matmul_i8",
        }
    }

    /// The precision's name (`f32`, a weight format, `int8`).
    pub fn precision(&self) -> &'static str {
        match self {
            Op::MatmulNn => "f32",
            Op::MatmulNt { precision } => precision.name(),
            Op::MatmulI8 => "int8",
        }
    }

    /// `op/precision`, as tables and the tune cache name it.
    pub fn label(&self) -> String {
        format!("{}/{}", self.name(), self.precision())
    }

    /// The layout of B for the f32 ops (the f32 bindings, and the built-in f32 GEMM they are
    /// compared with); None for the weight formats and int8.
    pub fn f32_layout(&self) -> Option<Layout> {
        match self {
            Op::MatmulNn => Some(Layout::Nn),
            Op::MatmulNt {
                precision: WeightFormat::F32,
            } => Some(Layout::Nt),
            _ => None,
        }
    }

    /// Whether the op uses the weight formats' bindings (W in blocks of 32 words + scales).
    pub fn is_weight_format(&self) -> bool {
        matches!(self, Op::MatmulNt { precision } if *precision != WeightFormat::F32)
    }

    /// The values k is padded to (with zeros, in A and W alike) before the kernel sees it:
    /// 4 for the f32 ops (so rows can be read as vec4), the format's block for the
    /// weight formats (32, or 256 for the K-quants), 32 for int8.
    pub fn k_align(&self) -> usize {
        match self {
            Op::MatmulNn => 4,
            Op::MatmulNt { precision } if *precision == WeightFormat::F32 => 4,
            Op::MatmulNt { precision } => precision.block_values(),
            Op::MatmulI8 => 32,
        }
    }

    /// Group 0's bindings, in order.
    pub fn bindings(&self) -> Vec<BindingContract> {
        let b = |name, slot, holds| BindingContract { name, slot, holds };
        match self {
            Op::MatmulNn
            | Op::MatmulNt {
                precision: WeightFormat::F32,
            } => vec![
                b("p", Slot::Uniform(MATMUL_FIELDS), "MatmulParams"),
                b("a", Slot::Read(Elem::F32), "A, m rows of lda floats"),
                b(
                    "b",
                    Slot::Read(Elem::F32),
                    if *self == Op::MatmulNn {
                        "B, k rows of ldb floats"
                    } else {
                        "B, n rows of ldb floats"
                    },
                ),
                b("c", Slot::Write(Elem::F32), "C, m rows of n floats"),
            ],
            Op::MatmulNt { .. } => vec![
                b("p", Slot::Uniform(WQ_FIELDS), "WqParams"),
                b("a", Slot::Read(Elem::F32), "A, m rows of kp floats"),
                b("w", Slot::Read(Elem::U32), "W's blocks as 32-bit words"),
                b(
                    "s",
                    Slot::Read(Elem::U32),
                    "W's block scales as 32-bit words",
                ),
                b("c", Slot::Write(Elem::F32), "C, m rows of ldc floats"),
            ],
            Op::MatmulI8 => vec![
                b("p", Slot::Uniform(I8_FIELDS), "I8Params"),
                b(
                    "aq",
                    Slot::Read(Elem::U32),
                    "A as int8, m rows of kp / 4 words",
                ),
                b("sa", Slot::Read(Elem::F32), "A's scale per row"),
                b(
                    "wq",
                    Slot::Read(Elem::U32),
                    "W as int8, n rows of kp / 4 words",
                ),
                b("sw", Slot::Read(Elem::F32), "W's scale per row"),
                b("c", Slot::Write(Elem::F32), "C, m rows of n floats"),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_parse_with_and_without_a_precision() {
        assert_eq!(Op::parse("matmul_nn", None).unwrap(), Op::MatmulNn);
        assert_eq!(
            Op::parse("matmul_nt", Some("q4_k")).unwrap(),
            Op::MatmulNt {
                precision: WeightFormat::Q4K
            }
        );
        assert!(Op::parse("matmul_nn", Some("q4_0")).is_err());
        assert!(Op::parse("conv2d", None).is_err());
        assert_eq!(
            Op::parse("matmul_i8", None).unwrap().label(),
            "matmul_i8/int8"
        );
    }

    #[test]
    fn every_uniform_is_eight_words() {
        for f in [MATMUL_FIELDS, WQ_FIELDS, I8_FIELDS] {
            assert_eq!(f.len() as u64 * 4, UNIFORM_BYTES);
        }
    }
}
