//! `wgpu-lab kernel FILE.wgsl`: a user's kernel validated on the shape battery, then timed
//! next to the tuned built-in kernel and the CPU library on the roofline; and
//! `wgpu-lab tune --kernel FILE.wgsl`, the search of its declared constants.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;
use wgpu_lab::bench::ceilings::{self, Ceilings};
use wgpu_lab::bench::report;
use wgpu_lab::bench::table;
use wgpu_lab::bench::tune;
use wgpu_lab::formats::precision::Precision;
use wgpu_lab::gpu::measure::Runs;
use wgpu_lab::gpu::pipeline::Checks;
use wgpu_lab::kernels::matmul_wq::is_gemv_name;
use wgpu_lab::lab::{self, Kernel, Op, Shapes};
use wgpu_lab::{Context, LabError};

use super::{print_adapter, SelectArgs};

/// Options of `kernel`.
#[derive(Args)]
pub struct KernelArgs {
    /// The WGSL file: one compute kernel following its op's contract
    /// (docs/kernel-lab.md; examples/kernels/ has one per op).
    pub file: PathBuf,
    /// The op (matmul_nn, matmul_nt, matmul_i8); default: the file's `// lab: op` line.
    #[arg(long)]
    pub op: Option<String>,
    /// The op's precision (f32; for matmul_nt also f16, bf16, q8_0, q4_0, q4_1, q5_0, q4_k,
    /// q6_k; int8 for matmul_i8); default: the file's `// lab: precision` line.
    #[arg(long)]
    pub precision: Option<String>,
    /// Rows of C of the timed problem (1: the GEMV case).
    #[arg(long, default_value_t = 1024)]
    pub m: usize,
    /// Columns of C of the timed problem.
    #[arg(long, default_value_t = 1024)]
    pub n: usize,
    /// Inner dimension of the timed problem.
    #[arg(long, default_value_t = 1024)]
    pub k: usize,
    /// Set an `override` constant, NAME=VALUE (repeatable); over the tuned and default ones.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// Validate only (no timing).
    #[arg(long)]
    pub no_time: bool,
    /// Leave the largest shape (1000x1000x1000) out of the battery.
    #[arg(long)]
    pub quick: bool,
    /// Timed runs of each kernel.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Untimed runs after the validated first one.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Skip the CPU library's timing.
    #[arg(long)]
    pub no_cpu: bool,
    /// Skip measuring the ceilings (the roofline columns stay empty; saves ~5 s).
    #[arg(long)]
    pub no_roofline: bool,
    /// Seconds one run of the kernel may take before it is reported as hung and the
    /// process exits.
    #[arg(long, default_value_t = 120.0)]
    pub timeout: f64,
    /// Print JSON (the validation report and the timing rows) instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Tune cache file (default: the platform cache folder, wgpu-lab/tune.json): the
    /// built-in row runs its tuned kernel, the file its `tune --kernel` constants.
    #[arg(long)]
    pub tune_cache: Option<PathBuf>,
    /// Never search a built-in kernel the tune cache lacks (its row runs the default).
    #[arg(long)]
    pub no_autotune: bool,
    /// Seconds a first-use autotune of the built-in kernel may spend.
    #[arg(long, default_value_t = 8.0)]
    pub autotune_budget: f64,
    /// Every loop of the kernel ends (runs to a bound the host sets): compile it without
    /// naga's loop counter, as the built-in kernels are, so the comparison is like for
    /// like. The counter can cost a tiled kernel 1.3-2.6x on lavapipe; a loop that never
    /// ends is undefined behaviour without it.
    #[arg(long)]
    pub trusted_loops: bool,
}

fn parse_set(set: &[String]) -> Result<BTreeMap<String, f64>> {
    set.iter()
        .map(|s| {
            let (k, v) = s
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--set {s:?}: expected NAME=VALUE"))?;
            let v: f64 = v
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("--set {s:?}: {v:?} is not a number"))?;
            Ok((k.trim().to_string(), v))
        })
        .collect()
}

fn timeout(seconds: f64) -> Result<Duration> {
    if !seconds.is_finite() || seconds <= 0.0 {
        bail!("--timeout {seconds} must be > 0 seconds");
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A kernel that ran past its limit leaves the device busy (a software adapter's threads
/// spin on); the process ends here rather than wait for it in a destructor.
fn exit_on_hang(e: LabError) -> anyhow::Error {
    if matches!(e, LabError::Timeout { .. }) {
        eprintln!("error: {e}");
        eprintln!(
            "the kernel ran far past its expected time (an endless loop, or a problem far \
             too large for the adapter); ending the process"
        );
        std::process::exit(3);
    }
    e.into()
}

/// Validates, then times, a user's kernel.
pub fn run(select: &SelectArgs, args: KernelArgs) -> Result<ExitCode> {
    let limit = timeout(args.timeout)?;
    let set = parse_set(&args.set)?;
    let mut kernel = Kernel::from_file(&args.file)?.with_trusted_loops(args.trusted_loops);
    let op = kernel.op(args.op.as_deref(), args.precision.as_deref())?;
    let ctx = Context::new(&select.selector()?)?;
    let cache = super::tune_cache(&args.tune_cache);
    let key = lab::tune::cache_key(&kernel, op, args.m);
    let tuned = cache.kernel_constants(&ctx, &key).cloned();
    if let Some(t) = &tuned {
        kernel = kernel.with_constants(t)?;
    }
    let kernel = kernel.with_constants(&set)?;
    let shapes = if args.quick {
        Shapes::quick()
    } else {
        Shapes::battery()
    };
    let report = lab::check_with_limit(&ctx, &kernel, op, &shapes, limit).map_err(exit_on_hang)?;
    if !args.json {
        print_adapter(&ctx);
        println!(
            "{} as {}: tile {}x{}, constants {}{}; compiled with {}",
            kernel.path,
            op.label(),
            report.tile.0,
            report.tile.1,
            fmt_constants(&report.constants),
            if tuned.is_some() {
                " (tuned: `tune --kernel`)"
            } else {
                ""
            },
            kernel.checks.name()
        );
        print!("{}", report.describe());
    }
    let failed = !report.passed() && report.skipped.is_none();
    let timing = if report.passed() && !args.no_time {
        Some(time(&ctx, &kernel, op, &args, limit)?)
    } else {
        None
    };
    if args.json {
        let v = serde_json::json!({ "validation": report, "timing": timing });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else if let Some(t) = &timing {
        println!(
            "\ntimed at {}x{}x{} ({} runs, {}), next to the built-in kernel and the CPU:",
            args.m,
            args.n,
            args.k,
            args.repeat,
            t.rows[0].timing.name()
        );
        print!("{}", table::matmul_table(&t.rows));
        if kernel.checks != Checks::built_in() {
            println!(
                "(yours was compiled with {}, the built-in kernels with {}: {})",
                kernel.checks.name(),
                Checks::built_in().name(),
                if kernel.checks == Checks::All {
                    "--trusted-loops drops naga's loop counter from yours too, if its loops end"
                } else {
                    "WGPU_LAB_LOOP_COUNTER=1 gives the built-in kernels the counter too"
                }
            );
        }
        if !args.no_roofline {
            println!("on the roofline:");
            print!("{}", report::rows_table(&t.roofline));
        }
        if let Some(v) = t.vs_builtin {
            println!(
                "yours runs at {v:.2}x the best built-in kernel ({}).",
                if v >= 1.0 { "faster" } else { "slower" }
            );
        }
    }
    if failed {
        let f = report.first_failure().map(|s| s.describe());
        eprintln!(
            "error: validation failed at {}",
            f.unwrap_or_default().trim()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn time(
    ctx: &Context,
    kernel: &Kernel,
    op: Op,
    args: &KernelArgs,
    limit: Duration,
) -> Result<lab::time::Timing> {
    let mut auto = super::autotuner(&args.tune_cache, args.autotune_budget, args.no_autotune)?;
    match (op, op.f32_layout()) {
        (_, Some(layout)) => auto.ensure_f32(ctx, layout)?,
        (Op::MatmulNt { precision }, None) => {
            auto.ensure(ctx, Precision::Weights(precision), args.m)?
        }
        (_, None) => auto.ensure(ctx, Precision::Int8, args.m)?,
    }
    for s in &auto.searches {
        eprintln!("{}", s.describe());
    }
    let (gpu, cpu) = if args.no_roofline {
        (Ceilings::default(), Ceilings::default())
    } else {
        let cpu = ceilings::cpu::measure();
        (ceilings::gpu::measure(ctx, &cpu)?, cpu)
    };
    let req = lab::time::TimeRequest {
        m: args.m,
        n: args.n,
        k: args.k,
        runs: Runs {
            warmup: args.warmup,
            repeat: args.repeat,
        },
        cpu_baseline: !args.no_cpu,
        tuned: auto.cache.for_adapter(ctx),
    };
    let saved = ctx.wait_timeout();
    ctx.set_wait_timeout(limit);
    let t = lab::time::time(ctx, kernel, op, &req, &gpu, &cpu).map_err(exit_on_hang);
    ctx.set_wait_timeout(saved);
    let mut t = t?;
    // The built-in rows say where their configuration came from: `tune`, a first-use
    // autotune, or the default.
    for (i, r) in t.rows.iter_mut().enumerate().skip(1) {
        if r.skipped.is_some() {
            continue;
        }
        let key = match op.f32_layout() {
            Some(layout) => tune::f32_key(layout).to_string(),
            None => {
                let p = match op {
                    Op::MatmulNt { precision } => Precision::Weights(precision),
                    _ => Precision::Int8,
                };
                if is_gemv_name(&r.kernel) {
                    tune::gemv_key(p)
                } else {
                    tune::entry_key(p, tune::ShapeClass::of(r.m))
                }
            }
        };
        let label = match r.tuning.as_deref() {
            Some("tuned") => auto.tuning(ctx, &key).name(),
            _ => "default",
        };
        r.tuning = Some(label.to_string());
        r.kernel = format!("{} ({label}, built-in)", r.kernel);
        // The roofline rows are the same rows, in the same order, then the CPU's.
        t.roofline[i].kernel = r.kernel.clone();
    }
    Ok(t)
}

/// Options of `tune --kernel`.
pub struct TuneKernelArgs<'a> {
    /// The file.
    pub file: &'a std::path::Path,
    /// `--op`, else the header's.
    pub op: Option<&'a str>,
    /// The op's precision, else the header's.
    pub precision: Option<&'a str>,
    /// The problem (m, n, k).
    pub problem: (usize, usize, usize),
    /// Timed runs per candidate.
    pub repeat: usize,
    /// Seconds the search may take (None: every candidate).
    pub budget: Option<f64>,
    /// Print every candidate.
    pub trials: bool,
    /// The tune cache.
    pub tune_cache: &'a Option<PathBuf>,
    /// Compile it without naga's loop counter (`--trusted-loops`).
    pub trusted_loops: bool,
}

/// Searches a user's kernel's declared constants and stores the winner.
pub fn tune(select: &SelectArgs, args: TuneKernelArgs) -> Result<ExitCode> {
    let kernel = Kernel::from_file(args.file)?.with_trusted_loops(args.trusted_loops);
    let op = kernel.op(args.op, args.precision)?;
    lab::tune::searchable(&kernel)?;
    let ctx = Context::new(&select.selector()?)?;
    if let Some(why) = kernel.unsupported(&ctx) {
        println!("skipped: {why}");
        return Ok(ExitCode::SUCCESS);
    }
    let budget = match args.budget {
        Some(b) if !b.is_finite() || b <= 0.0 => bail!("--budget {b} must be > 0 seconds"),
        b => b.map(Duration::from_secs_f64),
    };
    let n = lab::tune::candidates(&kernel).len();
    let bar = indicatif::ProgressBar::new(n as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_message(format!("tune {}", args.file.display()));
    let show = args.trials;
    let result = lab::tune::tune_kernel(
        &ctx,
        &kernel,
        op,
        args.problem,
        Runs {
            warmup: 1,
            repeat: args.repeat,
        },
        budget,
        lab::check::DEFAULT_RUN_LIMIT,
        &mut |t| {
            bar.inc(1);
            if show {
                bar.suspend(|| {
                    eprintln!(
                        "  {:<40} {:>10.3} ms  {}",
                        fmt_constants(&t.constants),
                        t.ms,
                        t.error.as_deref().unwrap_or("ok")
                    )
                });
            }
        },
    )
    .map_err(exit_on_hang)?;
    bar.finish_and_clear();
    print_adapter(&ctx);
    let (m, nn, k) = args.problem;
    println!(
        "{} as {}: {} of {n} candidates timed at {m}x{nn}x{k}; the file's defaults ({}) {:.3} ms",
        args.file.display(),
        op.label(),
        result.trials.len(),
        fmt_constants(&result.default.constants),
        result.default.ms
    );
    if let Some(f) = &result.fastest {
        println!(
            "fastest valid: {} {:.3} ms ({:.2}x the defaults)",
            fmt_constants(&f.constants),
            f.ms,
            result.default.ms / f.ms
        );
    }
    if let Some((w, d)) = result.confirm_ms {
        println!("confirmation (2x each dimension): fastest {w:.3} ms, defaults {d:.3} ms");
    }
    if let Some(note) = &result.note {
        println!("kept the defaults: {note}");
    }
    if let Some(chosen) = &result.chosen {
        let path = args
            .tune_cache
            .clone()
            .unwrap_or_else(wgpu_lab::bench::tune::default_path);
        let key = lab::tune::cache_key(&kernel, op, m);
        wgpu_lab::bench::tune::TuneCache::update_kernel(
            &path,
            &wgpu_lab::bench::tune::adapter_key(&ctx),
            &key,
            chosen,
        )?;
        println!(
            "stored {} in {} (`wgpu-lab kernel {}` runs with it)",
            fmt_constants(chosen),
            path.display(),
            args.file.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn fmt_constants(c: &BTreeMap<String, f64>) -> String {
    if c.is_empty() {
        return "(none)".into();
    }
    c.iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}
