// Weight decoding, ggml Q4_K. A super-block of 256 values is 8 blocks of 32; its 35 words
// of `w` are ggml's 128 bytes of nibbles (chunk c = words 8c..8c+8 holds block 2c in its
// low nibbles, block 2c+1 in its high ones; word i of a chunk: values 4i..4i+3) then the
// 12 bytes of 6-bit scales and mins; its word of `s` holds d (low half) and dmin (high)
// as f16. value = (d * scale) * q - dmin * min, i.e. block_scale() = (d * scale, -dmin * min).
const SUPER_WORDS: u32 = 35u;

fn decode(g: u32, j: u32) -> vec4<f32> {
    let sub = g % 8u;
    let v = w[(g / 8u) * SUPER_WORDS + (sub / 2u) * 8u + j] >> ((sub % 2u) * 4u);
    return vec4<f32>(vec4(v, v >> 8u, v >> 16u, v >> 24u) & vec4(0xfu));
}

// Byte i of the super-block's 12 scale bytes.
fn scale_byte(base: u32, i: u32) -> u32 {
    return (w[base + 32u + i / 4u] >> (8u * (i % 4u))) & 0xffu;
}

fn block_scale(g: u32) -> vec2<f32> {
    let sb = g / 8u;
    let j = g % 8u;
    let base = sb * SUPER_WORDS;
    var sc: u32;
    var mn: u32;
    if j < 4u {
        sc = scale_byte(base, j) & 63u;
        mn = scale_byte(base, j + 4u) & 63u;
    } else {
        let b = scale_byte(base, j + 4u);
        sc = (b & 0xfu) | ((scale_byte(base, j - 4u) >> 6u) << 4u);
        mn = (b >> 4u) | ((scale_byte(base, j) >> 6u) << 4u);
    }
    let dm = unpack2x16float(s[sb]);
    return vec2(dm.x * f32(sc), -dm.y * f32(mn));
}

#import block_lazy
