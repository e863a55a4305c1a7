// The operands of the vec4 register blocks (matmul_regblock, matmul_sgblock): A as vec4s
// of ELEM (binding 1), C as f32 (binding 3), row offsets clamped for the hot loop and the
// bounds-checked stores of either layout. B (binding 2) and load_b() come from the
// variant prefix (regblock_b_f32, regblock_b_f16, regblock_b_f16acc).
@group(0) @binding(1) var<storage, read> a: array<vec4<ELEM>>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

// Offset of row `row0 + i` of a matrix with `rows` rows and row stride `stride`, clamped so
// the hot loop needs no bounds checks (rows past the end repeat the last one and their
// results are never stored).
fn clamped(row: u32, rows: u32, stride: u32) -> u32 {
    return min(row, rows - 1u) * stride;
}

// Stores the four columns 4*col4 .. +3 of `row` that lie inside C.
fn store_nn(row: u32, col4: u32, v: vec4<ELEM>) {
    let col = col4 * 4u;
    if row < p.m {
        for (var e = 0u; e < 4u; e++) {
            if col + e < p.n {
                c[row * p.n + col + e] = f32(v[e]);
            }
        }
    }
}

// Stores C[row][col], the sum of the four partial sums along k, if inside C.
fn store_nt(row: u32, col: u32, v: vec4<ELEM>) {
    if row < p.m && col < p.n {
        c[row * p.n + col] = f32((v.x + v.y) + (v.z + v.w));
    }
}
