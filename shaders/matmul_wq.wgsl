// matmul_wq: C = A * W^T with f32 activations and weights in any storage format
// (every WeightFormat; the variant prefix imports the matching `weights_<format>`
// module, which defines decode() and block_scale() of a block of 32 values).
//
// Register-blocked like matmul_regblock (nt): a workgroup is one row of WG_X invocations;
// each invocation owns TM activation rows x TN weight rows. Per block of 32 values it
// accumulates unscaled dot products a . q and the activation sum, then applies the block's
// scale once: sum_block(a * (d q + m)) = d (a . q) + m (sum a).
// The subgroup variant (`sgblock`, as in matmul_regblock) adds the subgroup_invocation_id
// builtin (`#splice matmul_wq_lane`) and has lane i load activation row i once and
// broadcast it, instead of every lane loading every row.
#import dispatch
#import matmul_wq_params

override WG_X: u32 = 16u;

#import hsum

@compute @workgroup_size(WG_X)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
#splice matmul_wq_lane
) {
    let tile = linear_workgroup(wid, nwg);
    if tile >= p.tiles {
        return;
    }
    let row0 = (tile / p.tiles_n) * TM;
    let col0 = (tile % p.tiles_n) * (WG_X * TN) + lid.x;
    let k4 = p.kp / 4u;

    // Written out by the host for TM x TN (`#splice`, src/kernels/matmul_wq.rs): for
    // i < TM, j < TN: ar_i, A's row offset; wb_j, the weight row's first block (both
    // clamped); acc_i_j; per block, the loaded blocks, for each of its 8 vec4s the decoded
    // weights q_j, the activations and their sums, the unscaled dot products part_i_j;
    // then the scales; last, the guarded stores. As loops over arrays the same blocks
    // ran slower on lavapipe, which keeps such arrays in memory
    // (docs/results/public-gemm-lavapipe.md).
#splice matmul_wq_block
}

// Stores C[row][col] through the epilogue, if inside C.
fn store(row: u32, col: u32, v: f32) {
    if row < p.m && col < p.n {
        c[row * p.ldc + p.col0 + col] = epilogue(v, col);
    }
}
