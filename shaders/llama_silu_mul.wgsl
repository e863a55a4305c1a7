// llama_silu_mul: the gated FFN's activation, a = silu(gate) * up, from the fused
// gate|up rows (2 * ffn wide) into rows of ffn. One invocation per output value.
#import dispatch
#import llama_params

@group(0) @binding(1) var<storage, read> gu: array<f32>;
@group(0) @binding(2) var<storage, read_write> a: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let i = linear_workgroup(wid, nwg) * 256u + lid.x;
    if i >= p.rows * p.ffn {
        return;
    }
    let row = i / p.ffn;
    let col = i % p.ffn;
    let g = gu[row * 2u * p.ffn + col];
    let u = gu[row * 2u * p.ffn + p.ffn + col];
    a[i] = g / (1.0 + exp(-g)) * u;
}
