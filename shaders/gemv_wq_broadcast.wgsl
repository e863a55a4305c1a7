// gemv_wq_broadcast: y = W x for one activation row (the decode case), shaped for CPU
// adapters (lavapipe/llvmpipe run each invocation as one lane of a SIMD vector).
//
// Invocation t of a workgroup of WG owns 4 x QUADS weight rows (t, t + WG, ...) and walks
// every block of them, so all lanes read the same part of x at the same step: x sits in a
// uniform buffer (measured 1.1x over a storage read on lavapipe, where a storage read is a
// per-lane loop; Mesa 22.3 does not turn either into one scalar load for a computed offset).
// Every weight word is loaded once, by the lane that uses it. The rows are written out, not
// looped over, so their accumulators and block words stay in registers; a 16-byte block is
// one load (`wquad`).
// Measured on lavapipe against matmul_wq 64x1x8 at 3072 x 576 Q4_1: 2.0x (0.60 against
// 1.24 ms, minima of 11 interleaved runs).
#import dispatch
#import gemv_broadcast_params
// row_dot(g, x): block g times x's block, scaled (the prefix imports `row_dot_generic`, or a
// format's own, e.g. `row_dot_q8_0`).
// in_scale() and the output side (tile_rows, second_rows, store_rows, store_partial): what
// the product takes and leaves, from the prefix: `gemv_in_plain` / `gemv_out_plain`
// (y = W x), or a decoder's fused neighbours: `gemv_in_rmsnorm` (the RMSNorm before the
// product), `gemv_out_residual_norm` (the residual add after it and the next norm's inputs),
// `gemv_out_silu` (gate and up rows paired, silu(gate) * up stored).

override WG: u32 = 16u;

#import hsum

// One block of x (32 values) and its sum.
struct XBlock {
    v0: vec4<f32>,
    v1: vec4<f32>,
    v2: vec4<f32>,
    v3: vec4<f32>,
    v4: vec4<f32>,
    v5: vec4<f32>,
    v6: vec4<f32>,
    v7: vec4<f32>,
    sum: f32,
}

fn x_block(blk: u32) -> XBlock {
    let o = blk * 8u;
    let v0 = a[o];
    let v1 = a[o + 1u];
    let v2 = a[o + 2u];
    let v3 = a[o + 3u];
    let v4 = a[o + 4u];
    let v5 = a[o + 5u];
    let v6 = a[o + 6u];
    let v7 = a[o + 7u];
    let sum = hsum(((v0 + v1) + (v2 + v3)) + ((v4 + v5) + (v6 + v7)));
    return XBlock(v0, v1, v2, v3, v4, v5, v6, v7, sum);
}

// First blocks of rows r, r + WG, r + 2 WG, r + 3 WG (clamped to the last row: the hot loop
// needs no bounds checks; rows past the end are never stored).
fn quad_rows(r: u32) -> vec4<u32> {
    let last = vec4(p.n - 1u);
    return min(vec4(r) + vec4(0u, 1u, 2u, 3u) * WG, last) * p.nblk;
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
    let r0 = group * tile_rows() + lid.x;
    let r1 = second_rows(r0);
    let g0 = quad_rows(r0);
    let g1 = quad_rows(r1);
    var acc0 = vec4(0.0);
    var acc1 = vec4(0.0);
    for (var blk = 0u; blk < p.nblk; blk++) {
        let x = x_block(blk);
        acc0 += vec4(row_dot(g0.x + blk, x), row_dot(g0.y + blk, x), row_dot(g0.z + blk, x), row_dot(g0.w + blk, x));
        if QUADS > 1u {
            acc1 += vec4(row_dot(g1.x + blk, x), row_dot(g1.y + blk, x), row_dot(g1.z + blk, x), row_dot(g1.w + blk, x));
        }
    }
    let scale = in_scale();
    store_partial(group * WG + lid.x, store_rows(r0, acc0 * scale, acc1 * scale));
}
