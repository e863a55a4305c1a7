// bert_add_layernorm: x = LayerNorm(x + y), one workgroup per token row (the residual
// connection and norm after attention and after the FFN).
#import dispatch
#import bert_params

override WG: u32 = 64u;
#import layernorm_row

@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> x: array<f32>;

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
    let base = row * p.h;
    var s = 0.0;
    for (var i = lid.x; i < p.h; i += WG) {
        let v = x[base + i] + y[base + i];
        x[base + i] = v;
        s += v;
    }
    layernorm_row(base, s, lid.x);
}
