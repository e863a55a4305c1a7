//! Autotuning: a failing candidate is never chosen (a deliberately wrong one, run on the
//! GPU, is rejected even though it is the fastest), the cache round-trips, a corrupt cache
//! is ignored, and tuned configurations are used and labelled; a first-use autotune
//! searches each missing entry once within its budget, and later runs read it.

mod common;

use wgpu_lab::bench::precision::{self, PrecisionRequest};
use wgpu_lab::bench::tune::{self, ShapeClass, Trial, TuneCache};
use wgpu_lab::compare::{ErrorStats, TOL_WQ_KERNEL_REL_FROBENIUS};
use wgpu_lab::formats::precision::Precision;
use wgpu_lab::formats::weights::{WeightFormat, Weights};
use wgpu_lab::gpu::measure::{measure, Runs};
use wgpu_lab::kernels::matmul::Layout;
use wgpu_lab::kernels::matmul_wq::{PreparedMatmulWq, WqKernel, WqVariant};
use wgpu_lab::reference::matmul_wq::matmul_wq_f64;
use wgpu_lab::rng::Rng;

/// A one-repeat precision request on (m, n, k) with these tuned entries and extra kernels.
fn quick_request(
    (m, n, k): (usize, usize, usize),
    precisions: Vec<Precision>,
    tuned: tune::Tuned,
    extra: Vec<WqVariant>,
) -> PrecisionRequest {
    PrecisionRequest {
        m,
        n,
        k,
        precisions,
        kernel: None,
        runs: Runs {
            warmup: 0,
            repeat: 1,
        },
        cpu_baseline: false,
        tuned,
        extra,
    }
}

fn k(wg_x: u32, tm: u32, tn: u32) -> WqKernel {
    WqKernel { wg_x, tm, tn }
}

fn v(wg_x: u32, tm: u32, tn: u32) -> WqVariant {
    WqVariant::Regblock(k(wg_x, tm, tn))
}

#[test]
fn choose_never_picks_a_failing_candidate() {
    let trials = [
        Trial {
            kernel: v(8, 1, 1),
            ms: 0.001,
            passed: false,
            problem: (256, 512, 512),
        },
        Trial {
            kernel: v(16, 2, 2),
            ms: 2.0,
            passed: true,
            problem: (256, 512, 512),
        },
        Trial {
            kernel: v(32, 4, 4),
            ms: 1.5,
            passed: true,
            problem: (256, 512, 512),
        },
        Trial {
            kernel: v(64, 4, 4),
            ms: f64::NAN,
            passed: true,
            problem: (256, 512, 512),
        },
    ];
    assert_eq!(tune::choose(&trials).unwrap().kernel, v(32, 4, 4));
    assert!(tune::choose(&trials[..1]).is_none());
}

/// Times `kernel` on the GPU and validates its output against the reference of `weights`;
/// `wrong` runs it on other weights, so its output is wrong whatever its speed.
fn trial(
    kernel: WqKernel,
    a: &[f32],
    reference_weights: &Weights,
    wrong: Option<&Weights>,
) -> Trial {
    let ctx = common::ctx().expect("checked by the caller");
    let (m, k) = (4, reference_weights.k);
    let run_on = wrong.unwrap_or(reference_weights);
    let p = PreparedMatmulWq::new(ctx, kernel, a, m, k, run_on).unwrap();
    let (t, c) = measure(
        ctx,
        &p,
        Runs {
            warmup: 0,
            repeat: 2,
        },
    )
    .unwrap();
    let want = matmul_wq_f64(a, m, k, reference_weights).unwrap();
    let passed = ErrorStats::compare(&c, &want).passes(TOL_WQ_KERNEL_REL_FROBENIUS);
    Trial {
        kernel: WqVariant::Regblock(kernel),
        ms: if wrong.is_some() { 1e-9 } else { t.gpu.median },
        passed,
        problem: (m, reference_weights.n, k),
    }
}

#[test]
fn a_deliberately_wrong_candidate_is_rejected() {
    if common::ctx().is_none() {
        return;
    }
    let mut rng = Rng::new(3);
    let a = rng.vec_f32(4 * 128);
    let good = Weights::encode(WeightFormat::Q4_0, 96, 128, &rng.vec_f32(96 * 128)).unwrap();
    let other = Weights::encode(WeightFormat::Q4_0, 96, 128, &rng.vec_f32(96 * 128)).unwrap();
    let mut trials = vec![trial(k(8, 2, 2), &a, &good, Some(&other))];
    assert!(
        !trials[0].passed,
        "the sabotaged candidate must fail validation"
    );
    for kernel in [k(16, 4, 4), k(8, 1, 1)] {
        trials.push(trial(kernel, &a, &good, None));
    }
    let best = tune::choose(&trials).expect("two candidates pass");
    assert!(best.passed && best.kernel != v(8, 2, 2));
}

#[test]
fn tune_one_validates_every_candidate_and_picks_a_passing_one() {
    let Some(ctx) = common::ctx() else { return };
    let p = Precision::Weights(WeightFormat::Q8_0);
    let (trials, best) = tune::tune_one(
        ctx,
        p,
        ShapeClass::Gemv,
        Runs {
            warmup: 0,
            repeat: 1,
        },
    )
    .unwrap();
    assert_eq!(trials.len(), tune::candidates(ShapeClass::Gemv).len());
    let best = best.unwrap();
    assert!(best.passed);
    assert!(trials.iter().filter(|t| t.passed).all(|t| t.ms >= best.ms));
}

#[test]
fn gemv_kernel_is_tuned_within_limits_and_used_when_cached() {
    let Some(ctx) = common::ctx() else { return };
    let runs = Runs {
        warmup: 0,
        repeat: 1,
    };
    let p = Precision::Weights(WeightFormat::Q4_0);
    let (trials, best) = tune::tune_gemv(ctx, p, runs).unwrap();
    let candidates = tune::gemv_candidates(ctx);
    assert_eq!(trials.len(), candidates.len());
    assert!(candidates.len() >= 8, "{candidates:?}");
    assert!(trials.iter().all(|t| t.passed), "{trials:?}");
    let best = best.unwrap();
    assert!(best.kernel.is_gemv(), "{best:?}");
    // Where the adapter binds a 64 KiB uniform row, the broadcast GEMV is in the search.
    assert!(candidates
        .iter()
        .any(|c| matches!(c, WqVariant::Broadcast { .. })));
    // W8A8's GEMV is its broadcast kernel (gemv_i8_broadcast): those candidates only, each
    // validated against its exact reference; f16acc has no GEMV kernel to tune.
    let (i8_trials, i8_best) = tune::tune_gemv(ctx, Precision::Int8Rot, runs).unwrap();
    let bcast = candidates
        .iter()
        .filter(|c| matches!(c, WqVariant::Broadcast { .. }))
        .count();
    assert_eq!(i8_trials.len(), bcast);
    assert!(
        i8_trials
            .iter()
            .all(|t| t.passed && matches!(t.kernel, WqVariant::Broadcast { .. })),
        "{i8_trials:?}"
    );
    assert!(i8_best.is_some());
    assert!(tune::tune_gemv(ctx, Precision::F16Acc, runs)
        .unwrap()
        .0
        .is_empty());
    // A cached GEMV configuration is the one that runs, and says so.
    let odd = WqVariant::Gemv {
        wg: 32,
        rows: 8,
        subgroup: false,
    };
    let req = PrecisionRequest {
        m: 1,
        n: 77,
        k: 96,
        precisions: vec![p],
        kernel: None,
        runs,
        cpu_baseline: false,
        tuned: tune::Tuned::from([(tune::gemv_key(p), odd)]),
        extra: Vec::new(),
    };
    let mut rng = Rng::new(9);
    let rows = precision::run(ctx, &req, &rng.vec_f32(96), &rng.vec_f32(77 * 96)).unwrap();
    let g = rows.iter().find(|r| r.kernel == "gemv").unwrap();
    assert!(
        g.config.contains("wg: 32")
            && g.config.contains("rows: 8")
            && g.config.ends_with("(tuned)"),
        "{}",
        g.config
    );
    assert!(g.passed);
}

#[test]
fn cache_round_trips_and_a_corrupt_one_is_ignored() {
    let dir = std::env::temp_dir().join(format!("wgpu-lab-tune-{}", std::process::id()));
    let path = dir.join("tune.json");
    let mut cache = TuneCache::default();
    cache
        .adapters
        .entry("gpu | vulkan | driver 1".into())
        .or_default()
        .insert("q4_0/gemv".into(), v(32, 1, 2));
    cache
        .adapters
        .get_mut("gpu | vulkan | driver 1")
        .unwrap()
        .insert(
            "q4_0/gemv-kernel".into(),
            WqVariant::Gemv {
                wg: 128,
                rows: 2,
                subgroup: false,
            },
        );
    let bcast = WqVariant::Broadcast {
        lanes: 16,
        quads: 2,
    };
    cache
        .adapters
        .get_mut("gpu | vulkan | driver 1")
        .unwrap()
        .insert("q4_1/gemv-kernel".into(), bcast);
    cache.save(&path).unwrap();
    let back = TuneCache::load(&path);
    assert_eq!(
        back.adapters["gpu | vulkan | driver 1"]["q4_1/gemv-kernel"],
        bcast
    );
    let entry = &back.adapters["gpu | vulkan | driver 1"];
    assert_eq!(entry["q4_0/gemv"], v(32, 1, 2));
    assert_eq!(
        entry["q4_0/gemv-kernel"],
        WqVariant::Gemv {
            wg: 128,
            rows: 2,
            subgroup: false,
        }
    );
    // A cache written before GEMV tuning (register blocks as bare objects) still loads.
    std::fs::write(
        &path,
        r#"{"adapters": {"a | b | c": {"f32/gemm": {"wg_x": 16, "tm": 4, "tn": 2}}}}"#,
    )
    .unwrap();
    assert_eq!(
        TuneCache::load(&path).adapters["a | b | c"]["f32/gemm"],
        v(16, 4, 2)
    );
    std::fs::write(&path, "{ not json").unwrap();
    assert!(TuneCache::load(&path).adapters.is_empty());
    assert!(TuneCache::load(&dir.join("missing.json"))
        .adapters
        .is_empty());
}

/// A CPU adapter's cache entries are keyed by the host CPU too: entries tuned for the same
/// lavapipe on another CPU (or written before the key named it) are not read.
#[test]
fn a_cpu_adapters_cache_key_names_the_host_cpu() {
    let Some(ctx) = common::ctx() else { return };
    let key = tune::adapter_key(ctx);
    let s = &ctx.summary;
    let bare = format!("{} | {} | {}", s.name, s.backend, s.driver);
    if s.device_type != "cpu" {
        assert!(s.host_cpu.is_none() && key == bare, "{key}");
        return;
    }
    let cpu = s
        .host_cpu
        .clone()
        .expect("a CPU adapter names its host CPU");
    let threads = std::thread::available_parallelism().unwrap().get();
    assert!(
        cpu.ends_with(&format!(", {threads} threads")) && cpu.len() > 12,
        "{cpu}"
    );
    assert_eq!(key, format!("{bare} | {cpu}"));
    let mut cache = TuneCache::default();
    for adapter in [
        bare.clone(),
        format!("{bare} | Another CPU, {threads} threads"),
    ] {
        cache
            .adapters
            .entry(adapter)
            .or_default()
            .insert("q4_0/gemv".into(), v(32, 1, 2));
    }
    assert!(
        cache.for_adapter(ctx).is_empty(),
        "read another CPU's entries"
    );
    cache
        .adapters
        .entry(key)
        .or_default()
        .insert("q4_0/gemv".into(), v(64, 1, 4));
    assert_eq!(cache.for_adapter(ctx)["q4_0/gemv"], v(64, 1, 4));
}

#[test]
fn tuned_configuration_is_used_and_labelled() {
    let Some(ctx) = common::ctx() else { return };
    let mut tuned = tune::Tuned::new();
    tuned.insert(
        tune::entry_key(Precision::Weights(WeightFormat::F16), ShapeClass::Gemm),
        v(8, 3, 2),
    );
    let mut rng = Rng::new(5);
    let (m, n, kk) = (6, 40, 64);
    let req = quick_request(
        (m, n, kk),
        Precision::parse_list("f16,q8_0").unwrap(),
        tuned,
        Vec::new(),
    );
    let rows = precision::run(ctx, &req, &rng.vec_f32(m * kk), &rng.vec_f32(n * kk)).unwrap();
    let f16 = rows.iter().find(|r| r.precision == "f16").unwrap();
    assert!(
        f16.config.contains("tm: 3") && f16.config.ends_with("(tuned)"),
        "{}",
        f16.config
    );
    let q8 = rows.iter().find(|r| r.precision == "q8_0").unwrap();
    assert!(!q8.config.contains("(tuned)"));
    assert!(rows.iter().all(|r| r.passed));
}

#[test]
fn tiled_candidates_fit_the_adapter_and_include_the_public_shape() {
    use wgpu_lab::kernels::matmul_wq::TiledKernel;
    let Some(ctx) = common::ctx() else { return };
    let cands = tune::tiled_candidates(ctx);
    assert!(cands.iter().all(|t| t.fits(&ctx.limits())));
    if TiledKernel::PUBLIC_SHAPE.fits(&ctx.limits()) {
        assert!(cands.contains(&TiledKernel::PUBLIC_SHAPE));
    }
}

#[test]
fn a_tuned_tile_is_used_labelled_and_extra_kernels_are_rows_of_their_own() {
    use wgpu_lab::kernels::matmul_wq::TiledKernel;
    let Some(ctx) = common::ctx() else { return };
    let tile = TiledKernel {
        bm: 32,
        bn: 64,
        tm: 4,
        tn: 8,
        kv: 4,
    };
    let p = Precision::Weights(WeightFormat::Q4K);
    let tuned = tune::Tuned::from([(tune::entry_key(p, ShapeClass::Gemm), WqVariant::Tiled(tile))]);
    let mut rng = Rng::new(6);
    let (m, n, kk) = (9, 70, 512);
    let req = quick_request(
        (m, n, kk),
        vec![p],
        tuned,
        vec![WqVariant::Tiled(TiledKernel::PUBLIC_SHAPE)],
    );
    let rows = precision::run(ctx, &req, &rng.vec_f32(m * kk), &rng.vec_f32(n * kk)).unwrap();
    assert_eq!(rows.len(), 2, "the tuned tile and the public shape");
    assert!(rows[0].config.contains("bm: 32") && rows[0].config.ends_with("(tuned)"));
    assert!(!rows[1].config.contains("(tuned)"));
    assert!(rows.iter().all(|r| r.passed && r.kernel == "wq-tiled"));
}

#[test]
fn the_nn_f32_kernel_is_tuned_and_matmul_reads_it() {
    let Some(ctx) = common::ctx() else { return };
    let cache = common::tmp("nn-tune.json");
    let mut c = TuneCache::default();
    let key = tune::adapter_key(ctx);
    c.adapters.insert(
        key,
        tune::Tuned::from([(tune::F32_NN_KEY.to_string(), v(8, 3, 1))]),
    );
    c.save(&cache).unwrap();
    let run = |kernel: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wgpu-lab"))
            .args(["matmul", "--m", "7", "--n", "40", "--k", "24", "--json"])
            .args([
                "--repeat", "1", "--warmup", "0", "--no-cpu", "--kernel", kernel,
            ])
            .arg("--tune-cache")
            .arg(&cache)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["kernel"].as_str().unwrap().to_string(),
                    r["config"].to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    let all = run("all");
    let tuned = all
        .iter()
        .find(|r| r.0 == "regblock (tuned)")
        .expect("a tuned row");
    assert!(tuned.1.contains("tm: 3"), "{tuned:?}");
    let only = run("tuned");
    assert_eq!(only.len(), 1);
    assert!(
        only[0].0 == "regblock (tuned)" && only[0].1.contains("tm: 3"),
        "{only:?}"
    );
    // A nn candidate list the tuner searches, all valid register blocks.
    assert!(tune::f32_candidates()
        .iter()
        .all(|k| k.wg_x > 0 && k.tm > 0 && k.tn > 0));
}

#[test]
fn a_tuned_w8a8_tile_is_used_and_labelled() {
    use wgpu_lab::kernels::matmul_wq::TiledKernel;
    let Some(ctx) = common::ctx() else { return };
    let tile = TiledKernel {
        bm: 32,
        bn: 64,
        tm: 4,
        tn: 4,
        kv: 2,
    };
    let mut rng = Rng::new(8);
    let (m, n, kk) = (5, 70, 96);
    for p in [Precision::Int8, Precision::Int8Rot] {
        let tuned =
            tune::Tuned::from([(tune::entry_key(p, ShapeClass::Gemm), WqVariant::Tiled(tile))]);
        let req = quick_request((m, n, kk), vec![p], tuned, Vec::new());
        let rows = precision::run(ctx, &req, &rng.vec_f32(m * kk), &rng.vec_f32(n * kk)).unwrap();
        let r = &rows[0];
        assert_eq!(r.kernel, "i8-tiled");
        assert!(
            r.config.contains("bm: 32") && r.config.ends_with("(tuned)"),
            "{}",
            r.config
        );
        assert!(r.passed, "{r:?}");
    }
}

#[test]
fn a_gemm_winner_that_loses_to_the_default_at_the_larger_size_is_not_kept() {
    let small = (256, 512, 512);
    let large = tune::confirm_problem(small);
    assert_eq!(large, (512, 1024, 1024));
    let t = |kernel, ms, passed, problem| Trial {
        kernel,
        ms,
        passed,
        problem,
    };
    let tile = WqVariant::Tiled(wgpu_lab::kernels::matmul_wq::TiledKernel::PUBLIC_SHAPE);
    let default = v(16, 4, 4);
    let winner = t(tile, 30.0, true, small);
    let d = t(default, 33.0, true, small);
    // Faster small, slower large (lavapipe's Q4_K tile): the default is kept.
    let lost = [t(tile, 740.0, true, large), t(default, 474.0, true, large)];
    assert_eq!(tune::confirmed(winner, d, &lost).kernel, default);
    // Faster at both: the winner is kept.
    let won = [t(tile, 400.0, true, large), t(default, 474.0, true, large)];
    assert_eq!(tune::confirmed(winner, d, &won).kernel, tile);
    // Failing validation at the larger size loses too, however fast.
    let wrong = [t(tile, 1.0, false, large), t(default, 474.0, true, large)];
    assert_eq!(tune::confirmed(winner, d, &wrong).kernel, default);
    // No usable measurement of the default there: nothing to compare, the winner stays.
    let no_default = [
        t(tile, 400.0, true, large),
        t(default, f64::NAN, true, large),
    ];
    assert_eq!(tune::confirmed(winner, d, &no_default).kernel, tile);
}

/// `matmul --precision P` on a small problem with first-use autotuning on, into `cache`.
fn matmul_autotuned(cache: &std::path::Path, extra: &[&str]) -> (serde_json::Value, String) {
    let out = common::run_ok(
        common::bin()
            .env_remove("WGPU_LAB_NO_AUTOTUNE")
            .args([
                "matmul",
                "--precision",
                "q8_0",
                "--m",
                "8",
                "--n",
                "64",
                "--k",
                "64",
            ])
            .args(["--repeat", "1", "--warmup", "0", "--no-cpu", "--json"])
            .args(["--autotune-budget", "1", "--tune-cache"])
            .arg(cache)
            .args(extra),
    );
    (
        serde_json::from_slice(&out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn first_use_autotune_searches_each_entry_once_and_later_runs_read_it() {
    if common::ctx().is_none() {
        return;
    }
    let cache = common::tmp("first-use.json");
    let _ = std::fs::remove_file(&cache);
    let searches = |stderr: &str| {
        stderr
            .lines()
            .filter(|l| l.starts_with("autotuned "))
            .count()
    };
    let (rows, stderr) = matmul_autotuned(&cache, &[]);
    assert_eq!(searches(&stderr), 1, "{stderr}");
    assert!(stderr.contains("autotuned q8_0/gemm: "), "{stderr}");
    let row = &rows[0];
    assert_eq!(row["tuning"], "autotuned", "{row}");
    assert!(
        row["kernel"].as_str().unwrap().ends_with("(autotuned)"),
        "{row}"
    );
    assert_eq!(row["passed"], true);
    let saved = TuneCache::load(&cache);
    let auto: Vec<&String> = saved.autotuned.values().flatten().collect();
    assert_eq!(auto, ["q8_0/gemm"]);
    // The second run reads the entry: no search, the same label.
    let (rows, stderr) = matmul_autotuned(&cache, &[]);
    assert_eq!(searches(&stderr), 0, "{stderr}");
    assert_eq!(rows[0]["tuning"], "autotuned");
    // --no-autotune on an empty cache: the default kernel, labelled so, and no file.
    let empty = common::tmp("no-autotune.json");
    let _ = std::fs::remove_file(&empty);
    let (rows, stderr) = matmul_autotuned(&empty, &["--no-autotune"]);
    assert_eq!(searches(&stderr), 0, "{stderr}");
    assert_eq!(rows[0]["tuning"], "default");
    assert!(rows[0]["kernel"].as_str().unwrap().ends_with("(default)"));
    assert!(!empty.exists());
}

#[test]
fn first_use_autotune_of_the_f32_nn_block_searches_once_and_labels_its_rows() {
    use std::time::Duration;
    use wgpu_lab::bench::autotune::{Autotuner, Tuning};
    let Some(ctx) = common::ctx() else { return };
    // Library: no budget tries only the first candidate, the default, and keeps it.
    let path = common::tmp("nn-budget.json");
    let _ = std::fs::remove_file(&path);
    let mut auto = Autotuner::new(path.clone(), Duration::ZERO, true);
    auto.ensure_f32(ctx, Layout::Nn).unwrap();
    assert_eq!(auto.searches.len(), 1);
    let s = &auto.searches[0];
    assert_eq!(s.tried, 1, "{}", s.describe());
    assert_eq!(s.of, tune::f32_prior_on(ctx, Layout::Nn).len());
    assert_eq!(
        s.chosen.unwrap().kernel,
        WqVariant::Regblock(tune::f32_default(Layout::Nn))
    );
    assert_eq!(auto.tuning(ctx, tune::F32_NN_KEY), Tuning::Autotuned);
    auto.ensure_f32(ctx, Layout::Nn).unwrap();
    assert_eq!(auto.searches.len(), 1, "the entry exists: no second search");
    // The prior starts from the default and holds every candidate once, all three
    // families; on a CPU adapter the default subgroup block (the winner on both Mesa 22
    // and 25) comes second and the scalar 8x8 block fourth.
    for (cpu, layout) in [false, true].into_iter().zip(Layout::ALL) {
        let prior = tune::f32_prior(cpu, layout);
        assert_eq!(prior[0], WqVariant::Regblock(tune::f32_default(layout)));
        let distinct: std::collections::BTreeSet<String> =
            prior.iter().map(|v| format!("{v:?}")).collect();
        assert_eq!(distinct.len(), prior.len());
        assert_eq!(prior.len(), tune::f32_search_space().len());
        assert!(prior.iter().all(|v| tune::f32_kernel(*v).is_some()));
        if cpu {
            assert_eq!(
                prior[1],
                WqVariant::Sgblock {
                    sgblock: tune::f32_sg_default(layout)
                }
            );
            assert_eq!(prior[3].describe(), "scalarblock 64x8x8");
        }
    }
    // On this adapter (subgroups of 8 on lavapipe) nothing is filtered out.
    if ctx.has(wgpu::Features::SUBGROUP) && ctx.summary.subgroup_min_size >= 8 {
        assert_eq!(
            tune::f32_prior_on(ctx, Layout::Nn),
            tune::f32_prior(tune::is_cpu_adapter(ctx), Layout::Nn)
        );
    }

    // CLI: the first `matmul` (f32, nn, every kernel) searches the nn block and the nt
    // f32-weights block once each and labels the register-block rows; the second reads.
    let cache = common::tmp("first-use-nn.json");
    let _ = std::fs::remove_file(&cache);
    let run = || {
        let out = common::run_ok(
            common::bin()
                .env_remove("WGPU_LAB_NO_AUTOTUNE")
                .args(["matmul", "--m", "9", "--n", "70", "--k", "33"])
                .args(["--repeat", "1", "--warmup", "0", "--no-cpu", "--json"])
                .args(["--autotune-budget", "1", "--tune-cache"])
                .arg(&cache),
        );
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (rows, stderr)
    };
    let searches = |stderr: &str| {
        stderr
            .lines()
            .filter(|l| l.starts_with("autotuned "))
            .map(|l| l.split(':').next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let (rows, stderr) = run();
    assert_eq!(
        searches(&stderr),
        ["autotuned f32/gemm-nn", "autotuned f32/gemm"],
        "{stderr}"
    );
    let rows = rows.as_array().unwrap().clone();
    assert!(rows.iter().all(|r| r["passed"] == true), "{rows:?}");
    let labels: Vec<&str> = rows
        .iter()
        .filter(|r| {
            // The f32 kernel's rows (nn), not the f32 weights' (nt), which may also be a
            // subgroup block.
            let k = r["kernel"].as_str().unwrap();
            r["layout"] == "nn"
                && ["regblock", "scalarblock", "sgblock"]
                    .iter()
                    .any(|f| k.starts_with(f))
        })
        .map(|r| r["tuning"].as_str().unwrap())
        .collect();
    // The default row of each f32 block family (the one the search chose labelled
    // autotuned), plus the autotuned block's own row when it is no family's default.
    assert_eq!(
        labels.iter().filter(|l| **l == "autotuned").count(),
        1,
        "{labels:?}"
    );
    assert!(labels.len() == 3 || labels.len() == 4, "{labels:?}");
    assert!(
        labels.iter().all(|l| *l == "autotuned" || *l == "default"),
        "{labels:?}"
    );
    let (_, stderr) = run();
    assert!(searches(&stderr).is_empty(), "{stderr}");
}

#[test]
fn first_use_autotune_holds_its_budget() {
    use std::time::Duration;
    use wgpu_lab::bench::autotune::{Autotuner, Tuning};
    let Some(ctx) = common::ctx() else { return };
    let path = common::tmp("budget.json");
    let _ = std::fs::remove_file(&path);
    // No budget: each entry tries only its first candidate, the default, which is chosen.
    let mut auto = Autotuner::new(path.clone(), Duration::ZERO, true);
    let p = Precision::Weights(WeightFormat::Q4_0);
    auto.ensure(ctx, p, 1).unwrap();
    assert_eq!(
        auto.searches.len(),
        2,
        "the register block and the GEMV kernel"
    );
    for s in &auto.searches {
        assert_eq!(s.tried, 1, "{}", s.describe());
        assert!(s.of > 1, "{}", s.describe());
        assert!(s.chosen.is_some_and(|t| t.passed), "{}", s.describe());
    }
    assert_eq!(
        auto.searches[0].chosen.unwrap().kernel,
        WqVariant::Regblock(WqKernel::default_for(1))
    );
    assert_eq!(
        auto.tuning(ctx, &tune::entry_key(p, ShapeClass::Gemv)),
        Tuning::Autotuned
    );
    // A second ensure searches nothing; a disabled tuner never does.
    auto.ensure(ctx, p, 1).unwrap();
    assert_eq!(auto.searches.len(), 2);
    // The decoder's decode kernel alone (llm-bench, generate): one search, then none.
    let q8 = Precision::Weights(WeightFormat::Q8_0);
    auto.ensure_gemv_kernel(ctx, q8).unwrap();
    auto.ensure_gemv_kernel(ctx, q8).unwrap();
    assert_eq!(auto.searches.len(), 3);
    assert_eq!(auto.searches[2].key, tune::gemv_key(q8));
    assert_eq!(auto.tuning(ctx, &tune::gemv_key(q8)), Tuning::Autotuned);
    let mut off = Autotuner::new(common::tmp("off.json"), Duration::from_secs(5), false);
    off.ensure(ctx, p, 64).unwrap();
    assert!(off.searches.is_empty());
    // A budget of a few seconds stops the GEMM search early on a software adapter.
    let mut some = Autotuner::new(common::tmp("some.json"), Duration::from_secs(2), true);
    let t = std::time::Instant::now();
    some.ensure(ctx, Precision::Weights(WeightFormat::Q8_0), 64)
        .unwrap();
    let s = &some.searches[0];
    // ~90 candidates at ~0.2 s or more each (pipeline compile, validation, timing): the
    // budget stops the search well before the end on any adapter.
    assert!(s.tried >= 1 && s.tried < s.of, "{}", s.describe());
    eprintln!(
        "{} (whole ensure {:.1} s)",
        s.describe(),
        t.elapsed().as_secs_f64()
    );
}

/// The f32 entries may name a scalar block (`matmul_scalarblock`) or a subgroup block
/// (`matmul_sgblock`): each is stored under its own key (the untagged register block has
/// the same three fields), read back as itself, and runs as the f32 kernel. A scalar block
/// is never taken for a weight format's kernel: a cache that holds one under a weight key
/// reads as untuned, and the weight kernels refuse it with an error rather than a panic. A
/// subgroup block under a weight format's key is that format's `matmul_wq_sg` (and
/// untuned for f16acc and W8A8, which have no such kernel).
#[test]
fn a_scalar_or_subgroup_block_entry_round_trips_and_runs_where_it_belongs() {
    use wgpu_lab::kernels::matmul::Kernel;
    let k = WqKernel {
        wg_x: 64,
        tm: 8,
        tn: 8,
    };
    let block: WqVariant = serde_json::from_str(r#"{"wg_x":64,"tm":8,"tn":8}"#).unwrap();
    assert_eq!(block, WqVariant::Regblock(k));
    let cases = [
        (
            WqVariant::Scalar { scalar: k },
            r#"{"scalar":{"wg_x":64,"tm":8,"tn":8}}"#,
            Kernel::Scalarblock {
                wg_x: 64,
                tm: 8,
                tn: 8,
            },
        ),
        (
            WqVariant::Sgblock { sgblock: k },
            r#"{"sgblock":{"wg_x":64,"tm":8,"tn":8}}"#,
            Kernel::Sgblock {
                wg_x: 64,
                tm: 8,
                tn: 8,
            },
        ),
    ];
    let q8 = Precision::Weights(WeightFormat::Q8_0);
    for (v, want_json, kernel) in cases {
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, want_json);
        assert_eq!(serde_json::from_str::<WqVariant>(&json).unwrap(), v);
        let tuned = tune::Tuned::from([
            (tune::F32_NN_KEY.to_string(), v),
            (tune::entry_key(q8, ShapeClass::Gemm), v),
            (tune::entry_key(Precision::F16Acc, ShapeClass::Gemm), v),
        ]);
        assert_eq!(tune::tuned_f32(&tuned, Layout::Nn), Some(kernel));
        let scalar = matches!(v, WqVariant::Scalar { .. });
        assert_eq!(
            tune::tuned_variant(&tuned, q8, ShapeClass::Gemm),
            (!scalar).then_some(v)
        );
        assert_eq!(
            tune::tuned_variant(&tuned, Precision::F16Acc, ShapeClass::Gemm),
            None
        );
        assert_eq!(tune::tuned_kernel(&tuned, q8, ShapeClass::Gemm), None);
        let Some(ctx) = common::ctx() else { return };
        let mut rng = wgpu_lab::rng::Rng::new(3);
        let (m, n, k) = (5, 40, 64);
        let w = Weights::encode(WeightFormat::Q8_0, n, k, &rng.vec_f32(n * k)).unwrap();
        let got = PreparedMatmulWq::with_variant(ctx, v, &rng.vec_f32(m * k), m, k, &w);
        match (scalar, got) {
            (true, Err(e)) => assert!(e.to_string().contains("f32 kernel"), "{e}"),
            (false, Ok(_)) => {}
            (false, Err(e)) => assert!(e.to_string().contains("sgblock"), "{e}"),
            (true, Ok(_)) => panic!("a scalar block is no q8_0 kernel"),
        }
    }
}
