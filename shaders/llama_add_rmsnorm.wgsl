// llama_add_rmsnorm: the residual add and the RMSNorm before each block (and at the end):
// x += y (when ADD), then h = x / sqrt(mean(x^2) + eps) * w for rows >= out_row0, written
// at row - out_row0. One workgroup per token row.
#import dispatch
#import llama_params

override WG: u32 = 64u;
override ADD: bool = true;
#import row_reduce

@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> h: array<f32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let row = linear_workgroup(wid, nwg);
    if row >= p.rows {
        return;
    }
    let base = row * p.dim;
    var s2 = 0.0;
    for (var i = lid.x; i < p.dim; i += WG) {
        var v = x[base + i];
        if ADD {
            v += y[base + i];
            x[base + i] = v;
        }
        s2 += v * v;
    }
    let inv = inverseSqrt(workgroup_sum(s2, lid.x) / f32(p.dim) + p.eps);
    if row < p.out_row0 {
        return;
    }
    let out = (row - p.out_row0) * p.dim;
    for (var i = lid.x; i < p.dim; i += WG) {
        h[out + i] = x[base + i] * inv * w[i];
    }
}
