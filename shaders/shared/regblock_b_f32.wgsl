// B operand of matmul_regblock stored as f32: one vec4 per four consecutive values.
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;

fn load_b(i: u32) -> vec4<f32> {
    return b[i];
}
