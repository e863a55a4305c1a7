// matmul_tiled: the textbook GPU kernel. A TILE x TILE workgroup stages one tile of A and
// one of B in workgroup memory per step along k; each invocation owns one output.
// TILE comes from the variant prefix (src/kernels/matmul.rs).
#import dispatch
#import matmul_scalar_io

var<workgroup> tile_a: array<f32, TILE * TILE>;
var<workgroup> tile_b: array<f32, TILE * TILE>;

@compute @workgroup_size(TILE, TILE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    // Uniform across the workgroup, so the early return keeps barriers legal.
    let tile = linear_workgroup(wid, nwg);
    if tile >= p.tiles {
        return;
    }
    let row0 = (tile / p.tiles_n) * TILE;
    let col0 = (tile % p.tiles_n) * TILE;
    let row = row0 + lid.y;
    let col = col0 + lid.x;
    var acc = 0.0;
    for (var k0 = 0u; k0 < p.k; k0 += TILE) {
        // Out-of-range elements load as 0 so partial tiles add nothing.
        let ka = k0 + lid.x;
        var va = 0.0;
        if row < p.m && ka < p.k {
            va = a[row * p.lda + ka];
        }
        tile_a[lid.y * TILE + lid.x] = va;
        let kb = k0 + lid.y;
        var vb = 0.0;
        if kb < p.k && col < p.n {
            vb = b_at(kb, col);
        }
        tile_b[lid.y * TILE + lid.x] = vb;
        workgroupBarrier();
        for (var i = 0u; i < TILE; i++) {
            acc = fma(tile_a[lid.y * TILE + i], tile_b[i * TILE + lid.x], acc);
        }
        workgroupBarrier();
    }
    if row < p.m && col < p.n {
        c[row * p.n + col] = acc;
    }
}
