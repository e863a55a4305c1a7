// The N:M layout's masks and the activations they index, shared by the sparse kernels
// (the layout: src/formats/sparse.rs; the bindings: sparse_params).

// Group g's mask in the row whose mask words start at `mrow0`. Past the row's last group
// (the zero padding of the last kept block) the first NM_N columns, read as zeros by `xat`.
fn group_mask(mrow0: u32, g: u32) -> u32 {
    if g >= p.groups {
        return (1u << NM_N) - 1u;
    }
    let word = masks[mrow0 + g / FIELDS];
    return (word >> ((g % FIELDS) * FIELD_BITS)) & ((1u << FIELD_BITS) - 1u);
}

// A[row0 + col] for a column of the row (0 past the row's end: the padding's columns).
fn xat(row0: u32, col: u32) -> f32 {
    return select(0.0, a[row0 + min(col, p.k - 1u)], col < p.k);
}
