// The broadcast GEMV's input through an RMSNorm, fused: the input row is already
// x * gamma (written so by the product before, `gemv_out_residual_norm`, or by the host),
// and W (x * gamma / rms(x)) = (W (x * gamma)) / rms(x): the outputs are scaled once by
// 1 / sqrt(mean(x^2) + eps), mean(x^2) summed from the partial sums of squares that the
// producer left (PARTS4 vec4s, a uniform row: every lane reads the same values).
@group(0) @binding(PARTS_BINDING) var<uniform> parts: array<vec4<f32>, PARTS4>;

// RMSNorm epsilon (the model's).
override EPS: f32;

fn in_scale() -> f32 {
    var total = vec4(0.0);
    for (var i = 0u; i < PARTS4; i++) {
        total += parts[i];
    }
    return inverseSqrt(hsum(total) / f32(p.kp) + EPS);
}
