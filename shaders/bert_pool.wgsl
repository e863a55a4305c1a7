// bert_pool: one workgroup per sequence: mean of its real token rows (t < lens[s]), then L2
// normalisation: the sentence embedding.
#import dispatch
#import bert_params

override WG: u32 = 64u;
#import row_reduce

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> lens: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let s = linear_workgroup(wid, nwg);
    if s >= p.b {
        return;
    }
    let len = lens[s];
    var sq = 0.0;
    for (var i = lid.x; i < p.h; i += WG) {
        var acc = 0.0;
        for (var t = 0u; t < len; t++) {
            acc += x[(s * p.t + t) * p.h + i];
        }
        let mean = acc / f32(len);
        out[s * p.h + i] = mean;
        sq += mean * mean;
    }
    let inv = inverseSqrt(workgroup_sum(sq, lid.x));
    for (var i = lid.x; i < p.h; i += WG) {
        out[s * p.h + i] *= inv;
    }
}
