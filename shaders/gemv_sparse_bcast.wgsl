// gemv_sparse_bcast: y = W x for one activation row (decode), W in the N:M-compressed
// layout (src/formats/sparse.rs), shaped for CPU adapters as gemv_wq_broadcast is.
//
// Invocation t of a workgroup of WG owns 4 x QUADS weight rows (t, t + WG, ...). All of
// them walk their rows' kept values in the same order, so the kept index, its group and the
// moment a new group starts are the same in every lane: at each group's start the lane
// reads the group's M values of x once (from a uniform view) for all its rows, and each
// row picks its kept positions out of them with selects. The host writes the kept values
// of a superblock (lcm(N, 32) of them, whole groups) out, so where a group starts and a
// kept value's place in it are known at compile time for any N (a run-time `kj % N` cost
// 3x at 6:8, where N is not a power of two). Per kept value a row pays a
// `firstTrailingBit`, a bit clear and log2(M) selects; the x reads, the loop control and the
// group bookkeeping are paid once per lane for its 4 x QUADS rows (gemv_sparse_rows paid
// them per row, and gathered x from storage). The four rows of a quad are the components
// of one vec4, so a kept value's four picks, weights and products are one vector step.
#import dispatch
#import sparse_params
#import sparse_in_uniform
#import sparse_mask
#import hsum

override WG: u32 = 16u;

// x at dense column `col` (0 past the row's end: the padding's columns).
fn x_at(col: u32) -> f32 {
    return select(0.0, a[min(col, p.k - 1u) / 4u][col % 4u], col < p.k);
}

// The current group's x values (M <= 8) and, per row of each quad, its mask bits not yet
// used and the mask word they came from.
struct Walk {
    xlo: vec4<f32>,
    xhi: vec4<f32>,
    bits0: vec4<u32>,
    bits1: vec4<u32>,
    word0: vec4<u32>,
    word1: vec4<u32>,
}

// Value `pos` (< M) of the group's x, for the four rows of a quad at once.
fn pick(wk: Walk, pos: vec4<u32>) -> vec4<f32> {
    let odd = (pos & vec4(1u)) != vec4(0u);
    let high = (pos & vec4(2u)) != vec4(0u);
    var v = select(
        select(vec4(wk.xlo.x), vec4(wk.xlo.y), odd),
        select(vec4(wk.xlo.z), vec4(wk.xlo.w), odd),
        high,
    );
    if NM_M > 4u {
        let hi = select(
            select(vec4(wk.xhi.x), vec4(wk.xhi.y), odd),
            select(vec4(wk.xhi.z), vec4(wk.xhi.w), odd),
            high,
        );
        v = select(v, hi, pos >= vec4(4u));
    }
    return v;
}

// Mask fields of group g in the words of four rows; past the rows' last group (the zero
// padding of the last kept block) the first NM_N columns, where x reads 0.
fn fields(words: vec4<u32>, g: u32) -> vec4<u32> {
    if g >= p.groups {
        return vec4((1u << NM_N) - 1u);
    }
    return (words >> vec4((g % FIELDS) * FIELD_BITS)) & vec4((1u << FIELD_BITS) - 1u);
}

fn mask_words(m0: vec4<u32>, g: u32) -> vec4<u32> {
    let o = min(g, p.groups - 1u) / FIELDS;
    return vec4(masks[m0.x + o], masks[m0.y + o], masks[m0.z + o], masks[m0.w + o]);
}

// Enters group g (the same in every lane): reads its x and the rows' masks (`reload`: a
// new mask word, every FIELDS groups).
fn enter(wk: ptr<function, Walk>, g: u32, reload: bool, m0: vec4<u32>, m1: vec4<u32>) {
    if reload {
        (*wk).word0 = mask_words(m0, g);
        if QUADS > 1u {
            (*wk).word1 = mask_words(m1, g);
        }
    }
    (*wk).bits0 = fields((*wk).word0, g);
    if QUADS > 1u {
        (*wk).bits1 = fields((*wk).word1, g);
    }
    let base = g * NM_M;
    if NM_M == 4u && g < p.groups {
        (*wk).xlo = a[g];
    } else if NM_M == 8u && g < p.groups {
        (*wk).xlo = a[2u * g];
        (*wk).xhi = a[2u * g + 1u];
    } else {
        (*wk).xlo = vec4(x_at(base), x_at(base + 1u), x_at(base + 2u), x_at(base + 3u));
        if NM_M > 4u {
            (*wk).xhi = vec4(x_at(base + 4u), x_at(base + 5u), x_at(base + 6u), x_at(base + 7u));
        }
    }
}

// Whether bit q of each row's mask is set.
fn has(bits: vec4<u32>, q: u32) -> vec4<bool> {
    return (bits & vec4(1u << q)) != vec4(0u);
}

// Value q of the group's x, for every row.
fn xq(wk: Walk, q: u32) -> vec4<f32> {
    if q < 4u {
        return vec4(wk.xlo[q]);
    }
    return vec4(wk.xhi[q - 4u]);
}

// The x under each row's next kept value (the q-th of its group, the same in every
// lane), `bits` the mask bits each row has not used yet. Two kept per group (2:4, 2:8, ...): the first is at the
// lowest set bit and the second at the highest, each found by a chain of selects from its
// end of the group (no bit count, no pick tree, no bit to clear); other patterns take the
// lowest bit left (the caller clears it). (A chain written for any M, with a loop over the
// positions, measured 1.25x slower than the pick tree on lavapipe; this one for 2:4 ~1.05x
// faster.)
fn next_x(wk: Walk, bits: vec4<u32>, q: u32) -> vec4<f32> {
    if NM_N == 2u && NM_M == 4u {
        let x = wk.xlo;
        if q == 0u {
            return select(select(vec4(x.z), vec4(x.y), has(bits, 1u)), vec4(x.x), has(bits, 0u));
        }
        return select(select(vec4(x.y), vec4(x.z), has(bits, 2u)), vec4(x.w), has(bits, 3u));
    }
    return pick(wk, firstTrailingBit(bits));
}

// The products of one block so far, per row of each quad: d (x . q) and sum x.
struct Sums {
    dot0: vec4<f32>,
    xs0: vec4<f32>,
    dot1: vec4<f32>,
    xs1: vec4<f32>,
}

// The q-th kept value of the current group in every row: its weights we0, we1 (a
// component per row of each quad) times the x under it; uses up its mask bit.
fn kept(
    wk: ptr<function, Walk>,
    q: u32,
    we0: vec4<f32>,
    we1: vec4<f32>,
    s: ptr<function, Sums>,
) {
    let x0 = next_x(*wk, (*wk).bits0, q);
    if NM_N != 2u {
        (*wk).bits0 &= (*wk).bits0 - vec4(1u);
    }
    (*s).dot0 = fma(x0, we0, (*s).dot0);
    (*s).xs0 += x0;
    if QUADS > 1u {
        let x1 = next_x(*wk, (*wk).bits1, q);
        if NM_N != 2u {
            (*wk).bits1 &= (*wk).bits1 - vec4(1u);
        }
        (*s).dot1 = fma(x1, we1, (*s).dot1);
        (*s).xs1 += x1;
    }
}

// First kept blocks and mask words of rows r, r + WG, r + 2 WG, r + 3 WG (clamped to the
// last row: rows past the end are never stored).
fn quad_rows(r: u32) -> vec4<u32> {
    return min(vec4(r) + vec4(0u, 1u, 2u, 3u) * WG, vec4(p.n - 1u));
}

// The 4 kept values j*4 .. j*4+3 of a block, one per component, transposed to one vec4
// per kept value across the quad's rows.
struct Quad4 {
    e0: vec4<f32>,
    e1: vec4<f32>,
    e2: vec4<f32>,
    e3: vec4<f32>,
}

fn quad_values(b: array<Block, 4>, j: u32) -> Quad4 {
    let r0 = decode_in(b[0], j);
    let r1 = decode_in(b[1], j);
    let r2 = decode_in(b[2], j);
    let r3 = decode_in(b[3], j);
    return Quad4(
        vec4(r0.x, r1.x, r2.x, r3.x),
        vec4(r0.y, r1.y, r2.y, r3.y),
        vec4(r0.z, r1.z, r2.z, r3.z),
        vec4(r0.w, r1.w, r2.w, r3.w),
    );
}

fn quad_scales(g: vec4<u32>) -> array<vec4<f32>, 2> {
    let s0 = block_scale(g.x);
    let s1 = block_scale(g.y);
    let s2 = block_scale(g.z);
    let s3 = block_scale(g.w);
    return array(vec4(s0.x, s1.x, s2.x, s3.x), vec4(s0.y, s1.y, s2.y, s3.y));
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
    let r0 = group * (4u * QUADS * WG) + lid.x;
    let r1 = r0 + 4u * WG;
    let rows0 = quad_rows(r0);
    let rows1 = quad_rows(r1);
    let m0 = rows0 * p.mwords;
    let m1 = rows1 * p.mwords;
    let g0 = rows0 * p.nblk;
    let g1 = rows1 * p.nblk;
    var wk: Walk;
    var acc0 = vec4(0.0);
    var acc1 = vec4(0.0);
    // Superblocks of SB kept blocks: lcm(N, 32) kept values, whole groups, so the host
    // writes each kept value out knowing its place in its group (#splice superblock: per
    // block, its loads, then per kept value `enter` where a group starts and `kept`).
    for (var sb = 0u; sb * SB < p.nblk; sb++) {
#splice superblock
    }
    for (var i = 0u; i < 4u; i++) {
        let r = r0 + i * WG;
        if r < p.n {
            c[r] = acc0[i];
        }
        if QUADS > 1u && r1 + i * WG < p.n {
            c[r1 + i * WG] = acc1[i];
        }
    }
}
