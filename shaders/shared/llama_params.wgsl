// Keep in sync with `LlamaParams` in src/model/llama/gpu.rs.
struct LlamaParams {
    // Token rows in this pass (the prompt for prefill, 1 for a decode step).
    rows: u32,
    // Position of the first row.
    pos0: u32,
    // Hidden width.
    dim: u32,
    // Key/value width: kv_heads * head_dim.
    kv_dim: u32,
    heads: u32,
    kv_heads: u32,
    head_dim: u32,
    // Dimensions of each head that RoPE rotates (even, <= head_dim).
    rope_dims: u32,
    // FFN width.
    ffn: u32,
    // First row whose normalised output is written (rows before it are skipped), so the
    // final norm can keep only the rows whose logits are wanted.
    out_row0: u32,
    // RMSNorm epsilon.
    eps: f32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: LlamaParams;
