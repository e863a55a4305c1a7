// The broadcast GEMV over a gated FFN's stacked gate|up matrix (n = 2 f rows: gate rows,
// then up rows), its activation fused: invocation t owns features t, t + WG, t + 2 WG,
// t + 3 WG of its workgroup's 4 WG, their gate rows in the first quad and their up rows
// (f later) in the second, and stores silu(gate) * up into C's f columns (the decoder's
// down input), so the activation needs no dispatch. Needs QUADS = 2.
fn tile_rows() -> u32 {
    return WG * 4u;
}

fn second_rows(r0: u32) -> u32 {
    return r0 + p.n / 2u;
}

fn store_rows(r0: u32, gate: vec4<f32>, up: vec4<f32>) -> f32 {
    for (var j = 0u; j < 4u; j++) {
        let f = r0 + j * WG;
        if f < p.n / 2u {
            let g = gate[j];
            c[p.col0 + f] = g / (1.0 + exp(-g)) * up[j];
        }
    }
    return 0.0;
}

fn store_partial(slot: u32, sq: f32) {}
