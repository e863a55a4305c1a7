// Offsets of the rows a register block reads, clamped so the hot loop needs no bounds
// checks (rows past the end repeat the last one and their results are never stored).
// TM, TN come from the variant prefix; WG_X is the kernel's workgroup width.

// Rows row0 .. row0 + TM of a matrix with `rows` rows, times `stride`.
fn block_rows(row0: u32, rows: u32, stride: u32) -> array<u32, TM> {
    var r: array<u32, TM>;
    for (var i = 0u; i < TM; i++) {
        r[i] = min(row0 + i, rows - 1u) * stride;
    }
    return r;
}

// Rows col0 + j * WG_X (j < TN: this invocation's columns), times `stride`.
fn block_cols(col0: u32, cols: u32, stride: u32) -> array<u32, TN> {
    var c: array<u32, TN>;
    for (var j = 0u; j < TN; j++) {
        c[j] = min(col0 + j * WG_X, cols - 1u) * stride;
    }
    return c;
}
