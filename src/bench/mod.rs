//! Benchmarks: the f32, per-precision and model runs, ceilings, the sweep, the tuner, and
//! their tables and reports. Timed runs themselves are [`crate::gpu::measure`].

pub mod autotune;
pub mod ceilings;
pub mod infer;
pub mod infer_prune;
pub mod llm;
pub mod llm_prune;
pub mod matmul;
pub mod precision;
pub mod report;
pub mod sparse;
pub mod suite;
pub mod table;
pub mod tune;
