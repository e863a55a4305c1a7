// bert_attention: scaled dot-product attention with the padding mask, one invocation per
// (sequence, head, query row). Reads the fused QKV rows (b*t x 3h: Q | K | V), streams the
// sequence's real keys (j < lens[s]) with an online softmax (running max and sum), and
// writes the head's slice of the output row. HD4 (head width / 4) comes from the prefix.
#import dispatch
#import bert_params

override WG: u32 = 64u;

@group(0) @binding(1) var<storage, read> qkv: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> lens: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let blocks = (p.t + WG - 1u) / WG;
    let g = linear_workgroup(wid, nwg);
    if g >= p.b * p.heads * blocks {
        return;
    }
    let s = g / (p.heads * blocks);
    let head = (g / blocks) % p.heads;
    let i = (g % blocks) * WG + lid.x;
    if i >= p.t {
        return;
    }
    let h4 = p.h / 4u;
    let row4 = 3u * h4;
    let q_at = (s * p.t + i) * row4 + head * HD4;
    var q: array<vec4<f32>, HD4>;
    for (var c = 0u; c < HD4; c++) {
        q[c] = qkv[q_at + c];
    }
    let scale = inverseSqrt(f32(HD4 * 4u));
    var m = -3.0e38;
    var l = 0.0;
    var acc: array<vec4<f32>, HD4>;
    let len = lens[s];
    for (var j = 0u; j < len; j++) {
        let k_at = (s * p.t + j) * row4 + h4 + head * HD4;
        var d = 0.0;
        for (var c = 0u; c < HD4; c++) {
            d += dot(q[c], qkv[k_at + c]);
        }
        let score = d * scale;
        let m_new = max(m, score);
        let correction = exp(m - m_new);
        let e = exp(score - m_new);
        l = l * correction + e;
        let v_at = k_at + h4;
        for (var c = 0u; c < HD4; c++) {
            acc[c] = acc[c] * correction + e * qkv[v_at + c];
        }
        m = m_new;
    }
    let o_at = (s * p.t + i) * h4 + head * HD4;
    for (var c = 0u; c < HD4; c++) {
        out[o_at + c] = acc[c] / l;
    }
}
