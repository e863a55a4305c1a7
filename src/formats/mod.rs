//! Data formats: ggml's block-quantized layouts, int8 rows, weights in every format, GGUF
//! files, and the precision vocabulary.

pub mod bert;
pub mod gguf;
pub mod int8;
pub mod kquant;
pub mod llama;
pub mod precision;
pub mod quant;
pub mod quant_search;
pub mod sparse;
pub mod weights;
