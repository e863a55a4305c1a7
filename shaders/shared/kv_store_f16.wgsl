// The KV cache as f16, two values per word (value i in word i / 2, the even one in the low
// half), written (llama_rope_store): bindings KC_BINDING and VC_BINDING. Each value is
// rounded to f16 to nearest even, as the CPU twin rounds (f16_rne: pack2x16float's
// rounding differs between drivers).
#import f16_rne
@group(0) @binding(KC_BINDING) var<storage, read_write> kcache: array<u32>;
@group(0) @binding(VC_BINDING) var<storage, read_write> vcache: array<u32>;

// Values i and i + 1 (i even) of the keys / values.
fn store_k_pair(i: u32, v: vec2<f32>) {
    kcache[i / 2u] = pack2x16_rne(v);
}

fn store_v_pair(i: u32, v: vec2<f32>) {
    vcache[i / 2u] = pack2x16_rne(v);
}
