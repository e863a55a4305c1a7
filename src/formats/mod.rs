//! Data formats: ggml's block-quantized layouts (and, later, GGUF files).

pub mod gguf;
pub mod int8;
pub mod quant;
pub mod quant_search;
pub mod weights;
