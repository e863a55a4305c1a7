//! Fuzz target `npy`: see `wgpu_lab::fuzzing::npy`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wgpu_lab::fuzzing::npy(data);
});
