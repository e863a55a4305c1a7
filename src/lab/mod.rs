//! The kernel lab: a user's own WGSL kernel for one of the ops in [`contract`], validated
//! against the float64 twin on the shapes that break tiles ([`check`]), timed next to the
//! tuned built-in kernel and the CPU library on the measured roofline ([`time`]), and its
//! `override` constants searched ([`tune`]). docs/kernel-lab.md is the user's guide;
//! `examples/kernels/` holds one minimal correct kernel per op.

pub mod check;
pub mod contract;
pub mod header;
pub mod kernel;
pub mod problem;
pub mod time;
pub mod tune;

pub use check::{check, check_with_limit, Report, Shapes};
pub use contract::Op;
pub use kernel::Kernel;
