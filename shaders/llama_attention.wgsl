// llama_attention: causal attention of each query row over the KV cache (positions
// 0..=pos), grouped-query: head h reads kv head h / (heads / kv_heads). One workgroup per
// (row, head). Keys go by in tiles of WG, one per invocation; the softmax is kept online
// (running max and sum, accumulators rescaled per tile), so any context length fits.
// Each invocation accumulates head dimensions lid, lid + WG, ... (head_dim <= 4 * WG).
#import dispatch
#import llama_params

override WG: u32 = 64u;

@group(0) @binding(1) var<storage, read> qkv: array<f32>;
// The KV cache (bindings 2 and 3) and key(i), value(i) come from the prefix: kv_load_f32
// or kv_load_f16.
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<workgroup> q: array<f32, 4 * WG>;
var<workgroup> score: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let g = linear_workgroup(wid, nwg);
    if g >= p.rows * p.heads {
        return;
    }
    let row = g / p.heads;
    let head = g % p.heads;
    let kvh = head / (p.heads / p.kv_heads);
    let hd = p.head_dim;
    let pos = p.pos0 + row;
    let qbase = row * (p.dim + 2u * p.kv_dim) + head * hd;
    for (var d = lid.x; d < hd; d += WG) {
        q[d] = qkv[qbase + d];
    }
    workgroupBarrier();
    let scale = inverseSqrt(f32(hd));
    var m = -3.0e38;
    var l = 0.0;
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    for (var t0 = 0u; t0 <= pos; t0 += WG) {
        let j = t0 + lid.x;
        var s = -3.0e38;
        if j <= pos {
            let kb = j * p.kv_dim + kvh * hd;
            var dot = 0.0;
            for (var d = 0u; d < hd; d++) {
                dot += q[d] * key(kb + d);
            }
            s = dot * scale;
        }
        score[lid.x] = s;
        workgroupBarrier();
        let n = min(WG, pos + 1u - t0);
        var tmax = m;
        for (var i = 0u; i < n; i++) {
            tmax = max(tmax, score[i]);
        }
        let corr = exp(m - tmax);
        l *= corr;
        for (var c = 0u; c < 4u; c++) {
            acc[c] *= corr;
        }
        for (var i = 0u; i < n; i++) {
            let e = exp(score[i] - tmax);
            l += e;
            let vb = (t0 + i) * p.kv_dim + kvh * hd;
            for (var c = 0u; c < 4u; c++) {
                let d = lid.x + c * WG;
                if d < hd {
                    acc[c] += e * value(vb + d);
                }
            }
        }
        m = tmax;
        workgroupBarrier();
    }
    let obase = row * p.dim + head * hd;
    for (var c = 0u; c < 4u; c++) {
        let d = lid.x + c * WG;
        if d < hd {
            out[obase + d] = acc[c] / l;
        }
    }
}
