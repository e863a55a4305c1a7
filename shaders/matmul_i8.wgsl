// matmul_i8: W8A8. C = (Aq * Wq^T) * sa[row] * sw[col], int8 operands packed four per u32,
// exact i32 accumulation with dot4() (imported: dot4I8Packed or the shift fallback).
// With BLOCKS (the Rot32 scheme of src/formats/int8.rs) every 32 values have their own
// scales: the exact i32 sum of each block is scaled by sa[row][b] * sw[col][b] and
// accumulated in f32. BLOCKS is a const, so the per-row kernel compiles as before.
// Register-blocked like matmul_wq: a workgroup is a row of WG_X invocations, each owning
// TM activation rows x TN weight rows; 16 int8 per vec4<u32> load.
#import dispatch
#import int8_params

override WG_X: u32 = 16u;

@group(0) @binding(0) var<uniform> p: I8Params;
@group(0) @binding(1) var<storage, read> aq: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> sa: array<f32>;
@group(0) @binding(3) var<storage, read> wq: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> sw: array<f32>;
@group(0) @binding(5) var<storage, read_write> c: array<f32>;

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
    let k16 = p.kp / 16u;

    // Written out rather than with row-offset helper functions: with them this kernel measured
    // ~10% slower on lavapipe (97 vs 106-110 ms at 1024^3), the others unchanged.
    // sarow/swrow (where a row's block scales start) serve BLOCKS only.
    let blocks = p.kp / 32u;
    var arow: array<u32, TM>;
    var sarow: array<u32, TM>;
    for (var i = 0u; i < TM; i++) {
        let r = min(row0 + i, p.m - 1u);
        arow[i] = r * k16;
        sarow[i] = r * blocks;
    }
    var wrow: array<u32, TN>;
    var swrow: array<u32, TN>;
    for (var j = 0u; j < TN; j++) {
        let r = min(col0 + j * WG_X, p.n - 1u);
        wrow[j] = r * k16;
        swrow[j] = r * blocks;
    }

    var acc: array<i32, TM * TN>;
    var facc: array<f32, TM * TN>;
    for (var kk = 0u; kk < k16; kk++) {
        var wv: array<vec4<u32>, TN>;
        for (var j = 0u; j < TN; j++) {
            wv[j] = wq[wrow[j] + kk];
        }
        for (var i = 0u; i < TM; i++) {
            let av = aq[arow[i] + kk];
            for (var j = 0u; j < TN; j++) {
                let w = wv[j];
                acc[i * TN + j] += dot4(av.x, w.x) + dot4(av.y, w.y) + dot4(av.z, w.z)
                    + dot4(av.w, w.w);
            }
        }
        if BLOCKS && (kk & 1u) == 1u {
            // A 32-value block is complete: scale its exact sum into the f32 accumulator.
            let b = kk / 2u;
            var s_w: array<f32, TN>;
            for (var j = 0u; j < TN; j++) {
                s_w[j] = sw[swrow[j] + b];
            }
            for (var i = 0u; i < TM; i++) {
                let s_a = sa[sarow[i] + b];
                for (var j = 0u; j < TN; j++) {
                    facc[i * TN + j] += f32(acc[i * TN + j]) * (s_a * s_w[j]);
                    acc[i * TN + j] = 0;
                }
            }
        }
    }

    for (var i = 0u; i < TM; i++) {
        let row = row0 + i;
        if row < p.m {
            for (var j = 0u; j < TN; j++) {
                let col = col0 + j * WG_X;
                if col < p.n {
                    var v: f32;
                    if BLOCKS {
                        v = facc[i * TN + j];
                    } else {
                        v = f32(acc[i * TN + j]) * sa[row] * sw[col];
                    }
                    c[row * p.n + col] = epilogue(v, col);
                }
            }
        }
    }
}
