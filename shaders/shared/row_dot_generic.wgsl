// The broadcast GEMV's block product for any weights module: weight block g times x's
// block (an `XBlock`), scaled: d (x . q) + m (sum x), through load_block / decode_in.
fn row_dot(g: u32, x: XBlock) -> f32 {
    let b = load_block(g);
    var t = x.v0 * decode_in(b, 0u);
    t = fma(x.v1, decode_in(b, 1u), t);
    t = fma(x.v2, decode_in(b, 2u), t);
    t = fma(x.v3, decode_in(b, 3u), t);
    t = fma(x.v4, decode_in(b, 4u), t);
    t = fma(x.v5, decode_in(b, 5u), t);
    t = fma(x.v6, decode_in(b, 6u), t);
    t = fma(x.v7, decode_in(b, 7u), t);
    let sc = block_scale(g);
    return sc.x * hsum(t) + sc.y * x.sum;
}
