// Weight decoding, ggml Q8_0: 8 words of int8 per block (byte 0 = value 0, lowest bits);
// scales d as f16, two blocks per word of `s` (even block in the low half). value = d * q.
fn decode(g: u32, j: u32) -> vec4<f32> {
    return sext_bytes(w[g * 8u + j]);
}

fn sext_bytes(v: u32) -> vec4<f32> {
    // Shift each byte to the top, then arithmetic-shift back down to sign-extend it.
    let q = bitcast<vec4<i32>>(vec4(v << 24u, v << 16u, v << 8u, v)) >> vec4(24u);
    return vec4<f32>(q);
}

fn block_scale(g: u32) -> vec2<f32> {
    let d = unpack2x16float(s[g / 2u])[g % 2u];
    return vec2(d, 0.0);
}

#import block_lazy
