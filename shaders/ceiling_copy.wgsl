// ceiling_copy: dst = src, vec4 per invocation: the adapter's streaming bandwidth
// (bytes read + written per second).
#import dispatch

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_workgroup(wid, nwg) * 256u + lid.x;
    if i < arrayLength(&dst) {
        dst[i] = src[i];
    }
}
