// matmul_regblock: register blocking. Each invocation accumulates TM rows x TN columns of C
// in registers. The workgroup is one row of WG_X invocations along n, so the rows of A it
// reads depend on the workgroup id alone: every A load is uniform across the SIMD lanes
// (one scalar load and a broadcast on CPU adapters, a broadcast on GPUs), and lane i reads
// columns col0 + i + j * WG_X of B, consecutive across lanes.
// TM and TN come from the variant prefix (src/kernels/matmul.rs).
#import dispatch
#import matmul_params

override WG_X: u32 = 32u;

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
    let col0 = (tile % p.tiles_n) * (WG_X * TN) + lid.x;

    // Clamp indices instead of branching in the hot loop; clamped rows/cols are not stored.
    var arow: array<u32, TM>;
    for (var i = 0u; i < TM; i++) {
        arow[i] = min(row0 + i, p.m - 1u) * p.k;
    }
    var bcol: array<u32, TN>;
    for (var j = 0u; j < TN; j++) {
        bcol[j] = min(col0 + j * WG_X, p.n - 1u);
    }

    var acc: array<f32, TM * TN>;
    for (var kk = 0u; kk < p.k; kk++) {
        var bv: array<f32, TN>;
        for (var j = 0u; j < TN; j++) {
            bv[j] = b_at(kk, bcol[j]);
        }
        for (var i = 0u; i < TM; i++) {
            let av = a[arow[i] + kk];
            for (var j = 0u; j < TN; j++) {
                acc[i * TN + j] = fma(av, bv[j], acc[i * TN + j]);
            }
        }
    }

    for (var i = 0u; i < TM; i++) {
        let row = row0 + i;
        if row < p.m {
            for (var j = 0u; j < TN; j++) {
                let col = col0 + j * WG_X;
                if col < p.n {
                    c[row * p.n + col] = acc[i * TN + j];
                }
            }
        }
    }
}
