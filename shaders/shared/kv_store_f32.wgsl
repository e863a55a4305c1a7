// The KV cache as f32, written (llama_rope_store): bindings KC_BINDING and VC_BINDING.
@group(0) @binding(KC_BINDING) var<storage, read_write> kcache: array<f32>;
@group(0) @binding(VC_BINDING) var<storage, read_write> vcache: array<f32>;

// Values i and i + 1 (i even) of the keys / values.
fn store_k_pair(i: u32, v: vec2<f32>) {
    kcache[i] = v.x;
    kcache[i + 1u] = v.y;
}

fn store_v_pair(i: u32, v: vec2<f32>) {
    vcache[i] = v.x;
    vcache[i + 1u] = v.y;
}
