//! The CPU baselines (ggml as llama.cpp runs it, gemm, candle) agree with the CPU twins of
//! the GPU kernels within each precision's tolerance, every candidate library on its own, on
//! shapes that are not tile multiples; the race keeps the fastest and names it; a shape a
//! block format cannot store has no baseline rather than a wrong one. No adapter needed.

use wgpu_lab::compare::{
    ErrorStats, TOL_CPU_BASELINE_BF16_REL_FROBENIUS, TOL_CPU_BASELINE_F16_REL_FROBENIUS,
    TOL_CPU_BASELINE_Q8_ACT_REL_FROBENIUS, TOL_F16ACC_KERNEL_REL_FROBENIUS,
    TOL_WQ_KERNEL_REL_FROBENIUS,
};
use wgpu_lab::formats::int8::quantize_rows_with;
use wgpu_lab::formats::precision::Precision;
use wgpu_lab::formats::weights::{WeightFormat, Weights};
use wgpu_lab::kernels::matmul::{Layout, Shape};
use wgpu_lab::reference::cpu_baseline;
use wgpu_lab::reference::matmul::matmul_f64;
use wgpu_lab::reference::matmul_f16acc::matmul_f16acc_f64;
use wgpu_lab::reference::matmul_i8::matmul_i8_f64;
use wgpu_lab::reference::matmul_wq::matmul_wq_f64;
use wgpu_lab::rng::Rng;

/// The twin's product for `p` on the same operands, and the tolerance the baseline of
/// `library` must meet against it (with the reason in `compare`).
fn twin(p: Precision, library: &str, a: &[f32], w: &[f32], shape: Shape) -> (Vec<f64>, f64) {
    let Shape { m, n, k } = shape;
    match p {
        Precision::Weights(WeightFormat::F32) => (
            matmul_f64(Layout::Nt, shape, a, w).unwrap(),
            TOL_WQ_KERNEL_REL_FROBENIUS,
        ),
        Precision::Weights(f) => {
            let wt = Weights::encode(f, n, k, w).unwrap();
            let tol = match f {
                WeightFormat::F16 => TOL_CPU_BASELINE_F16_REL_FROBENIUS,
                // ggml rounds the activations to bf16 too; widened bf16 (gemm) is exact.
                WeightFormat::Bf16 if library.starts_with("ggml") => {
                    TOL_CPU_BASELINE_BF16_REL_FROBENIUS
                }
                WeightFormat::Bf16 => TOL_WQ_KERNEL_REL_FROBENIUS,
                _ => TOL_CPU_BASELINE_Q8_ACT_REL_FROBENIUS,
            };
            (matmul_wq_f64(a, m, k, &wt).unwrap(), tol)
        }
        Precision::F16Acc => (
            matmul_f16acc_f64(a, w, m, n, k).unwrap(),
            TOL_F16ACC_KERNEL_REL_FROBENIUS,
        ),
        Precision::Int8 | Precision::Int8Rot => {
            let s = p.int8_scheme().unwrap();
            let aq = quantize_rows_with(a, m, k, s).unwrap();
            let wq = quantize_rows_with(w, n, k, s).unwrap();
            // ggml and candle quantize activations per 32 values with f16 scales, the twin
            // per row (int8) or per 32 with f32 scales (int8rot): activation rounding differs.
            (
                matmul_i8_f64(&aq, &wq).unwrap(),
                TOL_CPU_BASELINE_Q8_ACT_REL_FROBENIUS,
            )
        }
    }
}

#[test]
fn every_cpu_library_agrees_with_the_twin_at_every_precision() {
    // GEMV and GEMM; n not a multiple of any tile (nor of ggml's 8-row repacks); k a whole
    // number of 32-value blocks, and of 256-value super-blocks (the K-quants) in the last
    // two; the last n is a multiple of 8, where ggml repacks q4_0 and q4_k.
    for (m, n, k) in [(1, 37, 96), (7, 45, 256), (33, 72, 512)] {
        let shape = Shape::new(m, n, k).unwrap();
        let mut rng = Rng::new((m * 1000 + n) as u64);
        let a = rng.vec_f32(m * k);
        let w = rng.vec_f32(n * k);
        for p in Precision::ALL {
            let all = cpu_baseline::candidates(p, &a, &w, shape).unwrap();
            let super_block = matches!(p, Precision::Weights(f) if f.block_values() == 256);
            if all.is_empty() {
                assert!(
                    super_block && k % 256 != 0,
                    "{}: no baseline at k = {k}",
                    p.name()
                );
                continue;
            }
            // ggml and a second library for every precision.
            assert!(all.len() >= 2, "{}: {} candidates", p.name(), all.len());
            assert!(all[0].library.starts_with("ggml"), "{}", all[0].library);
            for b in &all {
                let got = b.run().unwrap();
                assert!(got.iter().all(|v| v.is_finite()), "{}", p.name());
                let (want, tol) = twin(p, &b.library, &a, &w, shape);
                let e = ErrorStats::compare(&got, &want);
                assert!(
                    e.passes(tol),
                    "{} ({}) at {m}x{n}x{k}: {}",
                    p.name(),
                    b.library,
                    e.describe(n, tol)
                );
            }
        }
    }
}

#[test]
fn the_q8_activation_bound_is_not_loose() {
    // The block formats' baselines quantize activations: their error must be visibly above
    // the f32 bar (else the looser bound would hide nothing) and inside their own.
    let shape = Shape::new(9, 64, 256).unwrap();
    let mut rng = Rng::new(3);
    let (a, w) = (rng.vec_f32(9 * 256), rng.vec_f32(64 * 256));
    let p = Precision::Weights(WeightFormat::Q8_0);
    for b in cpu_baseline::candidates(p, &a, &w, shape).unwrap() {
        let (want, tol) = twin(p, &b.library, &a, &w, shape);
        let e = ErrorStats::compare(&b.run().unwrap(), &want);
        assert!(
            e.rel_frobenius > 1e-4 && e.rel_frobenius < tol / 2.0,
            "{}: {e:?}",
            b.library
        );
    }
}

#[test]
fn the_race_keeps_one_library_and_names_the_others() {
    let shape = Shape::new(16, 64, 256).unwrap();
    let mut rng = Rng::new(4);
    let (a, w) = (rng.vec_f32(16 * 256), rng.vec_f32(64 * 256));
    for p in [
        Precision::Weights(WeightFormat::Q4_0),
        Precision::Weights(WeightFormat::F32),
        Precision::Int8Rot,
    ] {
        let b = cpu_baseline::prepare(p, &a, &w, shape).unwrap().unwrap();
        // "<winner> (...); <other> took 1.23x as long"
        let (winner, others) = b.library.split_once("; ").expect("the others named");
        assert!(others.contains("x as long"), "{}", b.library);
        let lib = |s: &str| {
            ["ggml", "gemm", "candle"]
                .into_iter()
                .find(|l| s.starts_with(l))
        };
        assert!(
            lib(winner).is_some() && lib(others).is_some(),
            "{}",
            b.library
        );
        assert_ne!(lib(winner), lib(others), "{}", b.library);
        let (want, tol) = twin(p, winner, &a, &w, shape);
        assert!(ErrorStats::compare(&b.run().unwrap(), &want).passes(tol));
    }
}

#[test]
fn block_formats_have_no_baseline_for_partial_blocks() {
    let shape = Shape::new(2, 5, 33).unwrap();
    let mut rng = Rng::new(5);
    let (a, w) = (rng.vec_f32(2 * 33), rng.vec_f32(5 * 33));
    let q = cpu_baseline::prepare(Precision::Weights(WeightFormat::Q4_1), &a, &w, shape).unwrap();
    assert!(q.is_none());
    // Float formats pad and still run.
    let f = cpu_baseline::prepare(Precision::Weights(WeightFormat::F16), &a, &w, shape).unwrap();
    assert_eq!(f.unwrap().run().unwrap().len(), 10);
}
