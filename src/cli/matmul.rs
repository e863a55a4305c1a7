//! `wgpu-lab matmul`: the f32 kernels on random or .npy matrices, every precision in the
//! inference layout, or a GGUF tensor as stored.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use clap::Args;
use wgpu_lab::bench::autotune::{Autotuner, Tuning};
use wgpu_lab::bench::{
    matmul as bench_matmul, precision as bench_precision, sparse as bench_sparse, table,
};
use wgpu_lab::convert;
use wgpu_lab::formats::precision::Precision;
use wgpu_lab::formats::sparse::Sparsity;
use wgpu_lab::formats::weights::WeightFormat;
use wgpu_lab::gpu::measure::Runs;
use wgpu_lab::kernels::matmul::{Kernel, Layout, Shape};
use wgpu_lab::kernels::matmul_wq::{is_gemv_name, TiledKernel, WqKernel, WqVariant};
use wgpu_lab::npy::{self, Matrix};
use wgpu_lab::prune::Method;
use wgpu_lab::rng::Rng;
use wgpu_lab::Context;

use super::{print_adapter, SelectArgs};

#[derive(Args)]
/// Options of `matmul`.
pub struct MatmulArgs {
    /// Rows of A and C.
    #[arg(long, default_value_t = 1024)]
    pub m: usize,
    /// Columns of C.
    #[arg(long, default_value_t = 1024)]
    pub n: usize,
    /// Inner dimension.
    #[arg(long, default_value_t = 1024)]
    pub k: usize,
    /// B layout: nn (B is k x n) or nt (B is n x k, nn.Linear weights).
    #[arg(long, default_value = "nn")]
    pub layout: String,
    /// f32 kernel name (naive, tiled, regblock, scalarblock, sgblock), `wq` (the any-precision kernels, nt),
    /// `tuned` (the kernel `wgpu-lab tune` chose for this adapter, nt), `public` (the best
    /// public WGSL kernel's shape, 16x16 invocations x 8x8 outputs, as a workgroup tile of
    /// `matmul_wq_tiled`, nt) or `all` (every f32 kernel, then the tuned and public rows).
    /// Default: all, or regblock with --a.
    #[arg(long)]
    pub kernel: Option<String>,
    /// Precision: f32, f16, f16acc, bf16, int8, int8rot, q8_0, q4_0, q4_1, q5_0, q4_k, q6_k, a
    /// comma list, or `all` (q4_k and q6_k need k a multiple of 256).
    /// Anything but f32 runs the precision kernels in the nt layout (weights B are n x k).
    #[arg(long, default_value = "f32")]
    pub precision: String,
    /// Timed runs per kernel.
    #[arg(long, default_value_t = 10)]
    pub repeat: usize,
    /// Untimed warm-up runs per kernel (after the validated first run).
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Seed of the random inputs.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Skip the CPU baseline timing.
    #[arg(long)]
    pub no_cpu: bool,
    /// A as a 2-D float32/float64 .npy (m x k); needs --b.
    #[arg(long, requires = "b")]
    pub a: Option<PathBuf>,
    /// B as a 2-D .npy: k x n (nn) or n x k (nt); needs --a.
    #[arg(long, requires = "a")]
    pub b: Option<PathBuf>,
    /// Write C as float32 .npy.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Use a weight tensor from a GGUF file, as stored (n x k), with --m random activation
    /// rows; needs --tensor.
    #[arg(long, requires = "tensor")]
    pub weights: Option<PathBuf>,
    /// Tensor name in --weights.
    #[arg(long, requires = "weights")]
    pub tensor: Option<String>,
    /// Tune cache file (default: the platform cache folder, wgpu-lab/tune.json).
    #[arg(long)]
    pub tune_cache: Option<PathBuf>,
    /// Never search a kernel the tune cache lacks (rows without an entry run the default,
    /// labelled `(default)`). Also: WGPU_LAB_NO_AUTOTUNE=1.
    #[arg(long)]
    pub no_autotune: bool,
    /// Seconds a first-use autotune may spend per missing cache entry.
    #[arg(long, default_value_t = 8.0)]
    pub autotune_budget: f64,
    /// Weight sparsity rows: dense, N:M (N < M <= 8; 2:4, 4:8, 6:8...) or u<percent>
    /// (unstructured, accuracy only), a comma list. The random weights are pruned by
    /// --prune, then stored and run at each precision (N:M: compressed, by the sparse
    /// kernels). Runs the precision table (nt).
    #[arg(long)]
    pub sparsity: Option<String>,
    /// Pruning method of the sparse rows: magnitude, wanda or sparsegpt (the last two
    /// calibrate on the product's own activations; sparsegpt needs --m >= 64).
    #[arg(long, default_value = "magnitude")]
    pub prune: String,
}

/// Runs the f32 kernels (or, for other precisions and GGUF tensors, the precision kernels),
/// validated and timed.
pub fn run(select: &SelectArgs, args: MatmulArgs) -> Result<ExitCode> {
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
    // `tuned` is the nn register block for f32 in the nn layout, the nt kernels otherwise.
    let tuned_nn =
        args.kernel.as_deref() == Some("tuned") && args.layout == "nn" && args.precision == "f32";
    let precision_kernel = matches!(args.kernel.as_deref(), Some("wq" | "public"))
        || (args.kernel.as_deref() == Some("tuned") && !tuned_nn);
    if (args.precision != "f32" && !f16_b) || precision_kernel || args.sparsity.is_some() {
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
    if args.a.is_none() {
        // Bad sizes are refused before any autotune runs.
        Shape::new(args.m, args.n, args.k)?;
    }
    let ctx = Context::new(&select.selector()?)?;
    // First-use autotune of what the default run shows and the cache lacks: the f32
    // register block of the layout, and the f32-weights kernel of the nt rows.
    let mut auto = super::autotuner(
        &args.tune_cache,
        args.autotune_budget,
        args.no_autotune || kernel_name != "all" || args.a.is_some(),
    )?;
    auto.ensure_f32(&ctx, layout)?;
    auto.ensure(&ctx, Precision::Weights(WeightFormat::F32), args.m)?;
    for s in &auto.searches {
        eprintln!("{}", s.describe());
    }
    let tuned = auto.cache.for_adapter(&ctx);
    let nn_tuned = wgpu_lab::bench::tune::tuned_f32(&tuned, layout);
    let mut kernels = match kernel_name.as_str() {
        "all" => Kernel::all(layout),
        "tuned" => {
            if nn_tuned.is_none() {
                eprintln!(
                    "note: no tuned f32 nn kernel on this adapter (run `wgpu-lab tune`); the \
                     default regblock runs"
                );
            }
            vec![nn_tuned.unwrap_or(Kernel::named("regblock", layout)?)]
        }
        name => vec![Kernel::named(name, layout)?],
    };
    // `--kernel all` lists the tuned register block as its own row.
    let tuned_row = match nn_tuned {
        Some(k) if kernel_name == "all" && !kernels.contains(&k) => {
            kernels.push(k);
            Some(kernels.len() - 1)
        }
        Some(_) if kernel_name == "tuned" => Some(0),
        _ => None,
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
        // Fail before the run, not after it, if the output cannot be written (without
        // truncating an existing file: the result replaces it atomically at the end).
        wgpu_lab::bench::report::check_writable(out)
            .with_context(|| format!("cannot write {}", out.display()))?;
    }

    let req = bench_matmul::MatmulRequest {
        shape,
        layout,
        kernels: kernels.clone(),
        warmup: args.warmup,
        repeat: args.repeat,
        cpu_baseline: !args.no_cpu,
        b_f16: f16_b,
    };
    let (mut rows, c) = bench_matmul::run(&ctx, &req, &a, &b)?;
    // Register-block rows say where their configuration came from: the cache's (from
    // `tune`, or a first-use autotune) or the default.
    let nn_tuning = auto.tuning(&ctx, wgpu_lab::bench::tune::f32_key(layout));
    for (i, (r, k)) in rows.iter_mut().zip(&kernels).enumerate() {
        if matches!(
            k,
            Kernel::Regblock { .. } | Kernel::Scalarblock { .. } | Kernel::Sgblock { .. }
        ) {
            let t = if Some(i) == tuned_row || (Some(*k) == nn_tuned && tuned_row.is_none()) {
                nn_tuning
            } else {
                Tuning::Default
            };
            r.tuning = Some(t.name().to_string());
            r.kernel.push_str(&format!(" ({})", t.name()));
        }
    }
    // `--kernel all` also runs f32 weights (nt) through the tuned kernel (or the default
    // when this adapter was never tuned) and the public kernel's shape, each its own row.
    let nt_rows = if kernel_name == "all" && args.a.is_none() {
        let w = match layout {
            Layout::Nt => b.clone(),
            Layout::Nn => transpose(&b, shape.k, shape.n),
        };
        let req = bench_precision::PrecisionRequest {
            m: shape.m,
            n: shape.n,
            k: shape.k,
            precisions: vec![Precision::Weights(WeightFormat::F32)],
            kernel: None,
            runs: Runs {
                warmup: args.warmup,
                repeat: args.repeat,
            },
            cpu_baseline: false,
            tuned,
            extra: vec![WqVariant::Tiled(TiledKernel::PUBLIC_SHAPE)],
        };
        let mut rows = bench_precision::run(&ctx, &req, &a, &w)?;
        label_tuning(&ctx, &auto, &mut rows);
        label_kernels(&mut rows);
        rows
    } else {
        Vec::new()
    };
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
        rows.extend(nt_rows);
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print_adapter(&ctx);
        print!("{}", table::matmul_table(&rows));
        if !nt_rows.is_empty() {
            println!(
                "f32 weights in the nt layout: the cache's kernel (from `tune` or a first-use \
                 autotune; the default with --no-autotune) and the public kernel's shape:"
            );
            print!("{}", table::precision_table(&nt_rows));
            rows.extend(nt_rows);
        }
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
    // A skipped row (a kernel the adapter cannot run) says why in the table; it fails
    // nothing.
    if rows.iter().all(|r| r.passed || r.skipped.is_some()) {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: validation failed for at least one kernel (see the pass column)");
        Ok(ExitCode::FAILURE)
    }
}

fn matmul_precisions(select: &SelectArgs, args: MatmulArgs) -> Result<ExitCode> {
    let precisions = Precision::parse_list(&args.precision)?;
    let sparse = match &args.sparsity {
        Some(s) => Some(bench_sparse::SparseRequest {
            sparsity: Sparsity::parse_list(s)?,
            method: Method::parse(&args.prune)?,
        }),
        None => None,
    };
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
    // First-use autotune of the kernels the default run needs and the cache lacks.
    let mut auto = super::autotuner(
        &args.tune_cache,
        args.autotune_budget,
        args.no_autotune || args.kernel.is_some(),
    )?;
    for &p in &precisions {
        auto.ensure(&ctx, p, shape.m)?;
    }
    for s in &auto.searches {
        eprintln!("{}", s.describe());
    }
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
        tuned: auto.cache.for_adapter(&ctx),
        extra: Vec::new(),
    };
    let class = wgpu_lab::bench::tune::ShapeClass::of(shape.m);
    let req = match args.kernel.as_deref() {
        // Only the public kernel's shape: the tuned map is left empty so the main row is
        // that shape.
        Some("public") => bench_precision::PrecisionRequest {
            tuned: req
                .precisions
                .iter()
                .filter(|p| matches!(p, Precision::Weights(_)))
                .map(|&p| {
                    (
                        wgpu_lab::bench::tune::entry_key(p, class),
                        WqVariant::Tiled(TiledKernel::PUBLIC_SHAPE),
                    )
                })
                .collect(),
            ..req
        },
        Some("tuned") => {
            for &p in &req.precisions {
                if wgpu_lab::bench::tune::tuned_kernel(&req.tuned, p, class).is_none()
                    && wgpu_lab::bench::tune::tuned_variant(&req.tuned, p, class).is_none()
                {
                    eprintln!(
                        "note: {} has no tuned kernel on this adapter (run `wgpu-lab tune`); \
                         the default runs",
                        p.name()
                    );
                }
            }
            req
        }
        _ => req,
    };
    let mut rows = bench_precision::run(&ctx, &req, &a, &w)?;
    label_tuning(&ctx, &auto, &mut rows);
    label_kernels(&mut rows);
    if let Some(sreq) = &sparse {
        rows = bench_sparse::run(&ctx, &req, sreq, &a, &w, rows)?;
    }
    print_precision_rows(&ctx, &rows, args.json)
}

/// Says where each precision row's kernel came from: `(tuned)` by `tune`, `(autotuned)` by
/// a first-use search, `(default)` without a cache entry (the kernel column and `tuning`).
fn label_tuning(ctx: &Context, auto: &Autotuner, rows: &mut [bench_matmul::MatmulRow]) {
    use wgpu_lab::bench::tune;
    // The public kernel's shape is neither tuned nor a default: the row asked for it.
    let public = format!("{:?}", WqVariant::Tiled(TiledKernel::PUBLIC_SHAPE));
    for r in rows
        .iter_mut()
        .filter(|r| r.skipped.is_none() && r.config != public)
    {
        let Some(p) = Precision::parse_list(&r.precision)
            .ok()
            .and_then(|v| v.into_iter().next())
        else {
            continue;
        };
        let key = if is_gemv_name(&r.kernel) {
            tune::gemv_key(p)
        } else {
            tune::entry_key(p, tune::ShapeClass::of(r.m))
        };
        // Rows of the cache's configuration carry " (tuned)" in their config.
        let tuning = if r.config.ends_with(" (tuned)") {
            auto.tuning(ctx, &key)
        } else {
            Tuning::Default
        };
        r.tuning = Some(tuning.name().to_string());
        r.kernel.push_str(&format!(" ({})", tuning.name()));
    }
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

/// Names the tuned kernel and the public kernel's shape in the kernel column.
fn label_kernels(rows: &mut [bench_matmul::MatmulRow]) {
    let public = format!("{:?}", WqVariant::Tiled(TiledKernel::PUBLIC_SHAPE));
    for r in rows {
        if r.config.ends_with("(tuned)") && r.tuning.is_none() {
            r.kernel.push_str(" (tuned)");
        } else if r.config == public {
            r.kernel.push_str(" (public shape)");
        }
    }
}

/// B (k x n, the nn layout) as W = B^T (n x k).
fn transpose(b: &[f32], k: usize, n: usize) -> Vec<f32> {
    let mut w = vec![0f32; n * k];
    for r in 0..k {
        for c in 0..n {
            w[c * k + r] = b[r * n + c];
        }
    }
    w
}
