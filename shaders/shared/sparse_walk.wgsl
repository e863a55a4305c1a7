// Walking a weight row's kept values in order and finding each one's dense column.
// Kept value j of a row belongs to group j / NM_N (every group keeps exactly NM_N), and is
// the (j % NM_N)-th set bit of that group's mask. A walker holds the current group and
// the bits of its mask not yet used; every group has NM_N bits, so all rows step to the
// next group at the same kept value and the control flow stays uniform.

#import sparse_mask

struct Walker {
    g: u32,
    bits: u32,
}

// A walker at kept value `first` of the row.
fn walker_at(mrow0: u32, first: u32) -> Walker {
    var wk: Walker;
    wk.g = first / NM_N;
    wk.bits = group_mask(mrow0, wk.g);
    for (var i = 0u; i < first % NM_N; i++) {
        wk.bits &= wk.bits - 1u;
    }
    return wk;
}

// The dense column of the walker's kept value; steps to the next.
fn walk_next(wk: ptr<function, Walker>, mrow0: u32) -> u32 {
    let col = (*wk).g * NM_M + firstTrailingBit((*wk).bits);
    (*wk).bits &= (*wk).bits - 1u;
    if (*wk).bits == 0u {
        (*wk).g += 1u;
        (*wk).bits = group_mask(mrow0, (*wk).g);
    }
    return col;
}

// The next 4 kept values' dense columns.
fn walk4(wk: ptr<function, Walker>, mrow0: u32) -> vec4<u32> {
    let c0 = walk_next(wk, mrow0);
    let c1 = walk_next(wk, mrow0);
    let c2 = walk_next(wk, mrow0);
    let c3 = walk_next(wk, mrow0);
    return vec4(c0, c1, c2, c3);
}

// A's values at 4 columns of the row starting at row0.
fn gather4(row0: u32, cols: vec4<u32>) -> vec4<f32> {
    return vec4(xat(row0, cols.x), xat(row0, cols.y), xat(row0, cols.z), xat(row0, cols.w));
}
