// Keep in sync with `BertParams` in src/model/gpu.rs.
struct BertParams {
    // Token rows in the batch: b * t.
    rows: u32,
    // Padded sequence length.
    t: u32,
    // Hidden width.
    h: u32,
    // Attention heads.
    heads: u32,
    // Sequences.
    b: u32,
    // LayerNorm epsilon.
    eps: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: BertParams;
