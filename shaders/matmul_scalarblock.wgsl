// matmul_scalarblock: register blocks of scalar operands, the hot loop written out.
//
// The shape of surfgrad's kernel (zanussbaum/surfgrad, an 8x8 block of scalars per
// invocation), which wins on Mesa 25's lavapipe where our vec4 blocks plateau
// (docs/results/public-gemm-lavapipe.md): each invocation owns TM rows x TN adjacent
// columns of C and reads A and B one f32 at a time. The workgroup is one row of WG_X
// invocations along n, so the rows of A it reads depend on the workgroup id alone and
// every A load reads the same address in all lanes (a 2-D workgroup measured the same).
// The host pads A and B rows to whole vec4s as for `matmul_regblock` (lda, ldb), writes
// the block out (`#splice`, src/kernels/matmul.rs `scalarblock_splice`) and clamps every
// row and column so the hot loop needs no bounds checks. Both layouts share the code: B's
// offsets come from B_T (an override, so the driver folds the selects).
#import dispatch
#import matmul_scalar_io

override WG_X: u32 = 64u;

// Stores C[row][col] if inside C.
fn store(row: u32, col: u32, v: f32) {
    if row < p.m && col < p.n {
        c[row * p.n + col] = v;
    }
}

@compute @workgroup_size(WG_X)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let tile = linear_workgroup(wid, nwg);
    if tile >= p.tiles {
        return;
    }
    let row0 = (tile / p.tiles_n) * TM;
    let col0 = (tile % p.tiles_n) * (WG_X * TN) + lid.x * TN;
    // B[kk][col] is b[kk * k_stride + col * col_stride] in either layout.
    let col_stride = select(1u, p.ldb, B_T);
    let k_stride = select(p.ldb, 1u, B_T);
    // For i < TM, j < TN: ar_i, the offset of A's row; bc_j, B's column offset (clamped);
    // acc_i_j; the k loop; store of each accumulator.
#splice scalarblock
}
