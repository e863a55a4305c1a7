//! A llama-architecture checkpoint from a GGUF file (as llama.cpp writes it): config from
//! the metadata, tensors by name, and the tokenizer's vocabulary. Shared by the GPU model
//! (`model::llama`) and its CPU twin (`reference::llama`), so it lives below both.

pub mod config;
pub mod kv;
pub mod vocab;
pub mod weights;

pub use config::LlamaConfig;
pub use kv::KvPrecision;
pub use weights::{
    LlamaFtype, LlamaImportance, LlamaLayer, LlamaWeights, LlmPrecision, MatrixInput, MatrixRole,
};
