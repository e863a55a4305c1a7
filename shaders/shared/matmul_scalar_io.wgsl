// Scalar bindings of the simple matmul kernels (naive, tiled).
#import matmul_params

// true: B is stored n x k (the nn.Linear weight layout), C = A * B^T.
override B_T: bool = false;

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

// B[kk][col] in the logical k x n view, whatever the storage layout.
fn b_at(kk: u32, col: u32) -> f32 {
    if B_T {
        return b[col * p.ldb + kk];
    }
    return b[kk * p.ldb + col];
}
