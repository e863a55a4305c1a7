// The broadcast GEMV's rows as quads: a workgroup owns WG * 4 * QUADS consecutive rows,
// invocation t rows t, t + WG, ... (the second quad from t + 4 WG), each stored by the
// output module's store_row(row, value), which returns a value to sum per invocation.
fn tile_rows() -> u32 {
    return WG * 4u * QUADS;
}

fn second_rows(r0: u32) -> u32 {
    return r0 + 4u * WG;
}

fn store_quad(r: u32, acc: vec4<f32>) -> f32 {
    var sq = 0.0;
    for (var j = 0u; j < 4u; j++) {
        let row = r + j * WG;
        if row < p.n {
            sq += store_row(row, acc[j]);
        }
    }
    return sq;
}

fn store_rows(r0: u32, acc0: vec4<f32>, acc1: vec4<f32>) -> f32 {
    var sq = store_quad(r0, acc0);
    if QUADS > 1u {
        sq += store_quad(second_rows(r0), acc1);
    }
    return sq;
}
