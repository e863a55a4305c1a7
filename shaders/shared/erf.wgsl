// erf(x) by Abramowitz & Stegun 7.1.26: |error| <= 1.5e-7, below f32's resolution of the
// GELU outputs it feeds. WGSL has no erf builtin.
fn erf_approx(x: f32) -> f32 {
    let a = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let y = 1.0 - poly * exp(-a * a);
    return select(y, -y, x < 0.0);
}

// Exact (erf) GELU, as BERT uses: x/2 (1 + erf(x / sqrt 2)).
fn gelu(x: f32) -> f32 {
    return 0.5 * x * (1.0 + erf_approx(x * 0.70710678118654752));
}
