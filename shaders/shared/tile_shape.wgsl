// The shape shared by the workgroup-tile kernels (matmul_wq_tiled, matmul_i8_tiled,
// matmul_f16acc_tiled): BM, BN, TM, TN and KV come from the variant prefix; p (whichever
// params struct the kernel binds) has tiles_n. A tile is BM x BN outputs, (BM / TM) x
// (BN / TN) invocations; staged rows are KV + 1 vec4s apart (the pad spreads neighbouring
// rows over the banks).
const TX: u32 = BN / TN;
const TY: u32 = BM / TM;
const THREADS: u32 = TX * TY;
const STRIDE: u32 = KV + 1u;

// (first row, first column, tx, ty) of invocation `li` in tile `tile`: it owns rows
// row0 + ty + i * TY and columns col0 + tx + j * TX.
fn tile_origin(tile: u32, li: u32) -> vec4<u32> {
    return vec4((tile / p.tiles_n) * BM, (tile % p.tiles_n) * BN, li % TX, li / TX);
}
