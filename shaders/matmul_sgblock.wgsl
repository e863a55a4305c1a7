// matmul_sgblock: the vec4 register blocks of matmul_regblock, with A shared through the
// subgroup (adapters with SUBGROUP whose subgroups hold at least TM invocations).
//
// Per k step a register block reads TM vec4s of A; the rows are the same for every lane
// (they depend on the workgroup alone), but a CPU adapter cannot see that: lavapipe (Mesa
// 22.3.6 and 25.0.7) treats an offset as uniform only when it derives from constants and
// push constants, so each of those loads runs once per SIMD lane, as do B's. Here lane i
// of every subgroup loads row i of the block (a single vec4 load for all TM rows) and
// each row reaches the others through subgroupBroadcast with a constant lane, which is a
// register shuffle. On lavapipe that turned 8 rows x 4 columns from 10.9 into 30 GFLOP/s
// at 1024^3 (Mesa 25.0.7; docs/results/public-gemm-lavapipe.md).
// Everything else is matmul_regblock's: padded vec4 operands, clamped rows, the block
// written out by the host (`#splice`, src/kernels/matmul.rs `regblock_splices`).
#import dispatch
#import matmul_params
#import regblock_io

override WG_X: u32 = 8u;

// Layout nn: B is k x n, stored (k4*4) x (ldb/4) vec4s. Lane owns the vec4 columns
// col4 + j*WG_X, j < TN.
@compute @workgroup_size(WG_X)
fn main_nn(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    // Uniform across the workgroup, so the subgroup operations stay in uniform control
    // flow.
    let tile = linear_workgroup(wid, nwg);
    if tile >= p.tiles {
        return;
    }
    let row0 = (tile / p.tiles_n) * TM;
    let col4 = (tile % p.tiles_n) * (WG_X * TN) + lid.x;
    let lda4 = p.lda / 4u;
    let ldb4 = p.ldb / 4u;
    let k4 = lda4;
    // The row this lane loads for the others (lanes past TM repeat the last one).
    let lane_row = clamped(row0 + min(lane, TM - 1u), p.m, lda4);
    // For j < TN: bc_j, B's vec4 column (clamped); acc_i_j; the k loop, A's rows
    // broadcast from lanes 0..TM-1; store_nn of each accumulator.
#splice sgblock_nn
}

// Layout nt: B is n x k, stored n x (ldb/4) vec4s. Lane owns columns col0 + j*WG_X, j < TN;
// each output is a running sum of vec4 products along k.
@compute @workgroup_size(WG_X)
fn main_nt(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let tile = linear_workgroup(wid, nwg);
    if tile >= p.tiles {
        return;
    }
    let row0 = (tile / p.tiles_n) * TM;
    let col0 = (tile % p.tiles_n) * (WG_X * TN) + lid.x;
    let lda4 = p.lda / 4u;
    let ldb4 = p.ldb / 4u;
    let k4 = lda4;
    let lane_row = clamped(row0 + min(lane, TM - 1u), p.m, lda4);
    // For j < TN: br_j, the offset of B's row (clamped); acc_i_j; the k loop, A's rows
    // broadcast from lanes 0..TM-1; store_nt of each accumulator.
#splice sgblock_nt
}
