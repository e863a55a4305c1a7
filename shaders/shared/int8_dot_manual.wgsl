// Dot product of four packed int8 pairs, unpacked by shifts: the fallback for adapters
// without packed_4x8_integer_dot_product. Same result, bit for bit.
fn dot4(a: u32, b: u32) -> i32 {
    let va = bitcast<vec4<i32>>(vec4(a << 24u, a << 16u, a << 8u, a)) >> vec4(24u);
    let vb = bitcast<vec4<i32>>(vec4(b << 24u, b << 16u, b << 8u, b)) >> vec4(24u);
    return dot(va, vb);
}
