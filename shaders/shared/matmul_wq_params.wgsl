// The bindings of the weights-in-any-format kernels (matmul_wq, gemv_wq, matmul_wq_tiled).
#import wq_params

@group(0) @binding(0) var<uniform> p: WqParams;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> s: array<u32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

// Words 4q .. 4q + 3 of the weights (a block's quad where blocks are 16-byte aligned).
fn wquad(q: u32) -> vec4<u32> {
    let o = q * 4u;
    return vec4(w[o], w[o + 1u], w[o + 2u], w[o + 3u]);
}
