// quantize_rows_i8: one workgroup per activation row. Finds the row's absolute maximum
// (workgroup reduction), then writes q = round_half_away(x / s), s = amax / 127, four int8
// per u32 (element 0 in the lowest byte) and the row's scale. Same arithmetic as
// src/formats/int8.rs.
#import dispatch
#import int8_params
#import round_half_away

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: I8Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> xq: array<u32>;
@group(0) @binding(3) var<storage, read_write> xs: array<f32>;

#import row_reduce

fn q8(row: u32, i: u32, inv: f32) -> u32 {
    var v = 0.0;
    if i < p.k {
        v = x[row * p.k + i];
    }
    return u32(i32(round_half_away(v * inv))) & 0xffu;
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let row = linear_workgroup(wid, nwg);
    if row >= p.m {
        return;
    }
    var amax = 0.0;
    for (var i = lid.x; i < p.k; i += WG) {
        amax = max(amax, abs(x[row * p.k + i]));
    }
    let scale = workgroup_max(amax, lid.x) / 127.0;
    let inv = select(0.0, 1.0 / scale, scale != 0.0);
    let words = p.kp / 4u;
    for (var w = lid.x; w < words; w += WG) {
        let i = 4u * w;
        xq[row * words + w] = q8(row, i, inv) | (q8(row, i + 1u, inv) << 8u)
            | (q8(row, i + 2u, inv) << 16u) | (q8(row, i + 3u, inv) << 24u);
    }
    if lid.x == 0u {
        xs[row] = scale;
    }
}
