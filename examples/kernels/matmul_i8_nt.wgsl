// matmul_i8_nt: W8A8. C = (Aq * Wq^T) * sa[row] * sw[col]: int8 activations with a scale
// per row times int8 weights (n x k) with a scale per row, an exact i32 sum, then the two
// scales. One output per invocation: the minimal correct kernel of its op. docs/kernel-
// lab.md has the contract.
//
// lab: op = matmul_i8
// lab: precision = int8
// lab: tile = WG_Y x WG_X
// lab: tune WG_X = 4, 8, 16, 32, 64
// lab: tune WG_Y = 1, 2, 4, 8

// The contract of matmul_i8 (the built-ins' I8Params).
struct Params {
    m: u32,       // rows of A and C
    n: u32,       // rows of W, columns of C
    k: u32,       // the inner dimension
    kp: u32,      // k padded with zeros to a multiple of 32: rows hold kp / 4 words
    tiles_n: u32, // workgroup tiles along n: ceil(n / tile columns)
    tiles: u32,   // workgroup tiles in all
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> aq: array<u32>;      // m rows of kp / 4 words, 4 int8 each, byte 0 lowest
@group(0) @binding(2) var<storage, read> sa: array<f32>;      // A's scale per row
@group(0) @binding(3) var<storage, read> wq: array<u32>;      // n rows of kp / 4 words
@group(0) @binding(4) var<storage, read> sw: array<f32>;      // W's scale per row
@group(0) @binding(5) var<storage, read_write> c: array<f32>; // m rows of n

override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;

// The four int8 of a word, sign-extended.
fn bytes(v: u32) -> vec4<i32> {
    return bitcast<vec4<i32>>(vec4(v << 24u, v << 16u, v << 8u, v)) >> vec4(24u);
}

@compute @workgroup_size(WG_X, WG_Y)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let tile = wid.x + wid.y * nwg.x;
    if tile >= p.tiles {
        return;
    }
    let row = (tile / p.tiles_n) * WG_Y + lid.y;
    let col = (tile % p.tiles_n) * WG_X + lid.x;
    if row >= p.m || col >= p.n {
        return;
    }
    let words = p.kp / 4u;
    var acc = 0;
    for (var i = 0u; i < words; i++) {
        acc += dot(bytes(aq[row * words + i]), bytes(wq[col * words + i]));
    }
    c[row * p.n + col] = f32(acc) * sa[row] * sw[col];
}
