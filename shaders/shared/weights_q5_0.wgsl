// Weight decoding, ggml Q5_0: 5 words per block, the 4 words of nibbles of `nibbles_q4`
// then ggml's `qh` (bit i: the fifth bit of value i); scales d as f16, two blocks per word
// of `s`. value = d * (q - 16), written as d * q + m with m = -16 d.
#import nibbles_q4

fn decode(g: u32, j: u32) -> vec4<f32> {
    let hi = w[g * 5u + 4u] >> (4u * j);
    let fifth = vec4<f32>(vec4(hi, hi >> 1u, hi >> 2u, hi >> 3u) & vec4(1u));
    return nibbles(w[g * 5u + (j & 3u)], j) + 16.0 * fifth;
}

fn block_scale(g: u32) -> vec2<f32> {
    let d = unpack2x16float(s[g / 2u])[g % 2u];
    return vec2(d, -16.0 * d);
}

// What a kernel holds per block between decodes: its 4 words of nibbles and the word of
// fifth bits, loaded once.
struct Block {
    q: vec4<u32>,
    h: u32,
}

fn load_block(g: u32) -> Block {
    let o = g * 5u;
    return Block(vec4(w[o], w[o + 1u], w[o + 2u], w[o + 3u]), w[o + 4u]);
}

fn decode_in(b: Block, j: u32) -> vec4<f32> {
    let hi = b.h >> (4u * j);
    let fifth = vec4<f32>(vec4(hi, hi >> 1u, hi >> 2u, hi >> 3u) & vec4(1u));
    return nibbles(b.q[j & 3u], j) + 16.0 * fifth;
}
