// The broadcast GEMV's block product for Q8_0: the block's 8 words as two quads, one load
// each. The broadcast GEMV holds one block at a time, so the words stay in registers (in a
// register block's 8 rows they spilled: block_lazy).
fn row_dot(g: u32, x: XBlock) -> f32 {
    let lo = wquad(2u * g);
    let hi = wquad(2u * g + 1u);
    var t = x.v0 * sext_bytes(lo.x);
    t = fma(x.v1, sext_bytes(lo.y), t);
    t = fma(x.v2, sext_bytes(lo.z), t);
    t = fma(x.v3, sext_bytes(lo.w), t);
    t = fma(x.v4, sext_bytes(hi.x), t);
    t = fma(x.v5, sext_bytes(hi.y), t);
    t = fma(x.v6, sext_bytes(hi.z), t);
    t = fma(x.v7, sext_bytes(hi.w), t);
    return block_scale(g).x * hsum(t);
}
