// The KV cache as f16, two values per word (see kv_store_f16), read (llama_attention):
// bindings KC_BINDING and VC_BINDING.
@group(0) @binding(KC_BINDING) var<storage, read> kcache: array<u32>;
@group(0) @binding(VC_BINDING) var<storage, read> vcache: array<u32>;

fn key(i: u32) -> f32 {
    return unpack2x16float(kcache[i / 2u])[i % 2u];
}

fn value(i: u32) -> f32 {
    return unpack2x16float(vcache[i / 2u])[i % 2u];
}
