// The broadcast GEMV's input as it is: y = W x.
fn in_scale() -> f32 {
    return 1.0;
}
