// The KV cache as f32, read (llama_attention): bindings KC_BINDING and VC_BINDING.
@group(0) @binding(KC_BINDING) var<storage, read> kcache: array<f32>;
@group(0) @binding(VC_BINDING) var<storage, read> vcache: array<f32>;

fn key(i: u32) -> f32 {
    return kcache[i];
}

fn value(i: u32) -> f32 {
    return vcache[i];
}
