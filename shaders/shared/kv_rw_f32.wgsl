// The KV cache as f32, read and written by one kernel (llama_attention with RoPE fused):
// bindings KC_BINDING and VC_BINDING, four values at a time.
@group(0) @binding(KC_BINDING) var<storage, read_write> kcache: array<vec4<f32>>;
@group(0) @binding(VC_BINDING) var<storage, read_write> vcache: array<vec4<f32>>;

// Keys / values 4 * i .. 4 * i + 3.
fn key4(i: u32) -> vec4<f32> {
    return kcache[i];
}

fn value4(i: u32) -> vec4<f32> {
    return vcache[i];
}

// A key and a value as the cache holds them.
fn kv_round(v: vec4<f32>) -> vec4<f32> {
    return v;
}

fn store_kv4(i: u32, k: vec4<f32>, v: vec4<f32>) {
    kcache[i] = k;
    vcache[i] = v;
}
