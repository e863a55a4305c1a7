//! Fuzz target `llama`: see `wgpu_lab::fuzzing::llama`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wgpu_lab::fuzzing::llama(data);
});
