// Weight decoding, ggml Q4_0: 4 words of nibbles per block as in `nibbles_q4`; scales d as
// f16, two blocks per word of `s`. value = d * (q - 8), written as d * q + m with m = -8 d.
#import nibbles_q4

fn decode(g: u32, j: u32) -> vec4<f32> {
    return nibbles(w[g * 4u + (j & 3u)], j);
}

fn block_scale(g: u32) -> vec2<f32> {
    let d = unpack2x16float(s[g / 2u])[g % 2u];
    return vec2(d, -8.0 * d);
}

// What a kernel holds per block between decodes: the block's 4 words of nibbles, loaded
// once (decoding 8 vec4 from the buffer would load each word twice, per row of a register
// block; measured 1.3x faster decode on lavapipe).
alias Block = vec4<u32>;

fn load_block(g: u32) -> Block {
    let o = g * 4u;
    return vec4(w[o], w[o + 1u], w[o + 2u], w[o + 3u]);
}

fn decode_in(b: Block, j: u32) -> vec4<f32> {
    return nibbles(b[j & 3u], j);
}
