//! The `wgpu-lab` command: parses the arguments and hands each command to its `cli` module.

mod cli;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use cli::SelectArgs;

/// GPU compute experiments: matmul and quantized inference, validated and timed.
#[derive(Parser)]
#[command(name = "wgpu-lab", version, about)]
struct Cli {
    #[command(flatten)]
    select: SelectArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every adapter on every backend with the features and limits that matter here.
    Adapters(cli::adapters::AdaptersArgs),
    /// Run matmul kernels on random (or your own .npy) matrices: validate and time them.
    Matmul(cli::matmul::MatmulArgs),
    /// Encode a .npy array as one tensor of a GGUF v3 file (rows along the last axis).
    Quantize(cli::gguf::QuantizeArgs),
    /// Decode one tensor of a GGUF file to a float32 .npy.
    Dequantize(cli::gguf::DequantizeArgs),
    /// List a GGUF file's metadata and tensors.
    GgufInfo(cli::gguf::GgufInfoArgs),
    /// Sentence embeddings with all-MiniLM-L6-v2 on the GPU, and their cosine similarities.
    Embed(cli::model::EmbedArgs),
    /// Your own WGSL kernel: validate it against the float64 twin on the shape battery,
    /// then time it next to the tuned built-in kernel and the CPU library, on the roofline.
    Kernel(cli::kernel::KernelArgs),
    /// Search kernel configurations per precision and shape class on this adapter; keep the
    /// fastest that validates, in the tune cache that other commands read.
    Tune(cli::bench::TuneArgs),
    /// Sweep sizes x precisions (GEMM, GEMV, the model) on one or every adapter
    /// (`--adapter all`), validated, on the measured roofline; JSON, CSV, SVG, Markdown.
    Bench(cli::bench::BenchArgs),
    /// Measure the CPU's and the adapter's ceilings (peaks; bandwidth per memory level),
    /// optionally several times to see the noise.
    Ceilings(cli::bench::CeilingsArgs),
    /// Generate text with a llama-architecture GGUF (SmolLM2 by default) on the GPU,
    /// streamed as it comes, then prefill and decode tokens/s.
    Generate(cli::llm::GenerateArgs),
    /// llama-bench and llama-perplexity --kl-divergence in one table: per precision, prompt
    /// and generation tokens/s (GPU and CPU), memory, and perplexity, KL divergence and top-1
    /// agreement against the f32 CPU twin over a text.
    LlmBench(cli::llm::LlmBenchArgs),
    /// The headline table: sentences/s, memory and accuracy of the model per precision,
    /// GPU against the CPU twin.
    Infer(cli::model::InferArgs),
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Adapters(a) => cli::adapters::run(&cli.select, a),
        Command::Matmul(a) => cli::matmul::run(&cli.select, a),
        Command::Quantize(a) => cli::gguf::quantize(a),
        Command::Dequantize(a) => cli::gguf::dequantize(a),
        Command::GgufInfo(a) => cli::gguf::info(a),
        Command::Embed(a) => cli::model::embed(&cli.select, a),
        Command::Kernel(a) => cli::kernel::run(&cli.select, a),
        Command::Tune(a) => cli::bench::tune(&cli.select, a),
        Command::Bench(a) => cli::bench::bench(&cli.select, a),
        Command::Ceilings(a) => cli::bench::ceilings(&cli.select, a),
        Command::Generate(a) => cli::llm::generate(&cli.select, a),
        Command::LlmBench(a) => cli::llm::llm_bench(&cli.select, a),
        Command::Infer(a) => cli::model::infer(&cli.select, a),
    }
}
