// B operand of matmul_regblock stored as f16: four consecutive values in two words, the
// first in the low half (unpacked to f32; works without SHADER_F16).
@group(0) @binding(2) var<storage, read> b: array<vec2<u32>>;

fn load_b(i: u32) -> vec4<f32> {
    let v = b[i];
    return vec4(unpack2x16float(v.x), unpack2x16float(v.y));
}
