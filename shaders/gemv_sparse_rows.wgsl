// gemv_sparse_rows: y = W x for one activation row, W in the N:M-compressed layout
// (src/formats/sparse.rs), one weight row per invocation.
//
// Every invocation walks its row's kept values in the same order, so the kept index, its
// group and the moment a new group starts are the same in all of them (computed from the
// loop counters, the compiler can tell they are uniform). At each group's start the
// workgroup loads the group's M values of x once, uniformly, and each invocation picks its
// kept positions out of them with selects, instead of every invocation gathering x at its
// own columns (on a CPU adapter a per-lane gather costs several times a select).
#import dispatch
#import sparse_params
#import sparse_in_storage
#import hsum
#import sparse_mask

override WG_X: u32 = 64u;

// The group being walked: its mask bits not yet used and its M values of x.
struct RowWalk {
    bits: u32,
    xlo: vec4<f32>,
    xhi: vec4<f32>,
}

// Value `pos` (< 8) of the group's x.
fn pick(st: RowWalk, pos: u32) -> f32 {
    var v = st.xlo;
    if NM_M > 4u {
        v = select(st.xlo, st.xhi, pos >= 4u);
    }
    let i = pos & 3u;
    return select(select(v.x, v.y, i == 1u), select(v.z, v.w, i == 3u), i >= 2u);
}

// The x value under kept value `kj` of the row (kj counts from the row's start; the same
// in every invocation), stepping the walk.
fn next_x(st: ptr<function, RowWalk>, mrow0: u32, kj: u32) -> f32 {
    if kj % NM_N == 0u {
        let g = kj / NM_N;
        (*st).bits = group_mask(mrow0, g);
        let base = g * NM_M;
        (*st).xlo = vec4(xat(0u, base), xat(0u, base + 1u), xat(0u, base + 2u), xat(0u, base + 3u));
        if NM_M > 4u {
            (*st).xhi = vec4(xat(0u, base + 4u), xat(0u, base + 5u), xat(0u, base + 6u), xat(0u, base + 7u));
        }
    }
    let pos = firstTrailingBit((*st).bits);
    (*st).bits &= (*st).bits - 1u;
    return pick(*st, pos);
}

@compute @workgroup_size(WG_X)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let tile = linear_workgroup(wid, nwg);
    if tile >= p.tiles {
        return;
    }
    let col = tile * WG_X + lid.x;
    // Past-the-end invocations repeat the last row and store nothing.
    let row = min(col, p.n - 1u);
    let mrow0 = row * p.mwords;
    var st: RowWalk;
    var acc = 0.0;
    for (var blk = 0u; blk < p.nblk; blk++) {
        let g = row * p.nblk + blk;
        let b = load_block(g);
        var dot = vec4(0.0);
        var xs = vec4(0.0);
        for (var j = 0u; j < 8u; j++) {
            let kj = blk * 32u + j * 4u;
            let x0 = next_x(&st, mrow0, kj);
            let x1 = next_x(&st, mrow0, kj + 1u);
            let x2 = next_x(&st, mrow0, kj + 2u);
            let x3 = next_x(&st, mrow0, kj + 3u);
            let x4 = vec4(x0, x1, x2, x3);
            dot = fma(x4, decode_in(b, j), dot);
            xs += x4;
        }
        let sc = block_scale(g);
        acc += sc.x * hsum(dot) + sc.y * hsum(xs);
    }
    if col < p.n {
        c[col] = acc;
    }
}
