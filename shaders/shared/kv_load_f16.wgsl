// The KV cache as f16, two values per word (see kv_store_f16), read (llama_attention) four
// values (two words) at a time: bindings KC_BINDING and VC_BINDING.
@group(0) @binding(KC_BINDING) var<storage, read> kcache: array<vec2<u32>>;
@group(0) @binding(VC_BINDING) var<storage, read> vcache: array<vec2<u32>>;

// Keys / values 4 * i .. 4 * i + 3.
fn key4(i: u32) -> vec4<f32> {
    let w = kcache[i];
    return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}

fn value4(i: u32) -> vec4<f32> {
    let w = vcache[i];
    return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}
