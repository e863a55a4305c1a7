//! Fuzz target `prompt`: see `wgpu_lab::fuzzing::prompt`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wgpu_lab::fuzzing::prompt(data);
});
