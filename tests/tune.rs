//! Autotuning: a failing candidate is never chosen (a deliberately wrong one, run on the
//! GPU, is rejected even though it is the fastest), the cache round-trips, a corrupt cache
//! is ignored, and tuned configurations are used and labelled.

mod common;

use wgpu_lab::bench::precision::{self, Precision, PrecisionRequest};
use wgpu_lab::bench::tune::{self, ShapeClass, Trial, TuneCache};
use wgpu_lab::bench::{measure, Runs};
use wgpu_lab::compare::{ErrorStats, TOL_WQ_KERNEL_REL_FROBENIUS};
use wgpu_lab::formats::weights::{WeightFormat, Weights};
use wgpu_lab::kernels::matmul_wq::{PreparedMatmulWq, WqKernel};
use wgpu_lab::reference::matmul_wq::matmul_wq_f64;
use wgpu_lab::rng::Rng;

fn k(wg_x: u32, tm: u32, tn: u32) -> WqKernel {
    WqKernel { wg_x, tm, tn }
}

#[test]
fn choose_never_picks_a_failing_candidate() {
    let trials = [
        Trial {
            kernel: k(8, 1, 1),
            ms: 0.001,
            passed: false,
        },
        Trial {
            kernel: k(16, 2, 2),
            ms: 2.0,
            passed: true,
        },
        Trial {
            kernel: k(32, 4, 4),
            ms: 1.5,
            passed: true,
        },
        Trial {
            kernel: k(64, 4, 4),
            ms: f64::NAN,
            passed: true,
        },
    ];
    assert_eq!(tune::choose(&trials).unwrap().kernel, k(32, 4, 4));
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
        kernel,
        ms: if wrong.is_some() { 1e-9 } else { t.gpu.median },
        passed,
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
    assert!(best.passed && best.kernel != k(8, 2, 2));
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
fn cache_round_trips_and_a_corrupt_one_is_ignored() {
    let dir = std::env::temp_dir().join(format!("wgpu-lab-tune-{}", std::process::id()));
    let path = dir.join("tune.json");
    let mut cache = TuneCache::default();
    cache
        .adapters
        .entry("gpu | vulkan | driver 1".into())
        .or_default()
        .insert("q4_0/gemv".into(), k(32, 1, 2));
    cache.save(&path).unwrap();
    let back = TuneCache::load(&path);
    assert_eq!(
        back.adapters["gpu | vulkan | driver 1"]["q4_0/gemv"],
        k(32, 1, 2)
    );
    std::fs::write(&path, "{ not json").unwrap();
    assert!(TuneCache::load(&path).adapters.is_empty());
    assert!(TuneCache::load(&dir.join("missing.json"))
        .adapters
        .is_empty());
}

#[test]
fn tuned_configuration_is_used_and_labelled() {
    let Some(ctx) = common::ctx() else { return };
    let mut tuned = tune::Tuned::new();
    tuned.insert(
        tune::entry_key(Precision::Weights(WeightFormat::F16), ShapeClass::Gemm),
        k(8, 3, 2),
    );
    let mut rng = Rng::new(5);
    let (m, n, kk) = (6, 40, 64);
    let req = PrecisionRequest {
        m,
        n,
        k: kk,
        precisions: Precision::parse_list("f16,q8_0").unwrap(),
        kernel: None,
        runs: Runs {
            warmup: 0,
            repeat: 1,
        },
        cpu_baseline: false,
        tuned,
    };
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
