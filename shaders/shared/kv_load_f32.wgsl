// The KV cache as f32, read (llama_attention) four values at a time: bindings KC_BINDING
// and VC_BINDING.
@group(0) @binding(KC_BINDING) var<storage, read> kcache: array<vec4<f32>>;
@group(0) @binding(VC_BINDING) var<storage, read> vcache: array<vec4<f32>>;

// Keys / values 4 * i .. 4 * i + 3.
fn key4(i: u32) -> vec4<f32> {
    return kcache[i];
}

fn value4(i: u32) -> vec4<f32> {
    return vcache[i];
}
