// The broadcast GEMV's output onto a decoder's residual stream, with the next RMSNorm's
// inputs (read by `gemv_in_rmsnorm`): c[row] += y[row] (c is the residual stream), then
// the new value times the next norm's gamma into `xg`, and each invocation's sum of
// squares of its new values into its slot of `parts` (every slot written each dispatch).
#import gemv_store_quads

@group(0) @binding(OUT_BINDING) var<storage, read> next_gamma: array<f32>;
@group(0) @binding(OUT_BINDING + 1) var<storage, read_write> xg: array<f32>;
@group(0) @binding(OUT_BINDING + 2) var<storage, read_write> parts: array<f32>;

fn store_row(row: u32, v: f32) -> f32 {
    let y = c[p.col0 + row] + v;
    c[p.col0 + row] = y;
    xg[row] = y * next_gamma[row];
    return y * y;
}

fn store_partial(slot: u32, sq: f32) {
    parts[slot] = sq;
}
