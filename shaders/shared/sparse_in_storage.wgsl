// The sparse kernels' activations as a storage array (any number of rows, gathered at
// the kept columns), and the kept words read 4 at a time.
@group(0) @binding(1) var<storage, read> a: array<f32>;

// Words 4q .. 4q + 3 of the kept values (the weights modules' quad reader).
fn wquad(q: u32) -> vec4<u32> {
    let o = q * 4u;
    return vec4(w[o], w[o + 1u], w[o + 2u], w[o + 3u]);
}

// A[row0 + col] for a column of the row (0 past the row's end: the padding's columns).
fn xat(row0: u32, col: u32) -> f32 {
    return select(0.0, a[row0 + min(col, p.k - 1u)], col < p.k);
}
