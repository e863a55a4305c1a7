// quantize_rot32_i8: one invocation per 32-value block of an activation row. Rotates the
// block by the normalised 32-point Hadamard matrix (fast Walsh-Hadamard transform: strides
// 1, 2, 4, 8, 16, `a + b` then `a - b`, then * 1/sqrt(32)), then quantizes it with its own
// scale s = amax / 127, q = round_half_away(v / s), four int8 per u32 (element 0 in the
// lowest byte). Same operations in the same order as src/formats/int8.rs (`Rot32`).
#import dispatch
#import int8_params
#import round_half_away

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: I8Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> xq: array<u32>;
@group(0) @binding(3) var<storage, read_write> xs: array<f32>;

// 1/sqrt(32) rounded to f32, as INV_SQRT_32 in src/formats/int8.rs.
const INV_SQRT_32: f32 = 0.17677669;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let blocks = p.kp / 32u;
    let g = linear_workgroup(wid, nwg) * WG + lid.x;
    if g >= p.m * blocks {
        return;
    }
    let row = g / blocks;
    let col0 = (g % blocks) * 32u;
    var v: array<f32, 32>;
    for (var j = 0u; j < 32u; j++) {
        let col = col0 + j;
        v[j] = select(0.0, x[row * p.k + min(col, p.k - 1u)], col < p.k);
    }
    for (var h = 1u; h < 32u; h *= 2u) {
        for (var i = 0u; i < 32u; i += 2u * h) {
            for (var j = i; j < i + h; j++) {
                let a = v[j];
                let b = v[j + h];
                v[j] = a + b;
                v[j + h] = a - b;
            }
        }
    }
    var amax = 0.0;
    for (var j = 0u; j < 32u; j++) {
        v[j] *= INV_SQRT_32;
        amax = max(amax, abs(v[j]));
    }
    let scale = amax / 127.0;
    let inv = select(0.0, 1.0 / scale, scale != 0.0);
    for (var w = 0u; w < 8u; w++) {
        var word = 0u;
        for (var e = 0u; e < 4u; e++) {
            word |= (u32(i32(round_half_away(v[4u * w + e] * inv))) & 0xffu) << (8u * e);
        }
        xq[row * (p.kp / 4u) + col0 / 4u + w] = word;
    }
    xs[g] = scale;
}
