// gemv_i8_broadcast: W8A8 for one activation row (the decode case), shaped for CPU
// adapters like gemv_wq_broadcast: invocation t of a workgroup of WG owns 4 x QUADS weight
// rows (t, t + WG, ...) along all of k, so every lane reads the same int8 activations at
// each step, from uniform buffers (cheaper than storage reads on lavapipe, where those are
// a per-lane loop); its rows are written out, their 32-value blocks loaded as two
// vec4<u32> each.
// Same arithmetic as matmul_i8 (exact i32 per block with dot4, then
// f32(sum) * (sa * sw) accumulated block after block with BLOCKS; one scale pair per row
// without), so the two kernels agree bit for bit.
#import dispatch
#import int8_params

override WG: u32 = 16u;

@group(0) @binding(0) var<uniform> p: I8Params;
// The activation row: AQ_VEC4S vec4<u32> of 16 int8 each, and its scales as vec4s.
@group(0) @binding(1) var<uniform> aq: array<vec4<u32>, AQ_VEC4S>;
@group(0) @binding(2) var<uniform> sa: array<vec4<f32>, SA_VEC4S>;
@group(0) @binding(3) var<storage, read> wq: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> sw: array<f32>;
@group(0) @binding(5) var<storage, read_write> c: array<f32>;

fn a_scale(i: u32) -> f32 {
    return sa[i / 4u][i % 4u];
}

// The exact product of a block of 32 (two vec4 of the row, from vec4 index q) with the
// activations' block (lo, hi).
fn block_dot(q: u32, lo: vec4<u32>, hi: vec4<u32>) -> i32 {
    let w0 = wq[q];
    let w1 = wq[q + 1u];
    return dot4(lo.x, w0.x) + dot4(lo.y, w0.y) + dot4(lo.z, w0.z) + dot4(lo.w, w0.w)
        + dot4(hi.x, w1.x) + dot4(hi.y, w1.y) + dot4(hi.z, w1.z) + dot4(hi.w, w1.w);
}

// Rows r, r + WG, r + 2 WG, r + 3 WG (clamped to the last: rows past the end are computed
// but never stored).
fn quad_rows(r: u32) -> vec4<u32> {
    return min(vec4(r) + vec4(0u, 1u, 2u, 3u) * WG, vec4(p.n - 1u));
}

fn store_quad(r: u32, v: vec4<f32>) {
    for (var j = 0u; j < 4u; j++) {
        if r + j * WG < p.n {
            c[r + j * WG] = epilogue(v[j], r + j * WG);
        }
    }
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let group = linear_workgroup(wid, nwg);
    if group >= p.tiles {
        return;
    }
    let r0 = group * (WG * 4u * QUADS) + lid.x;
    let r1 = r0 + 4u * WG;
    let rows0 = quad_rows(r0);
    let rows1 = quad_rows(r1);
    let k16 = p.kp / 16u;
    let blocks = p.kp / 32u;
    let q0 = rows0 * k16;
    let q1 = rows1 * k16;
    var facc0 = vec4(0.0);
    var facc1 = vec4(0.0);
    var acc0 = vec4(0i);
    var acc1 = vec4(0i);
    for (var b = 0u; b < blocks; b++) {
        let lo = aq[2u * b];
        let hi = aq[2u * b + 1u];
        let o = 2u * b;
        let d0 = vec4(block_dot(q0.x + o, lo, hi), block_dot(q0.y + o, lo, hi),
            block_dot(q0.z + o, lo, hi), block_dot(q0.w + o, lo, hi));
        var d1 = vec4(0i);
        if QUADS > 1u {
            d1 = vec4(block_dot(q1.x + o, lo, hi), block_dot(q1.y + o, lo, hi),
                block_dot(q1.z + o, lo, hi), block_dot(q1.w + o, lo, hi));
        }
        if BLOCKS {
            let s_a = a_scale(b);
            let s0 = vec4(sw[rows0.x * blocks + b], sw[rows0.y * blocks + b],
                sw[rows0.z * blocks + b], sw[rows0.w * blocks + b]);
            facc0 += vec4<f32>(d0) * (s_a * s0);
            if QUADS > 1u {
                let s1 = vec4(sw[rows1.x * blocks + b], sw[rows1.y * blocks + b],
                    sw[rows1.z * blocks + b], sw[rows1.w * blocks + b]);
                facc1 += vec4<f32>(d1) * (s_a * s1);
            }
        } else {
            acc0 += d0;
            acc1 += d1;
        }
    }
    if !BLOCKS {
        // One scale per row: the exact sum of the whole row, scaled as matmul_i8 does.
        let s_a = a_scale(0u);
        facc0 = vec4<f32>(acc0) * s_a * vec4(sw[rows0.x], sw[rows0.y], sw[rows0.z], sw[rows0.w]);
        facc1 = vec4<f32>(acc1) * s_a * vec4(sw[rows1.x], sw[rows1.y], sw[rows1.z], sw[rows1.w]);
    }
    store_quad(r0, facc0);
    if QUADS > 1u {
        store_quad(r1, facc1);
    }
}
