// matmul_wq: C = A * W^T with f32 activations and weights in any storage format
// (every WeightFormat; the variant prefix imports the matching `weights_<format>`
// module, which defines decode() and block_scale() of a block of 32 values).
//
// Register-blocked like matmul_regblock (nt): a workgroup is one row of WG_X invocations;
// each invocation owns TM activation rows x TN weight rows. Per block of 32 values it
// accumulates unscaled dot products a . q and the activation sum, then applies the block's
// scale once: sum_block(a * (d q + m)) = d (a . q) + m (sum a).
#import dispatch
#import matmul_wq_params
#import regblock_rows

override WG_X: u32 = 16u;

#import hsum

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
    let k4 = p.kp / 4u;

    let arow = block_rows(row0, p.m, k4);
    let wblk = block_cols(col0, p.n, p.nblk);

    var acc: array<f32, TM * TN>;
    for (var blk = 0u; blk < p.nblk; blk++) {
        var part: array<vec4<f32>, TM * TN>;
        var asum: array<vec4<f32>, TM>;
        // Each weight row's block is loaded once (`load_block`), then decoded vec4 by vec4.
        var wb: array<Block, TN>;
        for (var j = 0u; j < TN; j++) {
            wb[j] = load_block(wblk[j] + blk);
        }
        for (var v = 0u; v < 8u; v++) {
            var q: array<vec4<f32>, TN>;
            for (var j = 0u; j < TN; j++) {
                q[j] = decode_in(wb[j], v);
            }
            for (var i = 0u; i < TM; i++) {
                let a4 = a[arow[i] + blk * 8u + v];
                asum[i] += a4;
                for (var j = 0u; j < TN; j++) {
                    part[i * TN + j] = fma(a4, q[j], part[i * TN + j]);
                }
            }
        }
        for (var j = 0u; j < TN; j++) {
            let sc = block_scale(wblk[j] + blk);
            for (var i = 0u; i < TM; i++) {
                acc[i * TN + j] += sc.x * hsum(part[i * TN + j]) + sc.y * hsum(asum[i]);
            }
        }
    }

    for (var i = 0u; i < TM; i++) {
        let row = row0 + i;
        if row < p.m {
            for (var j = 0u; j < TN; j++) {
                let col = col0 + j * WG_X;
                if col < p.n {
                    c[row * p.ldc + p.col0 + col] = epilogue(acc[i * TN + j], col);
                }
            }
        }
    }
}
