// Weight decoding, ggml Q4_1: 4 words of nibbles per block as in `nibbles_q4`; one word of
// `s` per block with d (low half) and m (high half) as f16. value = d * q + m.
#import nibbles_q4
#import block_nibbles4

fn decode(g: u32, j: u32) -> vec4<f32> {
    return nibbles(w[g * 4u + (j & 3u)], j);
}

fn block_scale(g: u32) -> vec2<f32> {
    return unpack2x16float(s[g]);
}

