// matmul_scalarblock: register blocks of scalar operands, the hot loop written out.
//
// The shape of surfgrad's kernel (zanussbaum/surfgrad, an 8x8 block of scalars per
// invocation), which wins on Mesa 25's lavapipe where our vec4 blocks plateau
// (docs/results/public-gemm-lavapipe.md): each invocation owns TM rows x TN adjacent
// columns of C and reads A and B one f32 at a time. The workgroup is one row of WG_X
// invocations along n, so the rows of A it reads depend on the workgroup id alone and
// every A load is uniform across the SIMD lanes (a 2-D workgroup measured the same).
// The host pads A and B rows to whole vec4s as for `matmul_regblock` (lda, ldb), writes
// the block out (`#splice`, src/kernels/matmul.rs `scalarblock_splices`) and clamps
// every row and column so the hot loop needs no bounds checks.
#import dispatch
#import matmul_params

override WG_X: u32 = 64u;

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

// Stores C[row][col] if inside C.
fn store(row: u32, col: u32, v: f32) {
    if row < p.m && col < p.n {
        c[row * p.n + col] = v;
    }
}

// Layout nn: B is k x n (row stride ldb). Lane owns columns col0 .. col0 + TN - 1.
@compute @workgroup_size(WG_X)
fn main_nn(
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
    // For i < TM, j < TN: ar_i, the offset of A's row; bc_j, B's column (clamped);
    // acc_i_j; the k loop; store of each accumulator.
#splice scalarblock_nn
}

// Layout nt: B is n x k (row stride ldb). Lane owns columns col0 .. col0 + TN - 1, each a
// row of B.
@compute @workgroup_size(WG_X)
fn main_nt(
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
    // For i < TM, j < TN: ar_i and br_j, the offsets of A's and B's rows (clamped);
    // acc_i_j; the k loop; store of each accumulator.
#splice scalarblock_nt
}
