//! wgpu-lab: GPU compute experiments through wgpu, validated against CPU references.
//!
//! Layout: [`gpu`] is the plumbing (adapters, context, buffers, timing), [`kernels`] the GPU
//! kernels, [`reference`] their CPU twins, [`compare`] the error metrics and tolerances,
//! [`bench`] the timed runs and their tables, [`lab`] a user's own kernels validated and
//! timed, [`npy`] file I/O.

pub mod atomic;
pub mod bench;
pub mod compare;
pub mod convert;
pub mod error;
pub mod formats;
pub mod fuzzing;
pub mod gpu;
pub mod kernels;
pub mod lab;
pub mod model;
pub mod npy;
pub mod prune;
pub mod reference;
pub mod rng;
pub mod shaders;
pub mod stats;

pub use error::{LabError, Result};
pub use gpu::{AdapterSelector, Context};
