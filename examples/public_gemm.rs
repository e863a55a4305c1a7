//! Public WGSL f32 GEMM kernels against ours, side by side in one run on one adapter.
//!
//! The public kernels are rendered at fixed sizes by `scripts/render-public-kernels.py`
//! (from clones of their repositories; nothing of them is committed here) into a folder
//! with a `manifest.json`. Every kernel, theirs and ours, multiplies the same random
//! operands, is validated against the float64 reference (poisoned output first), then
//! timed with GPU timestamps: warm-up, repeats, median and spread.
//!
//! Ours: the default regblock (nn and nt), the tune cache's nn kernel when it has one, and
//! any extra regblock configurations given with `--ours WG_X,TM,TN[,nt]` (a quick way to try a
//! shape before it joins the search space).
//!
//! Run: `cargo run --release --example public_gemm -- --manifest /tmp/public-kernels/manifest.json --size 1024`

use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use clap::Parser;
use serde::Deserialize;
use wgpu_lab::compare::{ErrorStats, TOL_F32_REL_FROBENIUS};
use wgpu_lab::gpu::buffers;
use wgpu_lab::gpu::pipeline::{self, Checks};
use wgpu_lab::gpu::timing::{self, GpuTimer};
use wgpu_lab::kernels::matmul::{Kernel, Layout, MatmulOptions, PreparedMatmul, Shape};
use wgpu_lab::reference::matmul::matmul_f64;
use wgpu_lab::rng::Rng;
use wgpu_lab::stats::Summary;
use wgpu_lab::{AdapterSelector, Context};

#[derive(Parser)]
struct Args {
    /// manifest.json written by scripts/render-public-kernels.py.
    #[arg(long)]
    manifest: PathBuf,
    /// Only the kernels rendered at this size (m = n = k).
    #[arg(long)]
    size: usize,
    /// Timed runs per kernel.
    #[arg(long, default_value_t = 10)]
    repeat: usize,
    /// Untimed runs first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Extra configurations of ours, WG_X,TM,TN (nn) or WG_X,TM,TN,nt: register blocks, or
    /// subgroup blocks with the prefix `sg:` (`sg:8,8,1`); repeatable.
    #[arg(long)]
    ours: Vec<String>,
    /// Tune cache to read our tuned nn kernel from (default: wgpu-lab's).
    #[arg(long)]
    tune_cache: Option<PathBuf>,
    /// Leave out public kernels whose name does not contain this.
    #[arg(long)]
    only: Option<String>,
    /// Compile the public kernels without naga's loop counter, as ours are (their loops
    /// all run to fixed or uniform bounds): the like-for-like comparison. Without it they
    /// get every check wgpu adds by default.
    #[arg(long)]
    trusted_loops: bool,
}

#[derive(Deserialize)]
struct Manifest {
    kernels: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    name: String,
    origin: String,
    commit: String,
    license: String,
    layout: String,
    m: usize,
    n: usize,
    k: usize,
    file: String,
    workgroups: [u32; 3],
    bindings: std::collections::BTreeMap<String, u32>,
    params: Option<Vec<u32>>,
}

struct Row {
    name: String,
    layout: Layout,
    times: Vec<f64>,
    err: ErrorStats,
    compile_ms: f64,
}

fn main() -> Result<()> {
    env_logger::init();
    let args = Args::parse();
    let dir = args.manifest.parent().unwrap_or(std::path::Path::new("."));
    let manifest: Manifest = serde_json::from_str(
        &std::fs::read_to_string(&args.manifest)
            .with_context(|| format!("reading {}", args.manifest.display()))?,
    )?;
    let ctx = Context::new(&AdapterSelector {
        adapter: std::env::var("WGPU_LAB_ADAPTER").ok(),
        ..Default::default()
    })?;
    println!("adapter: {}", ctx.summary.one_line());
    let timer = GpuTimer::new(&ctx);
    let s = args.size;
    let shape = Shape::new(s, s, s)?;
    let mut rng = Rng::new(7);
    let a = rng.vec_f32(s * s);
    let b = rng.vec_f32(s * s);
    // B^T for the nt kernels, so every kernel computes the same C.
    let mut bt = vec![0f32; s * s];
    for r in 0..s {
        for c in 0..s {
            bt[c * s + r] = b[r * s + c];
        }
    }
    let t0 = std::time::Instant::now();
    let reference = matmul_f64(Layout::Nn, shape, &a, &b)?;
    eprintln!("f64 reference: {:.1} s", t0.elapsed().as_secs_f64());

    let mut rows = Vec::new();
    let mut ours: Vec<(String, Kernel, Layout)> = vec![
        (
            "ours regblock nn (default)".into(),
            Kernel::named("regblock", Layout::Nn)?,
            Layout::Nn,
        ),
        (
            "ours regblock nt (default)".into(),
            Kernel::named("regblock", Layout::Nt)?,
            Layout::Nt,
        ),
    ];
    let cache_path = args
        .tune_cache
        .clone()
        .unwrap_or_else(wgpu_lab::bench::tune::default_path);
    let tuned = wgpu_lab::bench::tune::TuneCache::load(&cache_path).for_adapter(&ctx);
    if let Some(k) = wgpu_lab::bench::tune::tuned_nn(&tuned) {
        ours.push((format!("ours {k:?} nn (tune cache)"), k, Layout::Nn));
    }
    for spec in &args.ours {
        // `sg:` names a subgroup block, anything else a register block.
        let (family, spec_sizes) = match spec.strip_prefix("sg:") {
            Some(rest) => ("sgblock", rest),
            None => ("regblock", spec.as_str()),
        };
        let (sizes, layout) = match spec_sizes.strip_suffix(",nt") {
            Some(s) => (s, Layout::Nt),
            None => (spec_sizes.trim_end_matches(",nn"), Layout::Nn),
        };
        let v: Vec<u32> = sizes
            .split(',')
            .map(|x| x.trim().parse())
            .collect::<Result<_, _>>()
            .with_context(|| format!("--ours {spec}: want WG_X,TM,TN[,nt]"))?;
        let [wg_x, tm, tn] = v[..] else {
            bail!("--ours {spec}: want WG_X,TM,TN[,nt]");
        };
        let k = if family == "sgblock" {
            Kernel::Sgblock { wg_x, tm, tn }
        } else {
            Kernel::Regblock { wg_x, tm, tn }
        };
        ours.push((
            format!("ours {family} {wg_x},{tm},{tn} {}", layout.name()),
            k,
            layout,
        ));
    }
    for (name, kernel, layout) in ours {
        let bb = if layout == Layout::Nn { &b } else { &bt };
        let t = std::time::Instant::now();
        let prep = PreparedMatmul::new(
            &ctx,
            kernel,
            layout,
            shape,
            &a,
            bb,
            MatmulOptions::default(),
        )?;
        prep.poison(&ctx);
        prep.run(&ctx, timer.as_ref())?;
        let compile_ms = t.elapsed().as_secs_f64() * 1e3;
        let err = ErrorStats::compare(&prep.read(&ctx)?, &reference);
        let mut times = Vec::new();
        for i in 0..args.warmup + args.repeat {
            let (ms, _) = prep.run(&ctx, timer.as_ref())?;
            if i >= args.warmup {
                times.push(ms);
            }
        }
        rows.push(Row {
            name,
            layout,
            times,
            err,
            compile_ms,
        });
    }

    for e in manifest
        .kernels
        .iter()
        .filter(|e| e.m == s && e.n == s && e.k == s)
    {
        if args.only.as_deref().is_some_and(|o| !e.name.contains(o)) {
            continue;
        }
        let layout = Layout::parse(&e.layout)?;
        match run_public(
            &ctx,
            timer.as_ref(),
            dir,
            e,
            layout,
            &a,
            &b,
            &bt,
            &reference,
            &args,
        ) {
            Ok(r) => rows.push(r),
            Err(err) => println!("{}: failed: {err:#}", e.name),
        }
        println!(
            "  {} from {} @ {} ({})",
            e.name,
            e.origin,
            e.commit.get(..12).unwrap_or(&e.commit),
            e.license
        );
    }

    let best_public = rows
        .iter()
        .filter(|r| !r.name.starts_with("ours") && r.err.passes(TOL_F32_REL_FROBENIUS))
        .map(|r| median(&r.times))
        .fold(f64::INFINITY, f64::min);
    println!();
    println!(
        "ours compiled with {}, the public kernels with {}",
        Checks::built_in().name(),
        if args.trusted_loops {
            Checks::TrustedLoops.name()
        } else {
            Checks::All.name()
        }
    );
    println!(
        "| kernel | layout | GPU ms median (min-max) | GFLOP/s | vs best public | first run ms | rel err | ok |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let sm = Summary::of(&r.times).context("no timed runs")?;
        let (med, lo, hi) = (sm.median, sm.min, sm.max);
        println!(
            "| {} | {} | {:.1} ({:.1}-{:.1}) | {:.2} | {:.2}x | {:.0} | {:.1e} | {} |",
            r.name,
            r.layout.name(),
            med,
            lo,
            hi,
            shape.flops() / med / 1e6,
            best_public / med,
            r.compile_ms,
            r.err.rel_frobenius,
            if r.err.passes(TOL_F32_REL_FROBENIUS) {
                "ok"
            } else {
                "FAIL"
            }
        );
    }
    Ok(())
}

fn median(t: &[f64]) -> f64 {
    Summary::of(t).map_or(f64::NAN, |s| s.median)
}

#[allow(clippy::too_many_arguments)]
fn run_public(
    ctx: &Context,
    timer: Option<&GpuTimer>,
    dir: &std::path::Path,
    e: &Entry,
    layout: Layout,
    a: &[f32],
    b: &[f32],
    bt: &[f32],
    reference: &[f64],
    args: &Args,
) -> Result<Row> {
    let src = std::fs::read_to_string(dir.join(&e.file))?;
    let t = std::time::Instant::now();
    let pipeline = ctx.scoped(&format!("compiling {}", e.name), || {
        let checks = if args.trusted_loops {
            Checks::TrustedLoops
        } else {
            Checks::All
        };
        let module = pipeline::shader_module(ctx, &e.name, &src, checks);
        ctx.device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&e.name),
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            })
    })?;
    let bb = if layout == Layout::Nn { b } else { bt };
    let ab = buffers::upload(ctx, "a", a)?;
    let bbuf = buffers::upload(ctx, "b", bb)?;
    let c = buffers::storage(ctx, "c", (e.m * e.n * 4) as u64)?;
    let params = match &e.params {
        Some(p) => {
            let mut words = [0u32; 8];
            words[..p.len()].copy_from_slice(p);
            Some(buffers::uniform(ctx, "params", &words)?)
        }
        None => None,
    };
    let mut entries = Vec::new();
    for (role, &binding) in &e.bindings {
        let buf = match role.as_str() {
            "a" => &ab,
            "b" => &bbuf,
            "c" => &c,
            "params" => params.as_ref().context("params binding without params")?,
            other => bail!("unknown binding role {other}"),
        };
        entries.push(wgpu::BindGroupEntry {
            binding,
            resource: buf.as_entire_binding(),
        });
    }
    let bg = ctx.scoped("bind group", || {
        ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&e.name),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        })
    })?;
    let [gx, gy, gz] = e.workgroups;
    let run = || {
        timing::time_pass(ctx, timer, &e.name, |pass| {
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bg, &[]);
            pass.dispatch_workgroups(gx, gy, gz);
        })
    };
    buffers::poison(ctx, &c);
    run()?;
    let compile_ms = t.elapsed().as_secs_f64() * 1e3;
    let got: Vec<f32> = buffers::read(ctx, &c, e.m * e.n)?;
    let err = ErrorStats::compare(&got, reference);
    let mut times = Vec::new();
    for i in 0..args.warmup + args.repeat {
        let (ms, _) = run()?;
        if i >= args.warmup {
            times.push(ms);
        }
    }
    Ok(Row {
        name: e.name.clone(),
        layout,
        times,
        err,
        compile_ms,
    })
}
