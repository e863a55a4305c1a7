// The bindings of gemv_wq_broadcast: the parameter block and weights of matmul_wq_params,
// with the activation row in a uniform buffer (A_VEC4S vec4s, bound from the start of the
// activation buffer) and the weight words bound a second time as vec4s, so a 16-byte
// aligned block is one load.
#import wq_params

@group(0) @binding(0) var<uniform> p: WqParams;
@group(0) @binding(1) var<uniform> a: array<vec4<f32>, A_VEC4S>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> s: array<u32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
@group(0) @binding(5) var<storage, read> w4: array<vec4<u32>>;

// Words 4q .. 4q + 3 of the weights, one load.
fn wquad(q: u32) -> vec4<u32> {
    return w4[q];
}
