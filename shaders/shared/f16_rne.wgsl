// f32 to f16 bits, rounded to nearest even, on every driver. WGSL lets pack2x16float
// round to either neighbour (the implementation's choice) and makes its result
// indeterminate past f16's range; integer arithmetic gives the CPU twin's rounding
// (half::f16::from_f32) on any adapter: ties to even, f16 subnormals, overflow to
// infinity, NaN kept NaN. Tested bit for bit against the twin (tests/shaders). Lavapipe's
// own pack2x16float happens to round to nearest even (0 of 4131 values differ there).

fn f16_bits_rne(x: f32) -> u32 {
    let b = bitcast<u32>(x);
    let sign = (b >> 16u) & 0x8000u;
    let a = b & 0x7fffffffu;
    if a >= 0x7f800000u {
        // Infinity, or a NaN kept quiet with its top payload bits.
        return sign | 0x7c00u | select(0u, 0x200u | ((a >> 13u) & 0x3ffu), a > 0x7f800000u);
    }
    if a >= 0x477ff000u {
        // From 65520 (halfway past the largest f16, 65504) up: infinity.
        return sign | 0x7c00u;
    }
    if a >= 0x38800000u {
        // A normal f16 (from 2^-14): drop 13 mantissa bits, ties to even; a carry moves
        // into the exponent as it should. Rebias the exponent from 127 to 15.
        let r = a + 0x0fffu + ((a >> 13u) & 1u);
        return sign | ((r - 0x38000000u) >> 13u);
    }
    let e = a >> 23u;
    if e < 102u {
        // Below 2^-25: under half the smallest subnormal, rounds to zero.
        return sign;
    }
    // A subnormal f16: the value in units of 2^-24, mantissa * 2^(e - 126), ties to even.
    let m = (a & 0x7fffffu) | 0x800000u;
    let shift = 126u - e;
    let q = m >> shift;
    let rest = m & ((1u << shift) - 1u);
    let half = 1u << (shift - 1u);
    let up = rest > half || (rest == half && (q & 1u) == 1u);
    return sign | (q + select(0u, 1u, up));
}

// pack2x16float's layout (x in the low half), rounded as f16_bits_rne rounds.
fn pack2x16_rne(v: vec2<f32>) -> u32 {
    return f16_bits_rne(v.x) | (f16_bits_rne(v.y) << 16u);
}
