//! The model commands: `embed` (sentence embeddings and their cosines) and `infer` (the
//! per-precision table of all-MiniLM-L6-v2, GPU against its CPU twin).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;
use wgpu_lab::bench::infer::{self as bench_infer, InferRequest};
use wgpu_lab::bench::table;
use wgpu_lab::formats::bert::BertWeights;
use wgpu_lab::formats::precision::Precision;
use wgpu_lab::formats::quant_search::Quantizer;
use wgpu_lab::formats::weights::WeightFormat;
use wgpu_lab::model::bert::calibrate;
use wgpu_lab::model::bert::gpu::GpuBert;
use wgpu_lab::model::bert::tokenize::Tokenizer;
use wgpu_lab::Context;

use super::{print_adapter, SelectArgs, DEFAULT_MODEL};

/// Options of `embed`.
#[derive(Args)]
pub struct EmbedArgs {
    /// Hugging Face model folder (config.json, model.safetensors, tokenizer.json).
    #[arg(long, default_value = DEFAULT_MODEL)]
    pub model: PathBuf,
    /// Precision of the linear layers: f32, f16, bf16, int8, int8rot, q8_0, q4_0, q4_1, q5_0,
    /// q4_k, q6_k (a K-quant falls back to q5_0 / q8_0 for rows that are not whole
    /// super-blocks of 256, as llama-quantize does).
    #[arg(long, default_value = "f32")]
    pub precision: String,
    /// How Q4_0/Q4_1 weights are quantized: reference (ggml's rule), rmse (searched
    /// scales), imatrix (searched, weighted by activations on calibration text).
    #[arg(long, default_value = "imatrix")]
    pub quantizer: String,
    /// Print JSON: {"adapter", "precision", "embeddings", "tokens"}.
    #[arg(long)]
    pub json: bool,
    /// Prune the encoder's linears to this pattern first: N:M (stored compressed, run
    /// through matmul_sparse) or u<percent> (masked dense). Needs a plain format
    /// --precision (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0).
    #[arg(long)]
    pub sparsity: Option<String>,
    /// How --sparsity prunes: magnitude, wanda or sparsegpt (calibrated on the committed
    /// calibration sentences).
    #[arg(long, default_value = "wanda")]
    pub prune: String,
    /// The texts.
    #[arg(required = true)]
    pub texts: Vec<String>,
}

/// `embed --sparsity`: the encoder pruned by `method` to `sparsity`, stored at `precision`
/// (a plain format), on the GPU.
fn pruned_encoder(
    ctx: &Context,
    w: &BertWeights,
    tok: &Tokenizer,
    precision: Precision,
    sparsity: &str,
    method: &str,
) -> Result<GpuBert> {
    use wgpu_lab::formats::sparse::Sparsity;
    let Precision::Weights(format) = precision else {
        bail!(
            "--sparsity needs a plain format --precision (f32, f16, q8_0, q4_0...), not {}",
            precision.name()
        );
    };
    let sparsity = Sparsity::parse(sparsity)?;
    let method = wgpu_lab::prune::Method::parse(method)?;
    let calibration = tok
        .encode_batch(&wgpu_lab::model::bert::calibrate::CALIBRATION)?
        .batch;
    let p = wgpu_lab::model::bert::prune::prune_bert(w, method, sparsity, &calibration)?;
    eprintln!(
        "pruned the encoder linears to {sparsity} by {method} in {:.1} s",
        p.seconds
    );
    let pe = p.weights(w, format)?;
    Ok(match &pe.sparse {
        None => GpuBert::new(ctx, &pe.weights, precision)?,
        Some(layers) => {
            let tuned = super::tune_cache(&None).for_adapter(ctx);
            // Sized for a batch of a few sentences.
            let (kernel, _) = wgpu_lab::bench::sparse::kernel_for_layers(ctx, &tuned, layers, 64)?;
            GpuBert::with_sparse(ctx, &pe.weights, layers, kernel)?
        }
    })
}

/// Options of `infer`.
#[derive(Args)]
pub struct InferArgs {
    /// Hugging Face model folder.
    #[arg(long, default_value = DEFAULT_MODEL)]
    pub model: PathBuf,
    /// Precisions (comma list) or `all`.
    #[arg(long, default_value = "all")]
    pub precision: String,
    /// Sentences per batch.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Tokens per sequence (default: the sentences' own lengths).
    #[arg(long)]
    pub seq: Option<usize>,
    /// Timed batches per precision.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Skip timing the CPU twin.
    #[arg(long)]
    pub no_cpu: bool,
    /// Quantizers of Q4_0/Q4_1 weights (comma list or `all`): reference (ggml's rule),
    /// rmse (searched scales), imatrix (searched, weighted by calibration activations).
    #[arg(long, default_value = "imatrix")]
    pub quantizer: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Prune the encoder's linears to these patterns (N:M or u<percent>, a comma list) and
    /// print each precision x pattern x method's cosine to the dense f32 twin, scored by
    /// the CPU twin on the values each precision stores, then on the GPU encoder as stored
    /// (N:M through matmul_sparse, u<percent> as masked dense): its cosine and
    /// sentences/s. Precisions: plain formats (default f32,q8_0,q4_0).
    #[arg(long)]
    pub sparsity: Option<String>,
    /// Pruning methods of the --sparsity rows (comma list): magnitude, wanda, sparsegpt.
    #[arg(long, default_value = "magnitude,wanda,sparsegpt")]
    pub prune: String,
    /// With --sparsity: the CPU twin's cosines only, no GPU columns.
    #[arg(long)]
    pub no_gpu: bool,
}

/// Embeds the texts on the GPU and prints the embeddings and their cosine matrix.
pub fn embed(select: &SelectArgs, args: EmbedArgs) -> Result<ExitCode> {
    let EmbedArgs {
        model,
        precision,
        quantizer,
        json,
        sparsity,
        prune,
        texts,
    } = args;
    let quantizer = Quantizer::parse(&quantizer)?;
    let precision = match Precision::parse_list(&precision)?.as_slice() {
        [p] if wgpu_lab::model::bert::gpu::supported(*p) => *p,
        _ => bail!(
            "embed takes one of: f32, f16, bf16, int8, int8rot, q8_0, q4_0, q4_1, q5_0, q4_k, q6_k"
        ),
    };
    bench_infer::check_model_dir(&model)?;
    let weights = BertWeights::load(&model)?;
    let tok = Tokenizer::from_dir(&model, weights.config.max_position_embeddings)?;
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
    let mut gpu = match &sparsity {
        None => GpuBert::with_quantizer(&ctx, &weights, precision, quantizer, importance.as_ref())?,
        Some(s) => pruned_encoder(&ctx, &weights, &tok, precision, s, &prune)?,
    };
    let emb = gpu.embed(&ctx, &enc.batch)?;
    let tokens: Vec<Vec<u32>> = (0..enc.batch.b)
        .map(|s| enc.batch.ids[s * enc.batch.t..][..enc.batch.lens[s] as usize].to_vec())
        .collect();
    if json {
        let v = serde_json::json!({
            "adapter": ctx.summary.name,
            "precision": precision.name(),
            "sparsity": sparsity,
            "prune": sparsity.as_ref().map(|_| prune.clone()),
            "kernel": gpu.sparse_kernel.map(|k| k.describe()),
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
    for (i, (e, t)) in emb.iter().zip(&texts).enumerate() {
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

/// Runs the model at each precision and prints speed, memory and accuracy.
pub fn infer(select: &SelectArgs, args: InferArgs) -> Result<ExitCode> {
    let InferArgs {
        model,
        precision,
        batch,
        seq,
        repeat,
        no_cpu,
        quantizer,
        json,
        sparsity,
        prune,
        no_gpu,
    } = args;
    if let Some(sparsity) = sparsity {
        let ctx = match no_gpu {
            true => None,
            false => Some(Context::new(&select.selector()?)?),
        };
        let a = PruneArgs {
            precision: &precision,
            sparsity: &sparsity,
            prune: &prune,
            repeat,
            json,
        };
        return infer_prune(ctx.as_ref(), &model, a);
    }
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
            let ok = wgpu_lab::model::bert::gpu::supported(*p);
            if !ok && precision != "all" {
                eprintln!("note: {} is not a model precision; skipped", p.name());
            }
            ok
        })
        .collect();
    let ctx = Context::new(&select.selector()?)?;
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
        if let Some(lib) = rows.first().and_then(|r| r.cpu_impl.as_ref()) {
            println!("CPU: {lib}; twin: wgpu-lab's own f32 CPU reference (reference::bert)");
        }
        println!(
            "cosine: against the f32 CPU twin over {} varied sentences; first run includes \
             the driver's shader compilation",
            bench_infer::SENTENCES.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What `infer --sparsity` was asked for.
struct PruneArgs<'a> {
    precision: &'a str,
    sparsity: &'a str,
    prune: &'a str,
    repeat: usize,
    json: bool,
}

/// `infer --sparsity`: the pruned encoder's cosine per precision x pattern x method.
fn infer_prune(ctx: Option<&Context>, model: &std::path::Path, a: PruneArgs) -> Result<ExitCode> {
    let PruneArgs {
        precision,
        sparsity,
        prune,
        repeat,
        json,
    } = a;
    use wgpu_lab::bench::infer_prune;
    use wgpu_lab::formats::sparse::Sparsity;
    use wgpu_lab::prune::Method;
    let names = if precision == "all" {
        "f32,q8_0,q4_0"
    } else {
        precision
    };
    let formats = names
        .split(',')
        .map(WeightFormat::parse)
        .collect::<wgpu_lab::Result<Vec<_>>>()?;
    let methods = prune
        .split(',')
        .map(Method::parse)
        .collect::<wgpu_lab::Result<Vec<_>>>()?;
    let patterns = Sparsity::parse_list(sparsity)?;
    bench_infer::check_model_dir(model)?;
    let w = BertWeights::load(model)?;
    let tok = Tokenizer::from_dir(model, w.config.max_position_embeddings)?;
    let tuned = ctx.map(|c| super::tune_cache(&None).for_adapter(c));
    let gpu = ctx
        .zip(tuned.as_ref())
        .map(|(ctx, tuned)| infer_prune::EncoderGpu { ctx, tuned, repeat });
    let rows = infer_prune::run(gpu.as_ref(), &w, &tok, &formats, &patterns, &methods)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        if let Some(ctx) = ctx {
            print_adapter(ctx);
        }
        println!(
            "model {}; encoder linears pruned, the CPU twin's embeddings of the {} accuracy \
             sentences against the dense f32 twin's",
            model.display(),
            wgpu_lab::bench::infer::SENTENCES.len()
        );
        print!("{}", table::infer_prune_table(&rows));
    }
    Ok(ExitCode::SUCCESS)
}
