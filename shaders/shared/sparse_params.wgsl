// The bindings of the N:M-sparse kernels (gemv_sparse, gemv_sparse_rows, gemv_sparse_bcast,
// matmul_sparse).
// Keep in sync with `SparseParams` in src/kernels/sparse.rs; the layout is documented in
// src/formats/sparse.rs. The prefix defines NM_N, NM_M (the pattern), FIELD_BITS and FIELDS
// (mask fields of FIELD_BITS bits, FIELDS per word).
struct SparseParams {
    // Activation rows (A is m x k, row-major).
    m: u32,
    // Weight rows.
    n: u32,
    // Dense values per row.
    k: u32,
    // Groups of NM_M per weight row: k / NM_M.
    groups: u32,
    // Blocks of 32 kept values per weight row (kept values padded to whole blocks).
    nblk: u32,
    // Mask words per weight row.
    mwords: u32,
    // Workgroup tiles along n, and in all.
    tiles_n: u32,
    tiles: u32,
}

// Binding 1 (the activations) and `wquad` come from `sparse_in_storage` or
// `sparse_in_uniform`.
@group(0) @binding(0) var<uniform> p: SparseParams;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> s: array<u32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
@group(0) @binding(5) var<storage, read> masks: array<u32>;
