// llama_rope_store: RoPE on the query and key parts of each fused QKV row (llama.cpp's
// "normal" layout: pairs (2i, 2i+1) of each head, angle pos * inv_freq[i]), then the keys
// and values into this layer's KV cache at the row's position, a pair of values at a time
// (the prefix imports kv_store_f32 or kv_store_f16). One workgroup per row.
#import dispatch
#import llama_params

override WG: u32 = 64u;

@group(0) @binding(1) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(2) var<storage, read_write> qkv: array<f32>;

fn rotate(at: u32, pair: u32, pos: f32) -> vec2<f32> {
    let theta = pos * inv_freq[pair];
    let c = cos(theta);
    let s = sin(theta);
    let x0 = qkv[at];
    let x1 = qkv[at + 1u];
    return vec2<f32>(x0 * c - x1 * s, x0 * s + x1 * c);
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let row = linear_workgroup(wid, nwg);
    if row >= p.rows {
        return;
    }
    let stride = p.dim + 2u * p.kv_dim;
    let base = row * stride;
    let pos = p.pos0 + row;
    let half = p.rope_dims / 2u;
    // Query pairs, in place.
    for (var i = lid.x; i < p.heads * half; i += WG) {
        let head = i / half;
        let pair = i % half;
        let at = base + head * p.head_dim + 2u * pair;
        let r = rotate(at, pair, f32(pos));
        qkv[at] = r.x;
        qkv[at + 1u] = r.y;
    }
    // Keys: rotated pairs into the cache; dimensions past rope_dims copied as they are.
    // head_dim and rope_dims are even (checked on the host), so pairs never straddle.
    let kbase = base + p.dim;
    let cbase = pos * p.kv_dim;
    for (var h = lid.x; h < p.kv_dim / 2u; h += WG) {
        let i = 2u * h;
        let d = i % p.head_dim;
        var kp = vec2<f32>(qkv[kbase + i], qkv[kbase + i + 1u]);
        if d < p.rope_dims {
            kp = rotate(kbase + i, d / 2u, f32(pos));
        }
        store_k_pair(cbase + i, kp);
        let vb = kbase + p.kv_dim + i;
        store_v_pair(cbase + i, vec2<f32>(qkv[vb], qkv[vb + 1u]));
    }
}
