// llama_attention with RoPE and the cache store fused in (decode steps): the rotation of
// dimensions d0 .. d0 + 3 of a head at `pos`, two pairs in llama.cpp's "normal" layout as
// in llama_rope_store (pairs past rope_dims unrotated), angle pos * inv_freq[pair].
const ROPE_FUSED: bool = true;

@group(0) @binding(5) var<storage, read> inv_freq: array<f32>;

fn rope2(x: vec2<f32>, pair: u32, pos: u32) -> vec2<f32> {
    if 2u * pair >= p.rope_dims {
        return x;
    }
    let theta = f32(pos) * inv_freq[pair];
    let c = cos(theta);
    let s = sin(theta);
    return vec2<f32>(x.x * c - x.y * s, x.x * s + x.y * c);
}

fn rope4(v: vec4<f32>, d0: u32, pos: u32) -> vec4<f32> {
    return vec4<f32>(rope2(v.xy, d0 / 2u, pos), rope2(v.zw, d0 / 2u + 1u, pos));
}
