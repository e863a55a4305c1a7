//! Real networks on the GPU, one folder per architecture: `bert` (all-MiniLM-L6-v2, a
//! sentence encoder) and `llama` (decoder LLMs from llama.cpp's GGUF files). Each has its
//! CPU twin in `reference/` under the same name; the checkpoint data they share lives in
//! `formats/`.

pub mod bert;
pub mod llama;
