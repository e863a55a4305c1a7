// matmul_i8_tiled: W8A8 (as matmul_i8) shaped like matmul_wq_tiled. A workgroup owns a
// BM x BN tile of C with (BM / TM) x (BN / TN) invocations, each accumulating TM x TN
// outputs (rows ty + i * TY, columns tx + j * TX). Per step along k, KV vec4<u32> (16 int8
// each; KV even, so steps are whole 32-value blocks) of the tile's activation and weight
// rows are staged in workgroup memory, rows KV + 1 apart (the pad spreads neighbouring
// rows over the banks). Sums are exact i32 (dot4()); with BLOCKS (Rot32) each 32-value
// block's sum is scaled by its two scales into an f32 accumulator as in matmul_i8.
#import dispatch
#import tile_shape
#import int8_params

@group(0) @binding(0) var<uniform> p: I8Params;
@group(0) @binding(1) var<storage, read> aq: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> sa: array<f32>;
@group(0) @binding(3) var<storage, read> wq: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> sw: array<f32>;
@group(0) @binding(5) var<storage, read_write> c: array<f32>;

var<workgroup> ta: array<vec4<u32>, BM * STRIDE>;
var<workgroup> tw: array<vec4<u32>, BN * STRIDE>;

fn dot16(a: vec4<u32>, b: vec4<u32>) -> i32 {
    return dot4(a.x, b.x) + dot4(a.y, b.y) + dot4(a.z, b.z) + dot4(a.w, b.w);
}

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
    let k16 = p.kp / 16u;
    let blocks = p.kp / 32u;

    var acc: array<i32, TM * TN>;
    var facc: array<f32, TM * TN>;
    for (var kv0 = 0u; kv0 < k16; kv0 += KV) {
        for (var e = li; e < BM * KV; e += THREADS) {
            let r = e / KV;
            let v = e % KV;
            var x = vec4(0u);
            if kv0 + v < k16 {
                x = aq[min(row0 + r, p.m - 1u) * k16 + kv0 + v];
            }
            ta[r * STRIDE + v] = x;
        }
        for (var e = li; e < BN * KV; e += THREADS) {
            let r = e / KV;
            let v = e % KV;
            var x = vec4(0u);
            if kv0 + v < k16 {
                x = wq[min(col0 + r, p.n - 1u) * k16 + kv0 + v];
            }
            tw[r * STRIDE + v] = x;
        }
        workgroupBarrier();
        for (var v = 0u; v < KV; v++) {
            var av: array<vec4<u32>, TM>;
            for (var i = 0u; i < TM; i++) {
                av[i] = ta[(ty + i * TY) * STRIDE + v];
            }
            for (var j = 0u; j < TN; j++) {
                let w = tw[(tx + j * TX) * STRIDE + v];
                for (var i = 0u; i < TM; i++) {
                    acc[i * TN + j] += dot16(av[i], w);
                }
            }
            let kk = kv0 + v;
            if BLOCKS && (kk & 1u) == 1u && kk < k16 {
                // A 32-value block is complete: scale its exact sum into the f32 accumulator.
                let b = kk / 2u;
                for (var i = 0u; i < TM; i++) {
                    let s_a = sa[min(row0 + ty + i * TY, p.m - 1u) * blocks + b];
                    for (var j = 0u; j < TN; j++) {
                        let s_w = sw[min(col0 + tx + j * TX, p.n - 1u) * blocks + b];
                        facc[i * TN + j] += f32(acc[i * TN + j]) * (s_a * s_w);
                        acc[i * TN + j] = 0;
                    }
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
                    var out: f32;
                    if BLOCKS {
                        out = facc[i * TN + j];
                    } else {
                        out = f32(acc[i * TN + j]) * sa[row] * sw[col];
                    }
                    c[row * p.n + col] = epilogue(out, col);
                }
            }
        }
    }
}
