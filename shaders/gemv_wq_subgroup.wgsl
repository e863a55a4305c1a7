// gemv_wq_subgroup: gemv_wq with subgroup reductions (adapters with SUBGROUP). The same
// walk over blocks (invocation t takes blocks t, t+WG, ... of ROWS weight rows, scales
// applied once per block); each subgroup then sums its partials with subgroupAdd, one
// invocation per subgroup writes them, and after a single barrier the first ROWS
// invocations add the per-subgroup sums: one barrier instead of log2(WG).
#import dispatch
#import matmul_wq_params
#import gemv_rows

override WG: u32 = 64u;

// One slot per subgroup and row; WG slots bound any subgroup size.
var<workgroup> partial: array<f32, WG * ROWS>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(subgroup_invocation_id) sg_lane: u32,
    @builtin(subgroup_id) sg_id: u32,
    @builtin(num_subgroups) sg_count: u32,
) {
    // Uniform across the workgroup, so the early return keeps barriers and subgroup
    // operations in uniform control flow.
    let group = linear_workgroup(wid, nwg);
    if group >= p.tiles {
        return;
    }
    let row0 = group * ROWS;
    let acc = gemv_partials(row0, lid.x);
    for (var r = 0u; r < ROWS; r++) {
        let s = subgroupAdd(acc[r]);
        if sg_lane == 0u {
            partial[r * WG + sg_id] = s;
        }
    }
    workgroupBarrier();
    if lid.x < ROWS && row0 + lid.x < p.n {
        var t = 0.0;
        for (var i = 0u; i < sg_count; i++) {
            t += partial[lid.x * WG + i];
        }
        c[p.col0 + row0 + lid.x] = epilogue(t, row0 + lid.x);
    }
}
