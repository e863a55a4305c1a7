// llama_attention after llama_rope_store (prefill): the cache already holds every
// position, rotated; these stand in for the fused path's functions and are never called.
const ROPE_FUSED: bool = false;

fn rope4(v: vec4<f32>, d0: u32, pos: u32) -> vec4<f32> {
    return v;
}

fn kv_round(v: vec4<f32>) -> vec4<f32> {
    return v;
}

fn store_kv4(i: u32, k: vec4<f32>, v: vec4<f32>) {}
