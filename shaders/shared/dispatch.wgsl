// Linear workgroup index over a 2-D dispatch grid.
// The host folds dispatches of more than 65535 workgroups into y (gpu::dispatch::grid),
// so every kernel derives its tile from this index and returns when it is past the end.
fn linear_workgroup(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}
