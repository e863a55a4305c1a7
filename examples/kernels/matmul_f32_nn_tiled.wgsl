// matmul_f32_nn_tiled: C = A * B, f32, B stored k x n, through workgroup memory: each
// workgroup stages a 16 x 16 slice of A and of B per step of k, then every invocation
// reads its row and column of the slices. The example of a kernel that shares data between
// invocations (and so needs both barriers); docs/kernel-lab.md has the contract.
//
// lab: op = matmul_nn
// lab: precision = f32
// lab: tile = 16 x 16

// The contract of matmul_nn and matmul_nt at f32 (the built-ins' MatmulParams).
struct Params {
    m: u32,       // rows of A and C
    n: u32,       // columns of B and C
    k: u32,       // the inner dimension
    tiles_n: u32, // workgroup tiles along n: ceil(n / tile columns)
    tiles: u32,   // workgroup tiles in all
    lda: u32,     // row stride of A (k rounded up to 4; the padding is zeros)
    ldb: u32,     // row stride of B (n rounded up to 4)
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>; // m rows of n

const TS: u32 = 16u;
var<workgroup> ta: array<f32, 256>; // A[r0 + y][k0 + x] at y * TS + x
var<workgroup> tb: array<f32, 256>; // B[k0 + y][c0 + x] at y * TS + x

@compute @workgroup_size(16, 16)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let tile = wid.x + wid.y * nwg.x;
    if tile >= p.tiles {
        return; // the whole workgroup returns: no barrier is left waiting
    }
    let row = (tile / p.tiles_n) * TS + lid.y;
    let col = (tile % p.tiles_n) * TS + lid.x;
    var acc = 0.0;
    for (var k0 = 0u; k0 < p.k; k0 += TS) {
        // Stage the slices, zeros past the edges of A and B.
        var av = 0.0;
        if row < p.m && k0 + lid.x < p.k {
            av = a[row * p.lda + k0 + lid.x];
        }
        ta[lid.y * TS + lid.x] = av;
        var bv = 0.0;
        if k0 + lid.y < p.k && col < p.n {
            bv = b[(k0 + lid.y) * p.ldb + col];
        }
        tb[lid.y * TS + lid.x] = bv;
        workgroupBarrier(); // every slice value written before anyone reads
        for (var kk = 0u; kk < TS; kk++) {
            acc = fma(ta[lid.y * TS + kk], tb[kk * TS + lid.x], acc);
        }
        workgroupBarrier(); // every read done before the next step overwrites
    }
    if row < p.m && col < p.n {
        c[row * p.n + col] = acc;
    }
}
