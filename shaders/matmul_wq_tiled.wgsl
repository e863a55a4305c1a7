// matmul_wq_tiled: C = A * W^T with f32 activations and weights in any storage format (the
// prefix imports `weights_<format>`: decode() and block_scale() of a block of 32), shaped
// like every fast GPU GEMM:
// - a workgroup owns a BM x BN tile of C, with (BM / TM) x (BN / TN) invocations, each
//   accumulating TM x TN outputs in registers (rows ty + i * TY, columns tx + j * TX, so
//   neighbouring invocations write neighbouring columns);
// - per step along k, KV vec4s (4 KV values) of the tile's A rows and W rows are staged in
//   workgroup memory (coalesced 16-byte loads: k is the contiguous axis of both operands in
//   this layout). W is decoded and scaled once as it is staged, so the decode cost is
//   shared by BM rows, not paid per output;
// - staged rows are KV + 1 vec4 apart: the pad spreads a quarter-warp's 16-byte reads of
//   neighbouring rows over all banks.
// Out-of-range rows and columns are clamped on load and not written.
#import dispatch
#import tile_shape
#import matmul_wq_params

var<workgroup> sa: array<vec4<f32>, BM * STRIDE>;
var<workgroup> sw: array<vec4<f32>, BN * STRIDE>;

@compute @workgroup_size(THREADS)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    // Uniform across the workgroup, so the early return keeps barriers legal.
    let tile = linear_workgroup(wid, nwg);
    if tile >= p.tiles {
        return;
    }
    let origin = tile_origin(tile, li);
    let row0 = origin.x;
    let col0 = origin.y;
    let tx = origin.z;
    let ty = origin.w;
    let k4 = p.kp / 4u;

    var acc: array<f32, TM * TN>;
    for (var kv0 = 0u; kv0 < k4; kv0 += KV) {
        for (var e = li; e < BM * KV; e += THREADS) {
            let r = e / KV;
            let v = e % KV;
            var x = vec4(0.0);
            if kv0 + v < k4 {
                x = a[min(row0 + r, p.m - 1u) * k4 + kv0 + v];
            }
            sa[r * STRIDE + v] = x;
        }
        for (var e = li; e < BN * KV; e += THREADS) {
            let n_in = e / KV;
            let v = e % KV;
            var x = vec4(0.0);
            if kv0 + v < k4 {
                // vec4 (kv0 + v) % 8 of block (kv0 + v) / 8 of this weight row.
                let g = min(col0 + n_in, p.n - 1u) * p.nblk + (kv0 + v) / 8u;
                let sc = block_scale(g);
                x = fma(decode(g, (kv0 + v) % 8u), vec4(sc.x), vec4(sc.y));
            }
            sw[n_in * STRIDE + v] = x;
        }
        workgroupBarrier();
        for (var v = 0u; v < KV; v++) {
            var av: array<vec4<f32>, TM>;
            for (var i = 0u; i < TM; i++) {
                av[i] = sa[(ty + i * TY) * STRIDE + v];
            }
            for (var j = 0u; j < TN; j++) {
                let wv = sw[(tx + j * TX) * STRIDE + v];
                for (var i = 0u; i < TM; i++) {
                    acc[i * TN + j] += dot(av[i], wv);
                }
            }
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < TM; i++) {
        let row = row0 + ty + i * TY;
        if row < p.m {
            for (var j = 0u; j < TN; j++) {
                let col = col0 + tx + j * TX;
                if col < p.n {
                    c[row * p.ldc + p.col0 + col] = epilogue(acc[i * TN + j], col);
                }
            }
        }
    }
}
