// matmul_q6_k_nt: C = A * W^T, W n x k in ggml's Q6_K (super-blocks of 256 values: 4 low
// and 2 high bits per code, 16 int8 scales, an f16 d; value = d * scale * (code - 32)).
// One output per invocation, a block at a time: the minimal correct kernel of its op.
// docs/kernel-lab.md has the contract.
//
// lab: op = matmul_nt
// lab: precision = q6_k
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
// Super-block sb = (row * nblk + b) / 8 is words 52 sb .. 52 sb + 51: ggml's ql (128
// bytes), qh (64 bytes) and 16 int8 scales, each in ggml's byte order.
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> s: array<u32>;       // d of super-block sb: f16 half sb % 2 of word sb / 2
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
        let base = sb * 52u;
        // Block b of the super-block: half h, quarter q (ggml's dequantize_row_q6_K).
        let b = g % 8u;
        let h = b / 4u;
        let q = b % 4u;
        let d = unpack2x16float(s[sb / 2u])[sb % 2u];
        let a0 = row * p.kp + blk * 32u;
        for (var l = 0u; l < 32u; l++) {
            let lo = (byte_at(base, 64u * h + 32u * (q % 2u) + l) >> (4u * (q / 2u))) & 0xfu;
            let hi = (byte_at(base, 128u + 32u * h + l) >> (2u * q)) & 3u;
            let sc = bitcast<i32>(byte_at(base, 192u + 8u * h + 2u * q + l / 16u) << 24u) >> 24u;
            acc += a[a0 + l] * d * f32(sc) * (f32(lo | (hi << 4u)) - 32.0);
        }
    }
    c[row * p.ldc + p.col0 + col] = acc;
}

// Byte i of super-block `base` (ql at 0, qh at 128, scales at 192).
fn byte_at(base: u32, i: u32) -> u32 {
    return (w[base + i / 4u] >> (8u * (i % 4u))) & 0xffu;
}
