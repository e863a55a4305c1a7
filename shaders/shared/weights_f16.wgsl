// Weight decoding, f16: 2 values per word, first in the low half.
fn decode(g: u32, j: u32) -> vec4<f32> {
    let o = g * 16u + 2u * j;
    return vec4(unpack2x16float(w[o]), unpack2x16float(w[o + 1u]));
}

fn block_scale(g: u32) -> vec2<f32> {
    return vec2(1.0, 0.0);
}

#import block_lazy
