// The guarded store of the weights' register blocks (matmul_wq, matmul_wq_sg).

// Stores C[row][col] through the epilogue, if inside C.
fn store(row: u32, col: u32, v: f32) {
    if row < p.m && col < p.n {
        c[row * p.ldc + p.col0 + col] = epilogue(v, col);
    }
}
