// Output epilogue of a linear layer: add the output feature's bias.
// BIAS_BINDING comes from the variant prefix (the kernel's first free binding).
@group(0) @binding(BIAS_BINDING) var<storage, read> bias: array<f32>;

fn epilogue(v: f32, col: u32) -> f32 {
    return v + bias[col];
}
