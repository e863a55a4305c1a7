// Output epilogue of a linear layer followed by GELU: add the bias, then GELU (erf).
#import erf
@group(0) @binding(BIAS_BINDING) var<storage, read> bias: array<f32>;

fn epilogue(v: f32, col: u32) -> f32 {
    return gelu(v + bias[col]);
}
