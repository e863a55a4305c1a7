// ceiling_read: read-only streaming bandwidth, the traffic of a GEMV (weights read once,
// almost nothing written). Each invocation sums READS vec4<u32> words strided by the grid
// (so neighbouring invocations read neighbouring words) with wrapping integer adds, exact
// and checkable on the host, and writes one vec4 per invocation. The prefix sets READS.
#import dispatch

@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<u32>>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_workgroup(wid, nwg) * 256u + lid.x;
    let lanes = arrayLength(&dst);
    if i >= lanes {
        return;
    }
    var acc = vec4<u32>(0u);
    for (var r = 0u; r < READS; r++) {
        acc += src[r * lanes + i];
    }
    dst[i] = acc;
}
