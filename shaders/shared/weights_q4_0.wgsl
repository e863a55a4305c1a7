// Weight decoding, ggml Q4_0: 4 words of nibbles per block. Byte j (word j/4, bits
// 8*(j%4)) holds value j in its low nibble and value j+16 in its high nibble, so vec4 j
// (values 4j..4j+3) is the low nibbles of word j for j < 4 and the high nibbles of word
// j-4 for j >= 4. Scales d as f16, two blocks per word of `s`.
// value = d * (q - 8), written as d * q + m with m = -8 d.
const WB: u32 = 4u;

fn decode(base: u32, j: u32) -> vec4<f32> {
    let v = w[base + (j & 3u)] >> ((j >> 2u) * 4u);
    return vec4<f32>((vec4(v, v >> 8u, v >> 16u, v >> 24u)) & vec4(0xfu));
}

fn block_scale(g: u32) -> vec2<f32> {
    let d = unpack2x16float(s[g / 2u])[g % 2u];
    return vec2(d, -8.0 * d);
}
