// Keep in sync with `MatmulParams` in src/kernels/matmul.rs.
// C (m x n) = A (m x k) * B, B is k x n (layout nn) or n x k (layout nt, B_T = true).
struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    // Output tiles along n, and in all; tile t covers rows (t / tiles_n) and cols (t % tiles_n).
    tiles_n: u32,
    tiles: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// true: B is stored n x k (the nn.Linear weight layout), C = A * B^T.
override B_T: bool = false;

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

// B[kk][col] in the logical k x n view, whatever the storage layout.
fn b_at(kk: u32, col: u32) -> f32 {
    if B_T {
        return b[col * p.k + kk];
    }
    return b[kk * p.n + col];
}
