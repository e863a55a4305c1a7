// ceiling_dot4: peak packed int8 dot products. Each invocation runs ITERS rounds over 8
// independent accumulators of dot4I8Packed (4 multiplies + 4 adds = 8 ops each).
requires packed_4x8_integer_dot_product;
#import dispatch

@group(0) @binding(0) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_workgroup(wid, nwg) * 256u + lid.x;
    var a = array<u32, 8>(i, i ^ 0x01020304u, i + 7u, i * 3u, i ^ 0x7f7f7f7fu, i + 99u, ~i, i << 3u);
    var acc = array<i32, 8>(0, 0, 0, 0, 0, 0, 0, 0);
    var b = 0x03fd02feu ^ i;
    for (var it = 0u; it < ITERS; it++) {
        b += 0x01010101u; // varies per round, so no product can be hoisted out of the loop
        acc[0] = acc[0] + dot4I8Packed(a[0], b); acc[1] = acc[1] + dot4I8Packed(a[1], b);
        acc[2] = acc[2] + dot4I8Packed(a[2], b); acc[3] = acc[3] + dot4I8Packed(a[3], b);
        acc[4] = acc[4] + dot4I8Packed(a[4], b); acc[5] = acc[5] + dot4I8Packed(a[5], b);
        acc[6] = acc[6] + dot4I8Packed(a[6], b); acc[7] = acc[7] + dot4I8Packed(a[7], b);
    }
    out[i] = f32(acc[0] + acc[1] + acc[2] + acc[3] + acc[4] + acc[5] + acc[6] + acc[7]);
}
