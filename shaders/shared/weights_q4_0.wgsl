// Weight decoding, ggml Q4_0: 4 words of nibbles per block as in `nibbles_q4`; scales d as
// f16, two blocks per word of `s`. value = d * (q - 8), written as d * q + m with m = -8 d.
#import nibbles_q4
#import block_nibbles4

fn decode(g: u32, j: u32) -> vec4<f32> {
    return nibbles(w[g * 4u + (j & 3u)], j);
}

fn block_scale(g: u32) -> vec2<f32> {
    let d = unpack2x16float(s[g / 2u])[g % 2u];
    return vec2(d, -8.0 * d);
}

