// gemv_wq_subgroup: gemv_wq with subgroup reductions (adapters with SUBGROUP). The same
// walk over blocks (invocation t takes blocks t, t+WG, ... of ROWS weight rows, scales
// applied once per block); each subgroup then sums its partials with subgroupAdd, one
// invocation per subgroup writes them, and after a single barrier the first ROWS
// invocations add the per-subgroup sums: one barrier instead of log2(WG).
#import dispatch
#import matmul_wq_params

override WG: u32 = 64u;

// One slot per subgroup and row; WG slots bound any subgroup size.
var<workgroup> partial: array<f32, WG * ROWS>;

fn hsum(v: vec4<f32>) -> f32 {
    return (v.x + v.y) + (v.z + v.w);
}

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
    var rowblk: array<u32, ROWS>;
    for (var r = 0u; r < ROWS; r++) {
        rowblk[r] = min(row0 + r, p.n - 1u) * p.nblk;
    }
    var acc: array<f32, ROWS>;
    for (var blk = lid.x; blk < p.nblk; blk += WG) {
        var part: array<vec4<f32>, ROWS>;
        var xsum = vec4(0.0);
        for (var v = 0u; v < 8u; v++) {
            let x4 = a[blk * 8u + v];
            xsum += x4;
            for (var r = 0u; r < ROWS; r++) {
                part[r] = fma(x4, decode(rowblk[r] + blk, v), part[r]);
            }
        }
        for (var r = 0u; r < ROWS; r++) {
            let sc = block_scale(rowblk[r] + blk);
            acc[r] += sc.x * hsum(part[r]) + sc.y * hsum(xsum);
        }
    }
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
