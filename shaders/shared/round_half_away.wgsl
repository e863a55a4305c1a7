// C's roundf (half away from zero), as ggml and src/formats/int8.rs round.
fn round_half_away(v: f32) -> f32 {
    let t = trunc(v);
    return select(t, t + sign(v), abs(v - t) >= 0.5);
}
