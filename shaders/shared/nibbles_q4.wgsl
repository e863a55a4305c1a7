// ggml's 4-bit block layout, shared by Q4_0, Q4_1 and Q5_0: 4 words of nibbles per block.
// Byte j (word j/4, bits 8*(j%4)) holds value j in its low nibble and value j+16 in its
// high nibble, so vec4 j (values 4j..4j+3) is the low nibbles of word j for j < 4 and the
// high nibbles of word j-4 for j >= 4.

// Vec4 j of a block, from the block's word j % 4.
fn nibbles(word: u32, j: u32) -> vec4<f32> {
    let v = word >> ((j >> 2u) * 4u);
    return vec4<f32>((vec4(v, v >> 8u, v >> 16u, v >> 24u)) & vec4(0xfu));
}
