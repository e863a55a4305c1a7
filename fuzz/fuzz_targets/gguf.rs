//! Fuzz target `gguf`: see `wgpu_lab::fuzzing::gguf`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wgpu_lab::fuzzing::gguf(data);
});
