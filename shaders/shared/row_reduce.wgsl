// Sum of one value per invocation across a workgroup of WG invocations (WG a power of two).
// Every invocation must call it (it has barriers) and every invocation gets the sum.
var<workgroup> red: array<f32, WG>;

fn workgroup_sum(v: f32, lid: u32) -> f32 {
    workgroupBarrier();
    red[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s /= 2u) {
        if lid < s {
            red[lid] += red[lid + s];
        }
        workgroupBarrier();
    }
    return red[0];
}
