// gemv_wq: y = W x for one activation row (the decode case), weights in any storage format
// (the prefix imports `weights_<format>`: decode(), block_scale()).
//
// A workgroup of WG invocations owns ROWS weight rows. Invocation t walks blocks t, t+WG,
// t+2WG... of those rows, so neighbouring invocations read neighbouring blocks (coalesced
// on GPUs), loads each vec4 of x once for all ROWS rows, and applies each block's scale
// once: d (x . q) + m (sum x). A tree reduction in workgroup memory sums the invocations.
#import dispatch
#import matmul_wq_params
#import gemv_rows

override WG: u32 = 64u;

var<workgroup> partial: array<f32, WG * ROWS>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    // Uniform across the workgroup, so the early return keeps barriers legal.
    let group = linear_workgroup(wid, nwg);
    if group >= p.tiles {
        return;
    }
    let row0 = group * ROWS;
    let acc = gemv_partials(row0, lid.x);
    for (var r = 0u; r < ROWS; r++) {
        partial[r * WG + lid.x] = acc[r];
    }
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s /= 2u) {
        if lid.x < s {
            for (var r = 0u; r < ROWS; r++) {
                partial[r * WG + lid.x] += partial[r * WG + lid.x + s];
            }
        }
        workgroupBarrier();
    }
    if lid.x < ROWS && row0 + lid.x < p.n {
        c[p.col0 + row0 + lid.x] = epilogue(partial[lid.x * WG], row0 + lid.x);
    }
}
