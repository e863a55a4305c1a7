// Weight decoding, ggml Q4_1: 4 words of nibbles per block as in `nibbles_q4`; one word of
// `s` per block with d (low half) and m (high half) as f16. value = d * q + m.
#import nibbles_q4

fn decode(g: u32, j: u32) -> vec4<f32> {
    return nibbles(w[g * 4u + (j & 3u)], j);
}

fn block_scale(g: u32) -> vec2<f32> {
    return unpack2x16float(s[g]);
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
