//! Fuzz target `bert`: see `wgpu_lab::fuzzing::bert`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wgpu_lab::fuzzing::bert(data);
});
