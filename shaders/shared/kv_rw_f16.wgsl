// The KV cache as f16 (the layout of kv_store_f16: value i in word i / 2, the even one in
// the low half), read and written by one kernel (llama_attention with RoPE fused):
// bindings KC_BINDING and VC_BINDING, four values (two words) at a time, rounded to
// nearest even as kv_store_f16 rounds.
#import f16_rne
@group(0) @binding(KC_BINDING) var<storage, read_write> kcache: array<vec2<u32>>;
@group(0) @binding(VC_BINDING) var<storage, read_write> vcache: array<vec2<u32>>;

fn unpack4(w: vec2<u32>) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}

fn pack4(v: vec4<f32>) -> vec2<u32> {
    return vec2<u32>(pack2x16_rne(v.xy), pack2x16_rne(v.zw));
}

// Keys / values 4 * i .. 4 * i + 3.
fn key4(i: u32) -> vec4<f32> {
    return unpack4(kcache[i]);
}

fn value4(i: u32) -> vec4<f32> {
    return unpack4(vcache[i]);
}

// A key and a value as the cache holds them (rounded to f16 as kv_store_f16 does).
fn kv_round(v: vec4<f32>) -> vec4<f32> {
    return unpack4(pack4(v));
}

fn store_kv4(i: u32, k: vec4<f32>, v: vec4<f32>) {
    kcache[i] = pack4(k);
    vcache[i] = pack4(v);
}
