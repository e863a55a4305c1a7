//! GGUF files: `quantize` (.npy to one GGUF tensor), `dequantize` (one tensor to .npy),
//! `gguf-info` (metadata and tensors).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use wgpu_lab::bench::table;
use wgpu_lab::convert;
use wgpu_lab::formats::gguf::{ggml_type, Gguf};
use wgpu_lab::formats::quant_search::Quantizer;
use wgpu_lab::formats::weights::WeightFormat;

/// Options of `quantize`.
#[derive(Args)]
pub struct QuantizeArgs {
    /// Storage format: q8_0, q4_0, q4_1, q5_0, q4_k, q6_k, f16, bf16 or f32 (the K-quants
    /// need rows of a multiple of 256 values).
    #[arg(long)]
    pub format: String,
    /// Input .npy (float32 or float64, C order, 1-D to 4-D).
    pub input: PathBuf,
    /// Output .gguf.
    pub output: PathBuf,
    /// Tensor name (default: the input's file stem).
    #[arg(long)]
    pub name: Option<String>,
    /// Q4_0/Q4_1 quantizer: reference (ggml's rule, byte-identical) or rmse (scales
    /// searched for the least squared error; same format).
    #[arg(long, default_value = "reference")]
    pub quantizer: String,
}

/// Options of `dequantize`.
#[derive(Args)]
pub struct DequantizeArgs {
    /// Input .gguf.
    pub input: PathBuf,
    /// Tensor name (see gguf-info).
    #[arg(long)]
    pub tensor: String,
    /// Output .npy.
    pub output: PathBuf,
}

/// Options of `gguf-info`.
#[derive(Args)]
pub struct GgufInfoArgs {
    /// The .gguf file.
    pub file: PathBuf,
}

/// Encodes a .npy array as one tensor of a GGUF v3 file.
pub fn quantize(args: QuantizeArgs) -> Result<ExitCode> {
    let QuantizeArgs {
        format,
        input,
        output,
        name,
        quantizer,
    } = args;
    let format = WeightFormat::parse(&format)?;
    let quantizer = Quantizer::parse(&quantizer)?;
    let name = name.unwrap_or_else(|| {
        input
            .file_stem()
            .map_or("tensor".into(), |s| s.to_string_lossy().into_owned())
    });
    let dims = convert::quantize_npy(&input, &output, format, quantizer, &name)?;
    println!(
        "wrote {} (tensor {name:?}, {}, dims {dims:?})",
        output.display(),
        format.name()
    );
    Ok(ExitCode::SUCCESS)
}

/// Decodes one tensor of a GGUF file to a float32 .npy.
pub fn dequantize(args: DequantizeArgs) -> Result<ExitCode> {
    let DequantizeArgs {
        input,
        tensor,
        output,
    } = args;
    let shape = convert::dequantize_to_npy(&input, &tensor, &output)?;
    println!("wrote {} (float32, shape {shape:?})", output.display());
    Ok(ExitCode::SUCCESS)
}

/// Prints a GGUF file's metadata and tensors.
pub fn info(args: GgufInfoArgs) -> Result<ExitCode> {
    let GgufInfoArgs { file } = args;
    let g = Gguf::open(&file)?;
    print!("{}", gguf_info(&g));
    Ok(ExitCode::SUCCESS)
}

fn gguf_info(g: &Gguf) -> String {
    let mut out = format!(
        "{}: GGUF v{}, {} metadata keys, {} tensors, alignment {}\n\nmetadata:\n",
        g.path.display(),
        g.version,
        g.metadata.len(),
        g.tensors.len(),
        g.alignment
    );
    for (k, v) in &g.metadata {
        out.push_str(&format!("  {k} = {}\n", v.display()));
    }
    out.push_str("\ntensors:\n");
    let mut cells = vec![["name", "type", "shape (ggml dims)", "bytes"]
        .map(String::from)
        .to_vec()];
    for t in &g.tensors {
        cells.push(vec![
            t.name.clone(),
            ggml_type::name(t.ggml_type).to_string(),
            format!("{:?}", t.dims),
            t.bytes.map_or("?".into(), |b| b.to_string()),
        ]);
    }
    out.push_str(&table::render(&cells));
    out
}
