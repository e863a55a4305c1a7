// Sum or maximum of one value per invocation across a workgroup of WG invocations (WG a
// power of two). Every invocation must call it (it has barriers) and every invocation gets
// the result.
var<workgroup> red: array<f32, WG>;

fn workgroup_reduce(v: f32, lid: u32, take_max: bool) -> f32 {
    workgroupBarrier();
    red[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s /= 2u) {
        if lid < s {
            let a = red[lid];
            let b = red[lid + s];
            red[lid] = select(a + b, max(a, b), take_max);
        }
        workgroupBarrier();
    }
    return red[0];
}

fn workgroup_sum(v: f32, lid: u32) -> f32 {
    return workgroup_reduce(v, lid, false);
}

fn workgroup_max(v: f32, lid: u32) -> f32 {
    return workgroup_reduce(v, lid, true);
}
