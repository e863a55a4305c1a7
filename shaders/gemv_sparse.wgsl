// gemv_sparse: y = W x for one activation row (decode), W in the N:M-compressed layout
// (src/formats/sparse.rs): each row's kept values in blocks of 32 of any weights module's
// format, and a mask per group of NM_M. Read directly, never densified.
//
// A workgroup of WG invocations owns one weight row. Invocation t walks kept blocks t,
// t+WG, ...: it decodes each block (weights_<format>: decode, block_scale), finds each
// kept value's column from the masks, gathers those x values and applies the block's scale
// once: d (x . q) + m (sum x). A tree reduction in workgroup memory sums the invocations.
#import dispatch
#import sparse_params
#import sparse_in_storage
#import sparse_walk
#import hsum

override WG: u32 = 64u;

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    // Uniform across the workgroup, so the early return keeps barriers legal.
    let row = linear_workgroup(wid, nwg);
    if row >= p.tiles {
        return;
    }
    let mrow0 = row * p.mwords;
    var acc = 0.0;
    for (var blk = lid.x; blk < p.nblk; blk += WG) {
        let g = row * p.nblk + blk;
        var wk = walker_at(mrow0, blk * 32u);
        let b = load_block(g);
        var dot = vec4(0.0);
        var xs = vec4(0.0);
        for (var j = 0u; j < 8u; j++) {
            let xv = gather4(0u, walk4(&wk, mrow0));
            dot = fma(xv, decode_in(b, j), dot);
            xs += xv;
        }
        let sc = block_scale(g);
        acc += sc.x * hsum(dot) + sc.y * hsum(xs);
    }
    partial[lid.x] = acc;
    workgroupBarrier();
    for (var h = WG / 2u; h > 0u; h /= 2u) {
        if lid.x < h {
            partial[lid.x] += partial[lid.x + h];
        }
        workgroupBarrier();
    }
    if lid.x == 0u {
        c[row] = partial[0];
    }
}
