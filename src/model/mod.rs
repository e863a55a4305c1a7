//! Real networks on the GPU, one folder per architecture: `bert` (all-MiniLM-L6-v2, a sentence
//! encoder). Each has its CPU twin in `reference/` under the same name; the checkpoint data
//! they share lives in `formats/`.

pub mod bert;
