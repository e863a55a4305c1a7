// Keep in sync with `WqParams` in src/kernels/matmul_wq.rs.
// C (m x n) = A (m x kp) * W^T, W is n x kp stored in blocks of 32 (src/formats/weights.rs).
struct WqParams {
    m: u32,
    n: u32,
    // k padded to whole blocks of 32 (A is padded with zeros to match).
    kp: u32,
    // Blocks per weight row: kp / 32.
    nblk: u32,
    tiles_n: u32,
    tiles: u32,
    // Floats per row of C, and the first column written (products side by side in one C).
    ldc: u32,
    col0: u32,
}
