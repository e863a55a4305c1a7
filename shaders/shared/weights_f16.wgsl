// Weight decoding, f16: 2 values per word, first in the low half; WB = 16.
const WB: u32 = 16u;

fn decode(base: u32, j: u32) -> vec4<f32> {
    let o = base + 2u * j;
    return vec4(unpack2x16float(w[o]), unpack2x16float(w[o + 1u]));
}

fn block_scale(g: u32) -> vec2<f32> {
    return vec2(1.0, 0.0);
}
