// Weight decoding, ggml Q6_K. A super-block of 256 values is 8 blocks of 32; its 52 words
// of `w` are ggml's ql (32 words), qh (16 words) and 16 int8 scales (4 words), each in
// ggml's byte order; its d (f16) is in `s`, two super-blocks per word. Block b of a
// super-block is half h = b / 4, group q = b % 4: low nibbles from ql bytes
// 64h + 32 (q % 2) + l at shift 4 (q / 2), high 2 bits from qh bytes 32h + l at shift 2q,
// scale 8h + 2q + l / 16. decode() returns (code - 32) * scale, since a block of 32 has two
// scales; block_scale() = (d, 0).
const SUPER_WORDS: u32 = 52u;

fn decode(g: u32, j: u32) -> vec4<f32> {
    let b = g % 8u;
    let h = b / 4u;
    let q = b % 4u;
    let base = (g / 8u) * SUPER_WORDS;
    let lo = w[base + 16u * h + 8u * (q % 2u) + j] >> (4u * (q / 2u));
    let hi = w[base + 32u + 8u * h + j] >> (2u * q);
    let code = (vec4(lo, lo >> 8u, lo >> 16u, lo >> 24u) & vec4(0xfu))
        | ((vec4(hi, hi >> 8u, hi >> 16u, hi >> 24u) & vec4(3u)) << vec4(4u));
    let si = 8u * h + 2u * q + j / 4u;
    let sc = bitcast<i32>(w[base + 48u + si / 4u] << (24u - 8u * (si % 4u))) >> 24u;
    return (vec4<f32>(code) - 32.0) * f32(sc);
}

fn block_scale(g: u32) -> vec2<f32> {
    let sb = g / 8u;
    return vec2(unpack2x16float(s[sb / 2u])[sb % 2u], 0.0);
}

#import block_lazy
