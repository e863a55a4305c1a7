// B operand of matmul_regblock as f16 values for f16 arithmetic (ELEM = f16, SHADER_F16):
// the f16acc precision.
@group(0) @binding(2) var<storage, read> b: array<vec4<f16>>;

fn load_b(i: u32) -> vec4<f16> {
    return b[i];
}
