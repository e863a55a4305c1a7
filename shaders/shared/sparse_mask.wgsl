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
