//! GPU kernels, one module per kernel family; each has a CPU twin in `reference`.

pub mod matmul;
pub mod matmul_wq;
