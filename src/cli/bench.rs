//! `bench` (the sweep over sizes x precisions on one or every adapter) and `tune` (the
//! kernel-configuration search whose cache the other commands read).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;
use wgpu_lab::bench::infer as bench_infer;
use wgpu_lab::bench::{report, suite, table, tune};
use wgpu_lab::formats::precision::Precision;
use wgpu_lab::gpu::adapters::{self, AdapterSelector};
use wgpu_lab::gpu::measure::Runs;
use wgpu_lab::Context;

use super::{tune_cache, SelectArgs};

#[derive(Args)]
/// Options of `bench`.
pub struct BenchArgs {
    /// The fast sweep (sizes 256, 512; f32, f16, int8, q8_0, q4_0; GEMV too; 3 runs).
    #[arg(long)]
    pub quick: bool,
    /// GEMM sizes (m = n = k), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "256,512,1024,2048")]
    pub sizes: Vec<usize>,
    /// Precisions (comma list) or `all`.
    #[arg(long, default_value = "all")]
    pub precision: String,
    /// Add the GEMV sweep (m = 1, n = k = size).
    #[arg(long)]
    pub gemv: bool,
    /// Add a model's rows: all-MiniLM-L6-v2's infer rows from its folder, or a llama GGUF
    /// file's decoder rows (llm-bench's columns over 128 tokens of the passage: the file's
    /// own tensors and each --precision the decoder runs at).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Weight sparsity rows too: dense, N:M (N < M <= 8; 2:4, 4:8, 6:8...) or u<percent>
    /// (unstructured, accuracy only), a comma list. Each problem's weights are pruned by
    /// --prune and run per precision by the sparse kernels, with `vs dense`; with --model,
    /// the pruned model's rows (llm-bench --sparsity / infer --sparsity) are added.
    #[arg(long)]
    pub sparsity: Option<String>,
    /// Pruning method of the --sparsity rows: magnitude, wanda or sparsegpt.
    #[arg(long, default_value = "magnitude", requires = "sparsity")]
    pub prune: String,
    /// Timed runs per row.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Warm-up runs per row.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Write the whole report as JSON (`-` for standard output).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the rows as CSV.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write the throughput chart as SVG (and the roofline beside it, `*-roofline.svg`).
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Write a Markdown report with its charts into this folder.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Tune cache file (default: the platform cache folder, wgpu-lab/tune.json).
    #[arg(long)]
    pub tune_cache: Option<PathBuf>,
}

/// Options of `tune`.
#[derive(Args)]
pub struct TuneArgs {
    /// Precisions (comma list) or `all`.
    #[arg(long, default_value = "all")]
    pub precision: String,
    /// Tune cache file (default: the platform cache folder, wgpu-lab/tune.json).
    #[arg(long)]
    pub tune_cache: Option<PathBuf>,
    /// Timed runs per candidate.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Also print every candidate's time and validation (one line each, to stderr).
    #[arg(long)]
    pub trials: bool,
    /// The GEMM problem to tune on, M,N,K (default 256,512,512: quick on any adapter; a
    /// GPU is best tuned near the sizes it will run).
    #[arg(long, value_parser = parse_triple)]
    pub gemm_problem: Option<(usize, usize, usize)>,
    /// The GEMV problem to tune on, N,K (default 2048,2048).
    #[arg(long, value_parser = parse_pair)]
    pub gemv_problem: Option<(usize, usize)>,
    /// Also tune the sparse kernels of these N:M patterns (comma list, e.g. 2:4,4:8) for
    /// each precision that has them, both shape classes.
    #[arg(long)]
    pub sparsity: Option<String>,
    /// Tune a user's kernel instead: search the `override` constants its header declares
    /// (`// lab: tune NAME = v1, v2, ...`) on --gemm-problem (or --gemv-problem when given),
    /// validated as the built-in search is; the winner goes in the tune cache, where
    /// `wgpu-lab kernel FILE` finds it.
    #[arg(long, value_name = "FILE.wgsl")]
    pub kernel: Option<PathBuf>,
    /// The op of --kernel (default: the file's `// lab: op` line).
    #[arg(long, requires = "kernel")]
    pub op: Option<String>,
    /// Seconds the --kernel search may take (default: every candidate).
    #[arg(long, requires = "kernel")]
    pub budget: Option<f64>,
    /// The --kernel file's loops all end: compile it without naga's loop counter, as the
    /// built-in kernels are (see `kernel --trusted-loops`).
    #[arg(long, requires = "kernel")]
    pub trusted_loops: bool,
}

fn parse_triple(s: &str) -> std::result::Result<(usize, usize, usize), String> {
    match s
        .split(',')
        .map(str::parse)
        .collect::<std::result::Result<Vec<usize>, _>>()
    {
        Ok(v) if v.len() == 3 && v.iter().all(|&x| x > 0) => Ok((v[0], v[1], v[2])),
        _ => Err(format!("{s:?}: expected three positive integers M,N,K")),
    }
}

fn parse_pair(s: &str) -> std::result::Result<(usize, usize), String> {
    match s
        .split(',')
        .map(str::parse)
        .collect::<std::result::Result<Vec<usize>, _>>()
    {
        Ok(v) if v.len() == 2 && v.iter().all(|&x| x > 0) => Ok((v[0], v[1])),
        _ => Err(format!("{s:?}: expected two positive integers N,K")),
    }
}

fn roofline_path(plot: &std::path::Path) -> PathBuf {
    let stem = plot
        .file_stem()
        .map_or("bench".into(), |s| s.to_string_lossy().into_owned());
    plot.with_file_name(format!("{stem}-roofline.svg"))
}

/// Runs the sweep, writes the outputs asked for, prints the tables.
pub fn bench(select: &SelectArgs, args: BenchArgs) -> Result<ExitCode> {
    use std::io::IsTerminal;
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
            sparse: None,
        }
    };
    req.model = args.model.clone();
    if let Some(s) = &args.sparsity {
        req.sparse = Some(wgpu_lab::bench::sparse::SparseRequest {
            sparsity: wgpu_lab::formats::sparse::Sparsity::parse_list(s)?,
            method: wgpu_lab::prune::Method::parse(&args.prune)?,
        });
    }
    req.tune = tune_cache(&args.tune_cache);
    if let Some(m) = &req.model {
        if suite::is_llm_model(m) {
            wgpu_lab::formats::llama::LlamaWeights::load(m)?;
        } else {
            bench_infer::check_model_dir(m)?;
        }
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
    // Per adapter: ceilings before, each problem, the model, ceilings after; then the CPU's.
    let model_steps = req.model.is_some() as usize * (1 + req.sparse.is_some() as usize);
    let total = (suite::problems(&req).len() + 2 + model_steps) * ctxs.len() + 1;
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
        for l in &result.llm {
            println!(
                "\n{} on {}: {} text tokens, pp32 / tg16, read bandwidth {}",
                l.model,
                l.adapter,
                l.text_tokens,
                l.bandwidth_gbps
                    .map_or("not measured".into(), |b| format!("{b:.2} GB/s"))
            );
            print!("{}", table::llm_table(&l.rows));
        }
        for l in &result.llm_prune {
            println!(
                "\n{} pruned on {}: decoder linears pruned, the CPU twin over {} text tokens \
                 against the dense f32 twin; calibration {} tokens",
                l.model, l.adapter, l.text_tokens, l.calibration_tokens
            );
            print!("{}", table::llm_prune_table(&l.rows));
        }
        for e in &result.encoder_prune {
            println!(
                "\n{} pruned on {}: the CPU twin's embeddings against the dense f32 twin's",
                e.model, e.adapter
            );
            print!("{}", table::infer_prune_table(&e.rows));
        }
    }
    let disturbed = result.disturbed();
    if !disturbed.is_empty() {
        eprintln!(
            "warning: the machine's load changed during the sweep (ceilings moved by more than \
             the noise); rows are held to the higher measurement, but compare them with care:\n  {}",
            disturbed.join("\n  ")
        );
    }
    if result.all_passed() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: validation failed for at least one row (see the pass column)");
        Ok(ExitCode::FAILURE)
    }
}

/// Tunes each precision and shape class on the selected adapter and saves the cache.
pub fn tune(select: &SelectArgs, args: TuneArgs) -> Result<ExitCode> {
    let TuneArgs {
        precision,
        tune_cache: path,
        repeat,
        trials: show_trials,
        gemm_problem,
        gemv_problem,
        sparsity,
        kernel,
        op,
        budget,
        trusted_loops,
    } = args;
    if let Some(file) = &kernel {
        let problem = match (gemv_problem, gemm_problem) {
            (Some((n, k)), _) => (1, n, k),
            (None, Some(p)) => p,
            (None, None) => tune::ShapeClass::Gemm.problem(),
        };
        return super::kernel::tune(
            select,
            super::kernel::TuneKernelArgs {
                file,
                op: op.as_deref(),
                precision: (precision != "all").then_some(precision.as_str()),
                problem,
                repeat,
                budget,
                trials: show_trials,
                tune_cache: &path,
                trusted_loops,
            },
        );
    }
    let patterns = match &sparsity {
        Some(s) => wgpu_lab::formats::sparse::Sparsity::parse_list(s)?
            .into_iter()
            .map(|p| {
                p.pattern()
                    .ok_or_else(|| anyhow::anyhow!("tune --sparsity takes N:M patterns, not {p}"))
            })
            .collect::<Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    let gemm_problem = gemm_problem.unwrap_or(tune::ShapeClass::Gemm.problem());
    let gemv_problem = gemv_problem.map_or(tune::ShapeClass::Gemv.problem(), |(n, k)| (1, n, k));
    let problem = |class| match class {
        tune::ShapeClass::Gemm => gemm_problem,
        tune::ShapeClass::Gemv => gemv_problem,
    };
    let show = |p: Precision, what: &str, trials: &[tune::Trial]| {
        if show_trials {
            for t in trials {
                let (m, n, k) = t.problem;
                eprintln!(
                    "{} {what} {m}x{n}x{k}: {:?} {:.3} ms{}",
                    p.name(),
                    t.kernel,
                    t.ms,
                    if t.passed { "" } else { " (failed validation)" }
                );
            }
        }
    };
    let path = path.unwrap_or_else(tune::default_path);
    let ctx = Context::new(&select.selector()?)?;
    // What this run finds; merged into the cache as it is on disk when saved.
    let mut tuned = tune::Tuned::new();
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
    let precisions = Precision::parse_list(&precision)?;
    if precisions.contains(&Precision::Weights(
        wgpu_lab::formats::weights::WeightFormat::F32,
    )) {
        // The f32 kernel (`matmul_regblock`) has an entry per layout.
        use wgpu_lab::kernels::matmul::Layout;
        for layout in Layout::ALL {
            let runs = Runs { warmup: 1, repeat };
            let (trials, best) = tune::tune_f32(&ctx, layout, runs, gemm_problem)?;
            show(
                Precision::Weights(wgpu_lab::formats::weights::WeightFormat::F32),
                &format!("Gemm {}", layout.name()),
                &trials,
            );
            if let Some(b) = best {
                tuned.insert(tune::f32_key(layout).into(), b.kernel);
            }
            cells.push(vec![
                "f32".into(),
                format!("Gemm ({} layout, f32 kernel)", layout.name()),
                best.map_or("none passed".into(), |b| format!("{:?}", b.kernel)),
                best.map_or("-".into(), |b| format!("{:.3}", b.ms)),
                trials.len().to_string(),
                trials.iter().filter(|t| !t.passed).count().to_string(),
            ]);
        }
    }
    for p in precisions {
        for class in [tune::ShapeClass::Gemm, tune::ShapeClass::Gemv] {
            let runs = Runs { warmup: 1, repeat };
            let (trials, best) = tune::tune_one_at(&ctx, p, class, runs, problem(class))?;
            show(p, &format!("{class:?}"), &trials);
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
        // The sparse kernels of each pattern, where the format has them.
        if let Precision::Weights(format) = p {
            for &pattern in patterns
                .iter()
                .filter(|_| wgpu_lab::formats::sparse::has_sparse_kernel(format))
            {
                for class in [tune::ShapeClass::Gemm, tune::ShapeClass::Gemv] {
                    let runs = Runs { warmup: 1, repeat };
                    let (trials, best) =
                        tune::tune_sparse(&ctx, format, pattern, runs, problem(class))?;
                    show(p, &format!("{pattern} {class:?}"), &trials);
                    if let Some(b) = best {
                        tuned.insert(tune::sparse_key(format, pattern, class), b.kernel);
                    }
                    let kernel = |t: &tune::Trial| {
                        wgpu_lab::kernels::sparse::SparseKernel::from_entry(t.kernel)
                            .map_or("-".into(), |k| k.describe())
                    };
                    cells.push(vec![
                        p.name().into(),
                        format!("{class:?} ({pattern} sparse)"),
                        best.map_or("none passed".into(), |b| kernel(&b)),
                        best.map_or("-".into(), |b| format!("{:.3}", b.ms)),
                        trials.len().to_string(),
                        trials.iter().filter(|t| !t.passed).count().to_string(),
                    ]);
                }
            }
        }
        // The weight formats' GEMV kernel: workgroup size and rows per workgroup.
        let runs = Runs { warmup: 1, repeat };
        let (trials, best) = tune::tune_gemv_at(&ctx, p, runs, gemv_problem)?;
        show(p, "gemv kernel", &trials);
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
    // Merged under the cache's lock into what is on disk now (a concurrent `tune` or
    // first-use autotune keeps its entries); these entries are no longer autotuned ones.
    tune::TuneCache::update(&path, &tune::adapter_key(&ctx), &tuned, false)?;
    println!("adapter: {}", tune::adapter_key(&ctx));
    print!("{}", table::render(&cells));
    println!("saved to {}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// Options of `ceilings`.
#[derive(Args)]
pub struct CeilingsArgs {
    /// Measure this many times in a row (the spread between rounds is the noise that
    /// `bench` compares its before/after measurements with).
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Measures and prints the CPU's and the adapter's ceilings, `repeat` times.
pub fn ceilings(select: &SelectArgs, args: CeilingsArgs) -> Result<ExitCode> {
    use wgpu_lab::bench::ceilings;
    let ctx = Context::new(&select.selector()?)?;
    let mut rounds = Vec::new();
    for _ in 0..args.repeat.max(1) {
        let cpu = ceilings::cpu::measure();
        let gpu = ceilings::gpu::measure(&ctx, &cpu)?;
        rounds.push((cpu, gpu));
    }
    if args.json {
        let v: Vec<_> = rounds
            .iter()
            .map(|(c, g)| serde_json::json!({"cpu": c, "adapter": g}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    super::print_adapter(&ctx);
    let devices: Vec<(String, wgpu_lab::bench::ceilings::Ceilings)> = rounds
        .iter()
        .enumerate()
        .flat_map(|(i, (c, g))| {
            [
                (format!("#{} CPU", i + 1), c.clone()),
                (format!("#{} {}", i + 1, ctx.summary.name), g.clone()),
            ]
        })
        .collect();
    print!("{}", report::ceilings_rows(&devices));
    if let [(c0, g0), rest @ ..] = rounds.as_slice() {
        for (i, (c, g)) in rest.iter().enumerate() {
            for d in c0.disturbed(c).iter().chain(&g0.disturbed(g)) {
                println!(
                    "round {} differs from round 1 by more than the noise bound: {d}",
                    i + 2
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
