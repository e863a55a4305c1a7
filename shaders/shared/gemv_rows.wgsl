// The walk shared by the GEMV kernels: invocation t of a workgroup of WG takes blocks t,
// t+WG, ... of the ROWS weight rows from row0 (rows past n repeat the last one), loads each
// row's block once (`load_block`) and each vec4 of x once for all rows, and applies each
// block's scale once: d (x . q) + m (sum x).
// Returns the invocation's partial dot product per row.
#import hsum

fn gemv_partials(row0: u32, t: u32) -> array<f32, ROWS> {
    var rowblk: array<u32, ROWS>;
    for (var r = 0u; r < ROWS; r++) {
        rowblk[r] = min(row0 + r, p.n - 1u) * p.nblk;
    }
    var acc: array<f32, ROWS>;
    for (var blk = t; blk < p.nblk; blk += WG) {
        var part: array<vec4<f32>, ROWS>;
        var xsum = vec4(0.0);
        var wb: array<Block, ROWS>;
        for (var r = 0u; r < ROWS; r++) {
            wb[r] = load_block(rowblk[r] + blk);
        }
        for (var v = 0u; v < 8u; v++) {
            let x4 = a[blk * 8u + v];
            xsum += x4;
            for (var r = 0u; r < ROWS; r++) {
                part[r] = fma(x4, decode_in(wb[r], v), part[r]);
            }
        }
        for (var r = 0u; r < ROWS; r++) {
            let sc = block_scale(rowblk[r] + blk);
            acc[r] += sc.x * hsum(part[r]) + sc.y * hsum(xsum);
        }
    }
    return acc;
}
