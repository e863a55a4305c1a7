// matmul_f16acc: C = A * W^T with both operands stored as f16 AND f16 accumulation
// (needs SHADER_F16). The fastest and least accurate float path: each vec4<f16>
// accumulator sums k/4 products in half precision. Register-blocked like
// matmul_regblock's nt entry point; the host pads k to a multiple of 4 with zeros.
enable f16;
#import dispatch
#import regblock_rows

// Keep in sync with `F16AccParams` in src/kernels/matmul_f16acc.rs.
struct F16AccParams {
    m: u32,
    n: u32,
    // k padded to a multiple of 4.
    kp: u32,
    tiles_n: u32,
    tiles: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

override WG_X: u32 = 16u;

@group(0) @binding(0) var<uniform> p: F16AccParams;
@group(0) @binding(1) var<storage, read> a: array<vec4<f16>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f16>>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

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
    let wrow = block_cols(col0, p.n, k4);

    var acc: array<vec4<f16>, TM * TN>;
    for (var kq = 0u; kq < k4; kq++) {
        var wv: array<vec4<f16>, TN>;
        for (var j = 0u; j < TN; j++) {
            wv[j] = w[wrow[j] + kq];
        }
        for (var i = 0u; i < TM; i++) {
            let av = a[arow[i] + kq];
            for (var j = 0u; j < TN; j++) {
                acc[i * TN + j] = fma(av, wv[j], acc[i * TN + j]);
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
