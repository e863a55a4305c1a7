//! GPU kernels, one module per kernel family; each has a CPU twin in `reference`.

pub mod epilogue;
pub mod matmul;
pub mod matmul_f16acc;
pub mod matmul_i8;
pub mod matmul_wq;
pub mod sparse;
