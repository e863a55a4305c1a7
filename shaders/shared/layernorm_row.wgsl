// LayerNorm of one row of `x` in place (x, gamma, beta are the importing kernel's bindings):
// `sum` is each invocation's partial sum of the row it wrote; two passes, mean then the
// variance of the deviations, as the CPU twin computes them.
#import row_reduce

fn layernorm_row(base: u32, sum: f32, lid: u32) {
    let mean = workgroup_sum(sum, lid) / f32(p.h);
    var s2 = 0.0;
    for (var i = lid; i < p.h; i += WG) {
        let d = x[base + i] - mean;
        s2 += d * d;
    }
    let inv = inverseSqrt(workgroup_sum(s2, lid) / f32(p.h) + p.eps);
    for (var i = lid; i < p.h; i += WG) {
        x[base + i] = (x[base + i] - mean) * inv * gamma[i] + beta[i];
    }
}
