// Parameters of the int8 kernels (quantize_rows_i8, quantize_rot32_i8, matmul_i8).
// Keep in sync with `I8Params` in src/kernels/matmul_i8.rs.
struct I8Params {
    m: u32,
    n: u32,
    k: u32,
    // k padded to a multiple of 32: rows hold kp / 4 words (and kp / 32 scales in blocks).
    kp: u32,
    tiles_n: u32,
    tiles: u32,
    _pad0: u32,
    _pad1: u32,
}
