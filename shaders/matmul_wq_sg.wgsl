// matmul_wq_sg: matmul_wq with the activation rows shared through the subgroup (adapters
// with SUBGROUP whose subgroups hold at least TM invocations), as matmul_sgblock does for
// the f32 kernel: lane i of every subgroup loads activation row i of the block, one vec4
// load for all TM rows, and subgroupBroadcast with a constant lane hands each row to the
// others. matmul_wq loads every row in every lane, and lavapipe runs each of those loads
// once per SIMD lane (docs/results/public-gemm-lavapipe.md). The weights, their decoding
// and the per-block scales are matmul_wq's.
#import dispatch
#import matmul_wq_params
#import matmul_wq_store

override WG_X: u32 = 8u;

#import hsum

@compute @workgroup_size(WG_X)
fn main(
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
    let col0 = (tile % p.tiles_n) * (WG_X * TN) + lid.x;
    let k4 = p.kp / 4u;
    // The activation row this lane loads for the others (lanes past TM repeat the last).
    let lane_row = min(row0 + min(lane, TM - 1u), p.m - 1u) * k4;

    // matmul_wq's block (src/kernels/matmul_wq.rs `block_splice_rows`), the activations
    // broadcast from lanes 0..TM-1.
#splice matmul_wq_block
}
