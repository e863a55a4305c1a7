//! GPU plumbing: adapters, the device context, buffers, dispatch geometry,
//! timing and the validated timed run ([`measure`]).

pub mod adapters;
pub mod buffers;
pub mod context;
pub mod dispatch;
pub mod measure;
pub mod pipeline;
pub mod timing;

pub use adapters::{AdapterSelector, AdapterSummary};
pub use context::Context;
