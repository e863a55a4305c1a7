// llama_argmax: the greedy next token, the index of the largest of n logits (the lowest
// index on ties, as the CPU twin), in one workgroup; only this id is read back per step.
#import dispatch

override WG: u32 = 256u;

struct ArgmaxParams {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: ArgmaxParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> best: array<u32>;

var<workgroup> val: array<f32, WG>;
var<workgroup> idx: array<u32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
    var bv = -3.4e38;
    var bi = 0xffffffffu;
    for (var i = lid.x; i < p.n; i += WG) {
        let v = logits[i];
        if v > bv {
            bv = v;
            bi = i;
        }
    }
    val[lid.x] = bv;
    idx[lid.x] = bi;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s /= 2u) {
        if lid.x < s {
            let ov = val[lid.x + s];
            let oi = idx[lid.x + s];
            if ov > val[lid.x] || (ov == val[lid.x] && oi < idx[lid.x]) {
                val[lid.x] = ov;
                idx[lid.x] = oi;
            }
        }
        workgroupBarrier();
    }
    if lid.x == 0u {
        best[0] = idx[0];
    }
}
