// matmul_sparse: C (m x n) = A (m x k) * W^T, W in the N:M-compressed layout
// (src/formats/sparse.rs), read directly (prefill).
//
// A workgroup is WG_X invocations along n; each invocation owns one weight row and TM
// activation rows. Per kept block it decodes the block once and walks its masks once;
// the dense columns it finds serve all TM rows, whose A values are gathered at them.
// The prefix imports an output epilogue (`epilogue_none`, or a linear layer's bias and
// GELU, whose bias binds at 6).
#import dispatch
#import sparse_params
#import sparse_in_storage
#import sparse_walk
#import hsum

override WG_X: u32 = 64u;

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
    let arow0 = (tile / p.tiles_n) * TM;
    let col = (tile % p.tiles_n) * WG_X + lid.x;
    // Past-the-end invocations repeat the last row and store nothing.
    let row = min(col, p.n - 1u);
    let mrow0 = row * p.mwords;
    var aoff: array<u32, TM>;
    for (var i = 0u; i < TM; i++) {
        aoff[i] = min(arow0 + i, p.m - 1u) * p.k;
    }
    var acc: array<f32, TM>;
    for (var blk = 0u; blk < p.nblk; blk++) {
        let g = row * p.nblk + blk;
        var wk = walker_at(mrow0, blk * 32u);
        let b = load_block(g);
        var dot: array<vec4<f32>, TM>;
        var xs: array<vec4<f32>, TM>;
        for (var j = 0u; j < 8u; j++) {
            let cols = walk4(&wk, mrow0);
            let q = decode_in(b, j);
            for (var i = 0u; i < TM; i++) {
                let xv = gather4(aoff[i], cols);
                dot[i] = fma(xv, q, dot[i]);
                xs[i] += xv;
            }
        }
        let sc = block_scale(g);
        for (var i = 0u; i < TM; i++) {
            acc[i] += sc.x * hsum(dot[i]) + sc.y * hsum(xs[i]);
        }
    }
    if col < p.n {
        for (var i = 0u; i < TM; i++) {
            if arow0 + i < p.m {
                c[(arow0 + i) * p.n + col] = epilogue(acc[i], col);
            }
        }
    }
}
