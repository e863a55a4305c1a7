//! Benchmarks: prepare, validate, warm up, time; rows for tables and JSON.

pub mod matmul;
pub mod table;
