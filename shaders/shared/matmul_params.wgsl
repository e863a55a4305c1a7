// Keep in sync with `MatmulParams` in src/kernels/matmul.rs.
// C (m x n) = A (m x k) * B, B is k x n (layout nn) or n x k (layout nt).
struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    // Output tiles along n, and in all; tile t covers rows (t / tiles_n) and cols (t % tiles_n).
    tiles_n: u32,
    tiles: u32,
    // Row strides of A and B as stored, in elements (>= k or n when the host padded rows).
    lda: u32,
    ldb: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: MatmulParams;
