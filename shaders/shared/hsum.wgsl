// Horizontal sum of a vec4, in pairs: (x + y) + (z + w).
fn hsum(v: vec4<f32>) -> f32 {
    return (v.x + v.y) + (v.z + v.w);
}
