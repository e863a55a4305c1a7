//! Decoder LLMs of the llama architecture from llama.cpp's GGUF files (SmolLM2, Llama,
//! TinyLlama...): the tokenizer from the file's own vocabulary, and generation. The
//! checkpoint is `formats::llama`; the CPU twin is `reference::llama`.

pub mod calibrate;
pub mod generate;
pub mod gpu;
pub mod profile;
pub mod prune;
pub mod tokenize;
