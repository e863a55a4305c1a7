//! Fuzz target `tune_cache`: see `wgpu_lab::fuzzing::tune_cache`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wgpu_lab::fuzzing::tune_cache(data);
});
