//! CPU twins of the GPU kernels, one module per kernel family, same names as `kernels`.

pub mod attention;
pub mod bert;
pub mod bert_candle;
pub mod cpu_baseline;
pub mod ggml;
pub mod llama;
pub mod llama_cpp;
pub mod matmul;
pub mod matmul_f16acc;
pub mod matmul_i8;
pub mod matmul_wq;
pub mod sparse;
