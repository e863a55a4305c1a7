//! sentence-transformers' all-MiniLM-L6-v2 (a 6-layer BERT) on the GPU with its linear
//! layers at any precision: tokenizer, calibration for the importance-weighted quantizers,
//! and the encoder. Its CPU twin is `reference::bert`; its checkpoint is `formats::bert`.

pub mod calibrate;
pub mod gpu;
pub mod prune;
pub mod tokenize;
