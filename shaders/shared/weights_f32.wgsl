// Weight decoding, f32: WB = 32 words per block of 32 values. See src/formats/weights.rs.
const WB: u32 = 32u;

// The j-th vec4 (values 4j..4j+3) of the block starting at word `base`, before scaling.
fn decode(base: u32, j: u32) -> vec4<f32> {
    let o = base + 4u * j;
    return bitcast<vec4<f32>>(vec4<u32>(w[o], w[o + 1u], w[o + 2u], w[o + 3u]));
}

// (d, m) of block g: value = d * decoded + m.
fn block_scale(g: u32) -> vec2<f32> {
    return vec2(1.0, 0.0);
}
