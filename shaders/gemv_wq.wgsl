// gemv_wq: y = W x for one activation row (the decode case), weights in any storage format
// (the prefix imports `weights_<format>`: decode(), block_scale()).
//
// A workgroup of WG invocations owns ROWS weight rows. Invocation t walks blocks t, t+WG,
// t+2WG... of those rows, so neighbouring invocations read neighbouring blocks (coalesced
// on GPUs), loads each vec4 of x once for all ROWS rows, and applies each block's scale
// once: d (x . q) + m (sum x). A tree reduction in workgroup memory sums the invocations.
#import dispatch
#import matmul_wq_params

override WG: u32 = 64u;

var<workgroup> partial: array<f32, WG * ROWS>;

fn hsum(v: vec4<f32>) -> f32 {
    return (v.x + v.y) + (v.z + v.w);
}

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
