// Weight decoding, bf16: 2 values per word, first in the low half; a bf16 is the top
// 16 bits of an f32, so each unpacks with a shift or a mask.
fn decode(g: u32, j: u32) -> vec4<f32> {
    let o = g * 16u + 2u * j;
    let p = w[o];
    let q = w[o + 1u];
    return bitcast<vec4<f32>>(vec4(p << 16u, p & 0xffff0000u, q << 16u, q & 0xffff0000u));
}

fn block_scale(g: u32) -> vec2<f32> {
    return vec2(1.0, 0.0);
}

#import block_lazy
