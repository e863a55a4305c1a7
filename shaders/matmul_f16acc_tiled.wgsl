// matmul_f16acc_tiled: the f16acc precision (f16 operands, f16 arithmetic and accumulators,
// SHADER_F16; the prefix enables f16) shaped like matmul_wq_tiled: a BM x BN tile of C per
// workgroup, (BM / TM) x (BN / TN) invocations each accumulating TM x TN outputs (rows
// ty + i * TY, columns tx + j * TX) as vec4<f16> partial sums, as matmul_regblock's f16acc
// does; per step KV vec4s along k of the tile's A and W rows staged in workgroup memory,
// rows KV + 1 apart. A is m x lda, W n x ldb (nt), both padded with zeros to whole vec4s.
#import dispatch
#import tile_shape
#import matmul_params

@group(0) @binding(1) var<storage, read> a: array<vec4<f16>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f16>>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

var<workgroup> ta: array<vec4<f16>, BM * STRIDE>;
var<workgroup> tb: array<vec4<f16>, BN * STRIDE>;

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
    let k4 = p.lda / 4u;

    var acc: array<vec4<f16>, TM * TN>;
    for (var kv0 = 0u; kv0 < k4; kv0 += KV) {
        for (var e = li; e < BM * KV; e += THREADS) {
            let r = e / KV;
            let v = e % KV;
            var x = vec4<f16>(0.0h);
            if kv0 + v < k4 {
                x = a[min(row0 + r, p.m - 1u) * k4 + kv0 + v];
            }
            ta[r * STRIDE + v] = x;
        }
        for (var e = li; e < BN * KV; e += THREADS) {
            let r = e / KV;
            let v = e % KV;
            var x = vec4<f16>(0.0h);
            if kv0 + v < k4 {
                x = b[min(col0 + r, p.n - 1u) * k4 + kv0 + v];
            }
            tb[r * STRIDE + v] = x;
        }
        workgroupBarrier();
        for (var v = 0u; v < KV; v++) {
            var av: array<vec4<f16>, TM>;
            for (var i = 0u; i < TM; i++) {
                av[i] = ta[(ty + i * TY) * STRIDE + v];
            }
            for (var j = 0u; j < TN; j++) {
                let wv = tb[(tx + j * TX) * STRIDE + v];
                for (var i = 0u; i < TM; i++) {
                    acc[i * TN + j] = fma(av[i], wv, acc[i * TN + j]);
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
                    let v = acc[i * TN + j];
                    c[row * p.n + col] = f32((v.x + v.y) + (v.z + v.w));
                }
            }
        }
    }
}
