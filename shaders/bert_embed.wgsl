// bert_embed: one workgroup per token row: word + position + token-type-0 embeddings, then
// LayerNorm (two passes: mean, then variance of the deviations, as the CPU twin does).
#import dispatch
#import bert_params

override WG: u32 = 64u;
#import layernorm_row

@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> word: array<f32>;
@group(0) @binding(3) var<storage, read> position: array<f32>;
@group(0) @binding(4) var<storage, read> token_type: array<f32>;
@group(0) @binding(5) var<storage, read> gamma: array<f32>;
@group(0) @binding(6) var<storage, read> beta: array<f32>;
@group(0) @binding(7) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    // Uniform across the workgroup, so returning keeps the barriers legal.
    let row = linear_workgroup(wid, nwg);
    if row >= p.rows {
        return;
    }
    let id = ids[row];
    let pos = row % p.t;
    let base = row * p.h;
    var s = 0.0;
    for (var i = lid.x; i < p.h; i += WG) {
        let v = word[id * p.h + i] + position[pos * p.h + i] + token_type[i];
        x[base + i] = v;
        s += v;
    }
    layernorm_row(base, s, lid.x);
}
