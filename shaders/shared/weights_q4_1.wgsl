// Weight decoding, ggml Q4_1: nibbles as in Q4_0; one word of `s` per block with d (low
// half) and m (high half) as f16. value = d * q + m.
const WB: u32 = 4u;

fn decode(base: u32, j: u32) -> vec4<f32> {
    let v = w[base + (j & 3u)] >> ((j >> 2u) * 4u);
    return vec4<f32>((vec4(v, v >> 8u, v >> 16u, v >> 24u)) & vec4(0xfu));
}

fn block_scale(g: u32) -> vec2<f32> {
    return unpack2x16float(s[g]);
}
