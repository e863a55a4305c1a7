//! Data formats: ggml's block-quantized layouts (and, later, GGUF files).

pub mod quant;
pub mod weights;
