// matmul_q4_k_nt: C = A * W^T, W n x k in ggml's Q4_K (super-blocks of 256 values: f16 d
// and dmin, eight 6-bit scales and mins, 128 bytes of 4-bit codes; value of block j = d *
// scale_j * code - dmin * min_j). One output per invocation, a block at a time: the
// minimal correct kernel of its op. docs/kernel-lab.md has the contract.
//
// lab: op = matmul_nt
// lab: precision = q4_k
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
// Super-block sb = (row * nblk + b) / 8 is words 35 sb .. 35 sb + 34: ggml's 128 code
// bytes (bytes 32c .. 32c + 31 hold block 2c in their low nibbles, block 2c + 1 in their
// high nibbles, value i of a block in byte i), then its 12 bytes of packed scales and mins.
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> s: array<u32>;       // super-block sb: d in the low half, dmin in the high half (f16)
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
        let sb = g / 8u;
        let j = g % 8u;
        let base = sb * 35u;
        let sm = scale_min(base, j);
        let dm = unpack2x16float(s[sb]);
        let a0 = row * p.kp + blk * 32u;
        var part = 0.0;
        var asum = 0.0;
        for (var i = 0u; i < 32u; i++) {
            let code = (w[base + (j / 2u) * 8u + i / 4u] >> (8u * (i % 4u) + 4u * (j % 2u))) & 0xfu;
            part += a[a0 + i] * f32(code);
            asum += a[a0 + i];
        }
        acc += dm.x * sm.x * part - dm.y * sm.y * asum;
    }
    c[row * p.ldc + p.col0 + col] = acc;
}

// Byte i of super-block `base`'s 12 scale bytes.
fn scale_byte(base: u32, i: u32) -> u32 {
    return (w[base + 32u + i / 4u] >> (8u * (i % 4u))) & 0xffu;
}

// Block j's 6-bit scale and min (ggml's get_scale_min_k4).
fn scale_min(base: u32, j: u32) -> vec2<f32> {
    if j < 4u {
        return vec2(f32(scale_byte(base, j) & 63u), f32(scale_byte(base, j + 4u) & 63u));
    }
    let b = scale_byte(base, j + 4u);
    let sc = (b & 0xfu) | ((scale_byte(base, j - 4u) >> 6u) << 4u);
    let mn = (b >> 4u) | ((scale_byte(base, j) >> 6u) << 4u);
    return vec2(f32(sc), f32(mn));
}
