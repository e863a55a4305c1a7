// matmul_q4_0_nt: C = A * W^T, W n x k in ggml's Q4_0 (blocks of 32 values: an f16 scale d
// and 16 bytes of 4-bit codes; value = d * (code - 8)). One output per invocation, a block
// at a time: the minimal correct kernel of its op. docs/kernel-lab.md has the contract.
//
// lab: op = matmul_nt
// lab: precision = q4_0
// lab: tile = WG_Y x WG_X
// lab: tune WG_X = 4, 8, 16, 32, 64
// lab: tune WG_Y = 1, 2, 4, 8

// The contract of matmul_nt with a weight format (the built-ins' WqParams).
struct Params {
    m: u32,       // rows of A and C
    n: u32,       // rows of W, columns of C
    kp: u32,      // k padded with zeros to whole blocks (A's row stride)
    nblk: u32,    // blocks of 32 per row of W: kp / 32
    tiles_n: u32, // workgroup tiles along n: ceil(n / tile columns)
    tiles: u32,   // workgroup tiles in all
    ldc: u32,     // row stride of C (n)
    col0: u32,    // first column of C to write (0)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;       // m rows of kp
// Block g = row * nblk + b is words 4g .. 4g + 3: ggml's 16 code bytes, byte 0 lowest.
// Byte i holds value i in its low nibble and value i + 16 in its high nibble.
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> s: array<u32>;       // d of block g: f16 half g % 2 of word g / 2
@group(0) @binding(4) var<storage, read_write> c: array<f32>; // m rows of ldc

override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;

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
    var acc = 0.0;
    for (var blk = 0u; blk < p.nblk; blk++) {
        let g = col * p.nblk + blk;
        let d = unpack2x16float(s[g / 2u])[g % 2u];
        let a0 = row * p.kp + blk * 32u;
        var part = 0.0;
        for (var i = 0u; i < 16u; i++) {
            let byte = (w[g * 4u + i / 4u] >> (8u * (i % 4u))) & 0xffu;
            part += a[a0 + i] * (f32(byte & 0xfu) - 8.0);
            part += a[a0 + i + 16u] * (f32(byte >> 4u) - 8.0);
        }
        acc += d * part;
    }
    c[row * p.ldc + p.col0 + col] = acc;
}
