// llama_attention: causal attention of each query row over the KV cache (positions
// 0..=pos), grouped-query: head h reads kv head h / (heads / kv_heads). One workgroup per
// (row, head); head_dim a multiple of 4, at most 4 * WG, read as vec4 (key4/value4 from the
// prefix: kv_load_f32 or kv_load_f16).
//
// Keys go by in tiles of WG positions. Scores: invocation j dots the query (staged in
// workgroup memory, pre-scaled) with key t0 + j. Values: the invocations split into
// P = WG / (head_dim / 4) groups; group g takes positions g, g + P, ... of the tile, each
// invocation one vec4 of head dimensions, with its own online softmax (running max and
// sum, accumulator rescaled when the max grows), so no reduction is needed per tile and
// any context length fits. The P partial softmaxes are merged once at the end.
// On lavapipe a load costs a loop over the SIMD lanes: vec4 loads and no per-tile scan of
// the scores keep their number down (4-5x fewer than one value per load).
//
// ROPE_FUSED (decode steps, one row): RoPE and the cache store happen here instead of in
// llama_rope_store. The workgroup rotates its query and its kv head's new key, takes the
// new key and value (rounded as the cache stores them) from registers rather than the
// cache, and the first query head of each kv group stores them: no workgroup reads the
// position being written, so there is no race. The prefix imports attention_rope_fused
// (ROPE_FUSED, rope4, inv_freq at binding 5) with kv_rw_f32 or kv_rw_f16 (the cache read and
// written on one binding), or attention_rope_apart with kv_load_*.
#import dispatch
#import llama_params

override WG: u32 = 64u;

@group(0) @binding(1) var<storage, read> qkv: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;

// The new key's score against the query (ROPE_FUSED), and its key and value.
var<workgroup> knew: array<vec4<f32>, WG>;
var<workgroup> vnew: array<vec4<f32>, WG>;

var<workgroup> q: array<vec4<f32>, WG>;
var<workgroup> score: array<f32, WG>;
var<workgroup> part_m: array<f32, WG>;
var<workgroup> part_l: array<f32, WG>;
var<workgroup> part_acc: array<vec4<f32>, WG>;

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
    let hd4 = p.head_dim / 4u;
    let pos = p.pos0 + row;
    let me = lid.x;
    let scale = inverseSqrt(f32(p.head_dim));
    let qbase = (row * (p.dim + 2u * p.kv_dim) + head * p.head_dim) / 4u;
    let kv_row = p.kv_dim / 4u;
    let kv_head = kvh * hd4;
    if me < hd4 {
        if ROPE_FUSED {
            q[me] = rope4(qkv[qbase + me], 4u * me, pos) * scale;
            let kbase = (row * (p.dim + 2u * p.kv_dim) + p.dim) / 4u + kv_head + me;
            let k4 = kv_round(rope4(qkv[kbase], 4u * me, pos));
            let v4 = kv_round(qkv[kbase + kv_row]);
            knew[me] = k4;
            vnew[me] = v4;
            if head % (p.heads / p.kv_heads) == 0u {
                store_kv4(pos * kv_row + kv_head + me, k4, v4);
            }
        } else {
            q[me] = qkv[qbase + me] * scale;
        }
    }
    workgroupBarrier();
    // Positions read from the cache: all (pos included) unless fused, where the new one
    // comes from registers.
    let cached = select(pos + 1u, pos, ROPE_FUSED);
    // This invocation's share of the values: group `grp` of `groups`, dimensions d4.
    let groups = WG / hd4;
    let grp = me / hd4;
    let d4 = me % hd4;
    var m = -3.0e38;
    var l = 0.0;
    var acc = vec4<f32>(0.0);
    for (var t0 = 0u; t0 < cached; t0 += WG) {
        let j = t0 + me;
        if j < cached {
            let kb = j * kv_row + kv_head;
            var dot = vec4<f32>(0.0);
            for (var d = 0u; d < hd4; d++) {
                dot += q[d] * key4(kb + d);
            }
            score[me] = dot.x + dot.y + dot.z + dot.w;
        }
        workgroupBarrier();
        let n = min(WG, cached - t0);
        if grp < groups {
            for (var i = grp; i < n; i += groups) {
                let s = score[i];
                let m_new = max(m, s);
                let corr = exp(m - m_new);
                let e = exp(s - m_new);
                l = l * corr + e;
                acc = acc * corr + e * value4((t0 + i) * kv_row + kv_head + d4);
                m = m_new;
            }
        }
        workgroupBarrier();
    }
    if ROPE_FUSED && grp == (pos % WG) % groups {
        // The new position, last in the softmax of the group that takes it when it is read
        // from the cache (same order, so a decode step equals a prefill bit for bit); its
        // score summed from the head's vec4s as the tiles sum theirs.
        var dot = vec4<f32>(0.0);
        for (var d = 0u; d < hd4; d++) {
            dot += q[d] * knew[d];
        }
        let s = dot.x + dot.y + dot.z + dot.w;
        let m_new = max(m, s);
        let corr = exp(m - m_new);
        let e = exp(s - m_new);
        l = l * corr + e;
        acc = acc * corr + e * vnew[d4];
        m = m_new;
    }
    part_m[me] = m;
    part_l[me] = l;
    part_acc[me] = acc;
    workgroupBarrier();
    if me < hd4 {
        var mx = -3.0e38;
        for (var k = 0u; k < groups; k++) {
            mx = max(mx, part_m[k * hd4 + me]);
        }
        var sum = 0.0;
        var total = vec4<f32>(0.0);
        for (var k = 0u; k < groups; k++) {
            // A group that saw no position has l = 0 and contributes nothing.
            let w = exp(part_m[k * hd4 + me] - mx);
            sum += part_l[k * hd4 + me] * w;
            total += part_acc[k * hd4 + me] * w;
        }
        out[(row * p.dim + head * p.head_dim) / 4u + me] = total / sum;
    }
}
