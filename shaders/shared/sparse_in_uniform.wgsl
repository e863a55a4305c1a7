// gemv_sparse_bcast's activation row as a uniform view (A_VEC4S vec4s from the start of
// the activation buffer: every lane reads the same x at the same step), and the kept words
// bound a second time as vec4s, so a 16-byte block is one load.
@group(0) @binding(1) var<uniform> a: array<vec4<f32>, A_VEC4S>;
@group(0) @binding(6) var<storage, read> w4: array<vec4<u32>>;

// Words 4q .. 4q + 3 of the kept values, one load.
fn wquad(q: u32) -> vec4<u32> {
    return w4[q];
}
