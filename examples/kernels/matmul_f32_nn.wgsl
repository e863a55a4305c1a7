// matmul_f32_nn: C = A * B, f32, B stored k x n. One output per invocation, straight from
// global memory: the minimal correct kernel of its op. Copy it, make it fast, and run
// `wgpu-lab kernel` on your copy (docs/kernel-lab.md has the contract).
//
// lab: op = matmul_nn
// lab: precision = f32
// lab: tile = WG_Y x WG_X
// lab: tune WG_X = 4, 8, 16, 32
// lab: tune WG_Y = 1, 2, 4, 8

// The contract of matmul_nn and matmul_nt at f32 (the built-ins' MatmulParams).
struct Params {
    m: u32,       // rows of A and C
    n: u32,       // columns of B and C
    k: u32,       // the inner dimension
    tiles_n: u32, // workgroup tiles along n: ceil(n / tile columns)
    tiles: u32,   // workgroup tiles in all
    lda: u32,     // row stride of A (k rounded up to 4; the padding is zeros)
    ldb: u32,     // row stride of B (n rounded up to 4 here; k rounded up to 4 for nt)
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>; // m rows of n

override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;

@compute @workgroup_size(WG_X, WG_Y)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    // More than 65535 workgroups come as a 2-D grid: recover the tile, skip the extras.
    let tile = wid.x + wid.y * nwg.x;
    if tile >= p.tiles {
        return;
    }
    let row = (tile / p.tiles_n) * WG_Y + lid.y;
    let col = (tile % p.tiles_n) * WG_X + lid.x;
    if row >= p.m || col >= p.n {
        return;
    }
    var acc = 0.0;
    for (var kk = 0u; kk < p.k; kk++) {
        acc = fma(a[row * p.lda + kk], b[kk * p.ldb + col], acc);
    }
    c[row * p.n + col] = acc;
}
