// Weight decoding, f32: 32 words per block of 32 values. See src/formats/weights.rs.

// The j-th vec4 (values 4j..4j+3) of block g (block g of all rows, 32 values each),
// before scaling.
fn decode(g: u32, j: u32) -> vec4<f32> {
    return bitcast<vec4<f32>>(wquad(g * 8u + j));
}

// (d, m) of block g: value = d * decoded + m.
fn block_scale(g: u32) -> vec2<f32> {
    return vec2(1.0, 0.0);
}

#import block_lazy
