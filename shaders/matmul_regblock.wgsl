// matmul_regblock: register blocking over vec4 operands.
//
// The host pads A to m x k4*4 and B to whole vec4s along its contiguous axis (zeros add
// nothing), so every load is a vec4. The workgroup is one row of WG_X invocations along n:
// the rows of A it reads depend on the workgroup id alone, so every A load is uniform
// across the SIMD lanes (one load and a broadcast on CPU adapters, a broadcast on GPUs),
// and lane i reads B columns next to lane i+1's.
// Each invocation accumulates TM rows x TN column groups (TN vec4s in nn, TN columns in nt)
// in registers. TM, TN and the element type ELEM come from the variant prefix: ELEM = f32
// for the f32 kernels (src/kernels/matmul.rs), ELEM = f16 with f16 operands for the f16acc
// precision (src/kernels/matmul_f16acc.rs: A, B and the accumulators in half precision).
#import dispatch
#import matmul_params
#import regblock_rows

override WG_X: u32 = 16u;

@group(0) @binding(1) var<storage, read> a: array<vec4<ELEM>>;
// B (binding 2) and load_b() -> vec4<ELEM> come from the prefix: regblock_b_f32,
// regblock_b_f16 (f16 storage unpacked to f32) or regblock_b_f16acc (f16 arithmetic).
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

// Layout nn: B is k x n, stored (k4*4) x (ldb/4) vec4s. Lane owns columns
// 4*(col4 + j*WG_X) .. +3 for j < TN.
@compute @workgroup_size(WG_X)
fn main_nn(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let tile = linear_workgroup(wid, nwg);
    if tile >= p.tiles {
        return;
    }
    let row0 = (tile / p.tiles_n) * TM;
    let col4 = (tile % p.tiles_n) * (WG_X * TN) + lid.x;
    let lda4 = p.lda / 4u;
    let ldb4 = p.ldb / 4u;
    let k4 = lda4;

    let arow = block_rows(row0, p.m, lda4);
    let bcol = block_cols(col4, ldb4, 1u);

    var acc: array<vec4<ELEM>, TM * TN>;
    for (var kq = 0u; kq < k4; kq++) {
        var bv: array<vec4<ELEM>, 4 * TN>;
        for (var s = 0u; s < 4u; s++) {
            for (var j = 0u; j < TN; j++) {
                bv[s * TN + j] = load_b((kq * 4u + s) * ldb4 + bcol[j]);
            }
        }
        for (var i = 0u; i < TM; i++) {
            let av = a[arow[i] + kq];
            for (var j = 0u; j < TN; j++) {
                var t = acc[i * TN + j];
                t = fma(vec4(av.x), bv[j], t);
                t = fma(vec4(av.y), bv[TN + j], t);
                t = fma(vec4(av.z), bv[2u * TN + j], t);
                t = fma(vec4(av.w), bv[3u * TN + j], t);
                acc[i * TN + j] = t;
            }
        }
    }

    for (var i = 0u; i < TM; i++) {
        let row = row0 + i;
        if row < p.m {
            for (var j = 0u; j < TN; j++) {
                let col = (col4 + j * WG_X) * 4u;
                let v = acc[i * TN + j];
                for (var e = 0u; e < 4u; e++) {
                    if col + e < p.n {
                        c[row * p.n + col + e] = f32(v[e]);
                    }
                }
            }
        }
    }
}

// Layout nt: B is n x k, stored n x (ldb/4) vec4s. Lane owns columns col + j*WG_X, j < TN;
// each output is a running sum of vec4 dot products along k.
@compute @workgroup_size(WG_X)
fn main_nt(
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
    let lda4 = p.lda / 4u;
    let ldb4 = p.ldb / 4u;

    let arow = block_rows(row0, p.m, lda4);
    let brow = block_cols(col0, p.n, ldb4);

    var acc: array<vec4<ELEM>, TM * TN>;
    for (var kq = 0u; kq < lda4; kq++) {
        var bv: array<vec4<ELEM>, TN>;
        for (var j = 0u; j < TN; j++) {
            bv[j] = load_b(brow[j] + kq);
        }
        for (var i = 0u; i < TM; i++) {
            let av = a[arow[i] + kq];
            for (var j = 0u; j < TN; j++) {
                acc[i * TN + j] = fma(av, bv[j], acc[i * TN + j]);
            }
        }
    }

    for (var i = 0u; i < TM; i++) {
        let row = row0 + i;
        if row < p.m {
            for (var j = 0u; j < TN; j++) {
                let col = col0 + j * WG_X;
                if col < p.n {
                    let v = acc[i * TN + j];
                    c[row * p.n + col] = f32((v.x + v.y) + (v.z + v.w));
                }
            }
        }
    }
}
