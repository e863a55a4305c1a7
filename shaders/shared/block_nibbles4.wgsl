// What a kernel holds per block of Q4_0/Q4_1 between decodes: the block's 4 words of
// nibbles, loaded once (decoding 8 vec4 from the buffer loads each word twice, per row of a
// register block; measured ~1.1x faster decode on lavapipe).
#import nibbles_q4

alias Block = vec4<u32>;

fn load_block(g: u32) -> Block {
    return wquad(g);
}

fn decode_in(b: Block, j: u32) -> vec4<f32> {
    return nibbles(b[j & 3u], j);
}
