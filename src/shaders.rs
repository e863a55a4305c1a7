//! WGSL sources from `shaders/`, embedded at build time, and the one templating step.
//!
//! A kernel's source is assembled as: a generated prefix of `const` declarations (the
//! variant's register/tile sizes, which WGSL requires as `const` because they size
//! function-scope arrays), then the file, with each `#import NAME` line replaced by
//! `shaders/shared/NAME.wgsl` (each imported once) and each `#splice NAME` line by code the
//! host generated for the variant ([`Define::Splice`]). Workgroup sizes and layout flags are
//! WGSL `override` constants set at pipeline creation instead.

use crate::error::{LabError, Result};

/// Kernel files by stem (the file name without `.wgsl`).
pub const KERNELS: &[(&str, &str)] = &[
    ("matmul_naive", include_str!("../shaders/matmul_naive.wgsl")),
    ("matmul_tiled", include_str!("../shaders/matmul_tiled.wgsl")),
    (
        "matmul_regblock",
        include_str!("../shaders/matmul_regblock.wgsl"),
    ),
    (
        "matmul_scalarblock",
        include_str!("../shaders/matmul_scalarblock.wgsl"),
    ),
    ("matmul_wq", include_str!("../shaders/matmul_wq.wgsl")),
    (
        "matmul_wq_tiled",
        include_str!("../shaders/matmul_wq_tiled.wgsl"),
    ),
    ("gemv_wq", include_str!("../shaders/gemv_wq.wgsl")),
    ("gemv_sparse", include_str!("../shaders/gemv_sparse.wgsl")),
    (
        "gemv_sparse_rows",
        include_str!("../shaders/gemv_sparse_rows.wgsl"),
    ),
    (
        "gemv_sparse_bcast",
        include_str!("../shaders/gemv_sparse_bcast.wgsl"),
    ),
    (
        "matmul_sparse",
        include_str!("../shaders/matmul_sparse.wgsl"),
    ),
    (
        "gemv_wq_broadcast",
        include_str!("../shaders/gemv_wq_broadcast.wgsl"),
    ),
    (
        "gemv_i8_broadcast",
        include_str!("../shaders/gemv_i8_broadcast.wgsl"),
    ),
    (
        "gemv_wq_subgroup",
        include_str!("../shaders/gemv_wq_subgroup.wgsl"),
    ),
    ("ceiling_copy", include_str!("../shaders/ceiling_copy.wgsl")),
    ("ceiling_read", include_str!("../shaders/ceiling_read.wgsl")),
    ("ceiling_fma", include_str!("../shaders/ceiling_fma.wgsl")),
    ("ceiling_dot4", include_str!("../shaders/ceiling_dot4.wgsl")),
    ("bert_embed", include_str!("../shaders/bert_embed.wgsl")),
    (
        "bert_add_layernorm",
        include_str!("../shaders/bert_add_layernorm.wgsl"),
    ),
    (
        "bert_attention",
        include_str!("../shaders/bert_attention.wgsl"),
    ),
    ("bert_pool", include_str!("../shaders/bert_pool.wgsl")),
    (
        "llama_add_rmsnorm",
        include_str!("../shaders/llama_add_rmsnorm.wgsl"),
    ),
    (
        "llama_rope_store",
        include_str!("../shaders/llama_rope_store.wgsl"),
    ),
    (
        "llama_attention",
        include_str!("../shaders/llama_attention.wgsl"),
    ),
    (
        "llama_silu_mul",
        include_str!("../shaders/llama_silu_mul.wgsl"),
    ),
    ("llama_argmax", include_str!("../shaders/llama_argmax.wgsl")),
    ("matmul_i8", include_str!("../shaders/matmul_i8.wgsl")),
    (
        "matmul_f16acc_tiled",
        include_str!("../shaders/matmul_f16acc_tiled.wgsl"),
    ),
    (
        "matmul_i8_tiled",
        include_str!("../shaders/matmul_i8_tiled.wgsl"),
    ),
    (
        "quantize_rows_i8",
        include_str!("../shaders/quantize_rows_i8.wgsl"),
    ),
    (
        "quantize_rot32_i8",
        include_str!("../shaders/quantize_rot32_i8.wgsl"),
    ),
];

/// Shared modules by name, for `#import NAME`.
pub const SHARED: &[(&str, &str)] = &[
    ("dispatch", include_str!("../shaders/shared/dispatch.wgsl")),
    (
        "llama_params",
        include_str!("../shaders/shared/llama_params.wgsl"),
    ),
    (
        "matmul_scalar_io",
        include_str!("../shaders/shared/matmul_scalar_io.wgsl"),
    ),
    (
        "int8_params",
        include_str!("../shaders/shared/int8_params.wgsl"),
    ),
    (
        "round_half_away",
        include_str!("../shaders/shared/round_half_away.wgsl"),
    ),
    (
        "matmul_wq_params",
        include_str!("../shaders/shared/matmul_wq_params.wgsl"),
    ),
    (
        "wq_params",
        include_str!("../shaders/shared/wq_params.wgsl"),
    ),
    ("hsum", include_str!("../shaders/shared/hsum.wgsl")),
    ("f16_rne", include_str!("../shaders/shared/f16_rne.wgsl")),
    (
        "sparse_params",
        include_str!("../shaders/shared/sparse_params.wgsl"),
    ),
    (
        "sparse_in_storage",
        include_str!("../shaders/shared/sparse_in_storage.wgsl"),
    ),
    (
        "sparse_in_uniform",
        include_str!("../shaders/shared/sparse_in_uniform.wgsl"),
    ),
    (
        "sparse_mask",
        include_str!("../shaders/shared/sparse_mask.wgsl"),
    ),
    (
        "sparse_walk",
        include_str!("../shaders/shared/sparse_walk.wgsl"),
    ),
    (
        "row_dot_generic",
        include_str!("../shaders/shared/row_dot_generic.wgsl"),
    ),
    (
        "row_dot_q8_0",
        include_str!("../shaders/shared/row_dot_q8_0.wgsl"),
    ),
    (
        "gemv_broadcast_params",
        include_str!("../shaders/shared/gemv_broadcast_params.wgsl"),
    ),
    (
        "epilogue_none",
        include_str!("../shaders/shared/epilogue_none.wgsl"),
    ),
    (
        "epilogue_bias",
        include_str!("../shaders/shared/epilogue_bias.wgsl"),
    ),
    (
        "epilogue_bias_gelu",
        include_str!("../shaders/shared/epilogue_bias_gelu.wgsl"),
    ),
    (
        "gemv_in_plain",
        include_str!("../shaders/shared/gemv_in_plain.wgsl"),
    ),
    (
        "gemv_in_rmsnorm",
        include_str!("../shaders/shared/gemv_in_rmsnorm.wgsl"),
    ),
    (
        "gemv_out_plain",
        include_str!("../shaders/shared/gemv_out_plain.wgsl"),
    ),
    (
        "gemv_out_residual_norm",
        include_str!("../shaders/shared/gemv_out_residual_norm.wgsl"),
    ),
    (
        "gemv_out_silu",
        include_str!("../shaders/shared/gemv_out_silu.wgsl"),
    ),
    (
        "gemv_store_quads",
        include_str!("../shaders/shared/gemv_store_quads.wgsl"),
    ),
    (
        "attention_rope_fused",
        include_str!("../shaders/shared/attention_rope_fused.wgsl"),
    ),
    (
        "attention_rope_apart",
        include_str!("../shaders/shared/attention_rope_apart.wgsl"),
    ),
    (
        "kv_rw_f32",
        include_str!("../shaders/shared/kv_rw_f32.wgsl"),
    ),
    (
        "kv_rw_f16",
        include_str!("../shaders/shared/kv_rw_f16.wgsl"),
    ),
    ("erf", include_str!("../shaders/shared/erf.wgsl")),
    (
        "bert_params",
        include_str!("../shaders/shared/bert_params.wgsl"),
    ),
    (
        "layernorm_row",
        include_str!("../shaders/shared/layernorm_row.wgsl"),
    ),
    (
        "row_reduce",
        include_str!("../shaders/shared/row_reduce.wgsl"),
    ),
    (
        "regblock_b_f32",
        include_str!("../shaders/shared/regblock_b_f32.wgsl"),
    ),
    (
        "regblock_b_f16",
        include_str!("../shaders/shared/regblock_b_f16.wgsl"),
    ),
    (
        "int8_dot_packed",
        include_str!("../shaders/shared/int8_dot_packed.wgsl"),
    ),
    (
        "int8_dot_manual",
        include_str!("../shaders/shared/int8_dot_manual.wgsl"),
    ),
    (
        "weights_f32",
        include_str!("../shaders/shared/weights_f32.wgsl"),
    ),
    (
        "weights_f16",
        include_str!("../shaders/shared/weights_f16.wgsl"),
    ),
    (
        "weights_bf16",
        include_str!("../shaders/shared/weights_bf16.wgsl"),
    ),
    (
        "weights_q8_0",
        include_str!("../shaders/shared/weights_q8_0.wgsl"),
    ),
    (
        "kv_store_f32",
        include_str!("../shaders/shared/kv_store_f32.wgsl"),
    ),
    (
        "kv_store_f16",
        include_str!("../shaders/shared/kv_store_f16.wgsl"),
    ),
    (
        "kv_load_f32",
        include_str!("../shaders/shared/kv_load_f32.wgsl"),
    ),
    (
        "kv_load_f16",
        include_str!("../shaders/shared/kv_load_f16.wgsl"),
    ),
    (
        "tile_shape",
        include_str!("../shaders/shared/tile_shape.wgsl"),
    ),
    (
        "gemv_rows",
        include_str!("../shaders/shared/gemv_rows.wgsl"),
    ),
    (
        "nibbles_q4",
        include_str!("../shaders/shared/nibbles_q4.wgsl"),
    ),
    (
        "block_lazy",
        include_str!("../shaders/shared/block_lazy.wgsl"),
    ),
    (
        "block_nibbles4",
        include_str!("../shaders/shared/block_nibbles4.wgsl"),
    ),
    (
        "weights_q4_0",
        include_str!("../shaders/shared/weights_q4_0.wgsl"),
    ),
    (
        "weights_q4_1",
        include_str!("../shaders/shared/weights_q4_1.wgsl"),
    ),
    (
        "weights_q5_0",
        include_str!("../shaders/shared/weights_q5_0.wgsl"),
    ),
    (
        "weights_q4_k",
        include_str!("../shaders/shared/weights_q4_k.wgsl"),
    ),
    (
        "weights_q6_k",
        include_str!("../shaders/shared/weights_q6_k.wgsl"),
    ),
    (
        "regblock_b_f16acc",
        include_str!("../shaders/shared/regblock_b_f16acc.wgsl"),
    ),
    (
        "matmul_params",
        include_str!("../shaders/shared/matmul_params.wgsl"),
    ),
];

/// A `const` declaration placed before a kernel's source.
#[derive(Debug, Clone, PartialEq)]
pub enum Define {
    /// `const NAME: u32 = Vu;`
    U32(&'static str, u32),
    /// `const NAME: bool = V;`
    Bool(&'static str, bool),
    /// The shared module `shaders/shared/NAME.wgsl`, as if the kernel began `#import NAME`
    /// (how a variant picks its weight-decoding module).
    Import(String),
    /// `alias NAME = TYPE;` (an element type).
    Alias(&'static str, &'static str),
    /// `enable EXT;` (e.g. f16).
    Enable(&'static str),
    /// Code generated by the host for the kernel's `#splice NAME` line: straight-line code
    /// (a register block written out) that WGSL cannot express as a loop without the driver
    /// keeping the loop's arrays in memory.
    Splice(&'static str, String),
}

impl Define {
    fn wgsl(&self) -> String {
        match self {
            Define::U32(n, v) => format!("const {n}: u32 = {v}u;\n"),
            Define::Bool(n, v) => format!("const {n}: bool = {v};\n"),
            Define::Import(n) => format!("#import {n}\n"),
            Define::Alias(n, t) => format!("alias {n} = {t};\n"),
            Define::Enable(e) => format!("enable {e};\n"),
            Define::Splice(..) => String::new(),
        }
    }
}

/// Assembles the full WGSL of `stem` with `defines` prepended and imports resolved.
pub fn assemble(stem: &str, defines: &[Define]) -> Result<String> {
    let body = KERNELS
        .iter()
        .find(|(s, _)| *s == stem)
        .map(|(_, src)| *src)
        .ok_or_else(|| LabError::Shader {
            shader: stem.to_string(),
            message: "no such kernel file in shaders/".into(),
        })?;
    let mut prefix = String::new();
    for d in defines {
        prefix.push_str(&d.wgsl());
    }
    let splices: Vec<(&str, &str)> = defines
        .iter()
        .filter_map(|d| match d {
            Define::Splice(n, code) => Some((*n, code.as_str())),
            _ => None,
        })
        .collect();
    let mut out = String::new();
    let mut seen = Vec::new();
    resolve(stem, &prefix, &splices, &mut out, &mut seen)?;
    resolve(stem, body, &splices, &mut out, &mut seen)?;
    // WGSL directives (`enable f16;`, `requires ...;`) must precede every declaration,
    // wherever an imported module placed them.
    let (directives, rest): (Vec<&str>, Vec<&str>) = out.lines().partition(|l| {
        let t = l.trim_start();
        t.starts_with("enable ") || t.starts_with("requires ")
    });
    let mut sorted = String::new();
    for l in directives.iter().chain(rest.iter()) {
        sorted.push_str(l);
        sorted.push('\n');
    }
    Ok(sorted)
}

fn resolve(
    stem: &str,
    src: &str,
    splices: &[(&str, &str)],
    out: &mut String,
    seen: &mut Vec<String>,
) -> Result<()> {
    for line in src.lines() {
        if let Some(name) = line.trim().strip_prefix("#splice ") {
            let name = name.trim();
            let code =
                splices
                    .iter()
                    .find(|(n, _)| *n == name)
                    .ok_or_else(|| LabError::Shader {
                        shader: stem.to_string(),
                        message: format!("#splice {name}: the variant generated no such code"),
                    })?;
            out.push_str(code.1);
            if !code.1.ends_with('\n') {
                out.push('\n');
            }
        } else if let Some(name) = line.trim().strip_prefix("#import ") {
            let name = name.trim();
            if seen.iter().any(|s| s == name) {
                continue;
            }
            let shared =
                SHARED
                    .iter()
                    .find(|(n, _)| *n == name)
                    .ok_or_else(|| LabError::Shader {
                        shader: stem.to_string(),
                        message: format!("#import {name}: no shaders/shared/{name}.wgsl"),
                    })?;
            seen.push(name.to_string());
            resolve(stem, shared.1, splices, out, seen)?;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(())
}
