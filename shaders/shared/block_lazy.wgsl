// What a kernel holds per block between decodes, for formats that decode straight from the
// buffer (f32, f16, bf16, q8_0, the K-quants): the block's index. For q8_0, loading its 8
// words once per block measured 3x slower on lavapipe (8 rows of a register block x 8
// words outgrow the registers); decoding from the buffer reads each word once anyway.
alias Block = u32;

fn load_block(g: u32) -> Block {
    return g;
}

fn decode_in(b: Block, j: u32) -> vec4<f32> {
    return decode(b, j);
}
