// ceiling_fma: peak arithmetic. Each invocation runs ITERS rounds over 8 independent vec4
// accumulators (no memory traffic in the loop), then stores one value so nothing is
// eliminated. The prefix sets ELEM (f32 or f16, with `enable f16;` for f16) and ITERS.
// FLOPs = invocations x ITERS x 8 x 4 x 2.
#import dispatch

@group(0) @binding(0) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_workgroup(wid, nwg) * 256u + lid.x;
    let seed = ELEM(f32(i % 7u) * 0.001);
    var a0 = vec4<ELEM>(seed); var a1 = a0 + ELEM(0.1); var a2 = a0 + ELEM(0.2); var a3 = a0 + ELEM(0.3);
    var a4 = a0 + ELEM(0.4); var a5 = a0 + ELEM(0.5); var a6 = a0 + ELEM(0.6); var a7 = a0 + ELEM(0.7);
    let m = vec4<ELEM>(ELEM(0.999));
    let c = vec4<ELEM>(ELEM(0.001));
    for (var it = 0u; it < ITERS; it++) {
        a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
        a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
    }
    let s = (a0 + a1) + (a2 + a3) + (a4 + a5) + (a6 + a7);
    out[i] = f32(s.x + s.y + s.z + s.w);
}
