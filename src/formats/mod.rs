//! Data formats: ggml's block-quantized layouts (and, later, GGUF files).

pub mod gguf;
pub mod quant;
pub mod weights;
