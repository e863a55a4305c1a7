//! W8A8 (`matmul_i8`): the GPU's activation quantization equals the CPU's bit for bit, the
//! product matches exact integer arithmetic, with the packed dot and its fallback.

mod common;

use wgpu_lab::bench::GpuOp;
use wgpu_lab::compare::{ErrorStats, TOL_I8_KERNEL_REL_FROBENIUS};
use wgpu_lab::formats::int8::{quantize_rows, round_half_away};
use wgpu_lab::kernels::matmul_i8::{Dot4, PreparedMatmulI8};
use wgpu_lab::kernels::matmul_wq::WqKernel;
use wgpu_lab::reference::matmul_i8::matmul_i8_f64;
use wgpu_lab::rng::Rng;

#[test]
fn int8_quantizer_rounds_half_away_and_scales_by_amax() {
    assert_eq!(round_half_away(2.5), 3.0);
    assert_eq!(round_half_away(-2.5), -3.0);
    assert_eq!(round_half_away(0.49999997), 0.0);
    let q = quantize_rows(&[127.0, -63.5, 0.5, 1.0], 1, 4).unwrap();
    assert_eq!(q.scales, vec![1.0]);
    assert_eq!(
        [q.q(0, 0), q.q(0, 1), q.q(0, 2), q.q(0, 3)],
        [127, -64, 1, 1]
    );
    // Padding past k is zero, and an all-zero row has scale 0.
    let z = quantize_rows(&[0.0; 5], 1, 5).unwrap();
    assert_eq!((z.kp, z.scales[0]), (32, 0.0));
    assert!(z.words.iter().all(|&w| w == 0));
    assert!(quantize_rows(&[1.0, f32::NAN], 1, 2).is_err());
}

fn check(dot4: Dot4, kernel: WqKernel, (m, n, k): (usize, usize, usize)) {
    let Some(ctx) = common::ctx() else { return };
    let mut rng = Rng::new((m * 7 + n * 3 + k) as u64);
    let a = rng.vec_f32(m * k);
    let w = rng.vec_f32(n * k);
    let wq = quantize_rows(&w, n, k).unwrap();
    let aq = quantize_rows(&a, m, k).unwrap();
    let p = PreparedMatmulI8::new(ctx, kernel, dot4, &a, m, &wq).unwrap();
    p.poison(ctx);
    p.run(ctx, None).unwrap();
    // The GPU's quantizer agrees with the CPU's: scales to a few ulp (WGSL division is
    // 2.5 ULP), values within one step, padding zero.
    let gq = p.read_activations(ctx).unwrap();
    for r in 0..m {
        let (g, c) = (gq.scales[r], aq.scales[r]);
        assert!(
            (g - c).abs() <= 4.0 * f32::EPSILON * c.abs(),
            "row {r} scale {g} vs {c}"
        );
        for i in 0..gq.kp {
            let (g, c) = (gq.q(r, i) as i32, aq.q(r, i) as i32);
            assert!((g - c).abs() <= 1, "[{r}][{i}]: GPU {g} vs CPU {c}");
            if i >= k {
                assert_eq!(g, 0, "padding [{r}][{i}]");
            }
        }
    }
    let got = p.read(ctx).unwrap();
    // The kernel multiplies the GPU's activations: its reference does too.
    let want = matmul_i8_f64(&gq, &wq).unwrap();
    let e = ErrorStats::compare(&got, &want);
    assert!(
        e.passes(TOL_I8_KERNEL_REL_FROBENIUS),
        "{dot4:?} {kernel:?} {m}x{n}x{k}: {}",
        e.describe(n, TOL_I8_KERNEL_REL_FROBENIUS)
    );
}

const SHAPES: [(usize, usize, usize); 5] = [
    (1, 1, 1),
    (1, 67, 64),
    (7, 13, 45),
    (33, 65, 160),
    (64, 300, 257),
];

#[test]
fn matmul_i8_packed_dot_odd_shapes() {
    for s in SHAPES {
        check(Dot4::Packed, WqKernel::default_for(s.0), s);
        check(
            Dot4::Packed,
            WqKernel {
                wg_x: 8,
                tm: 3,
                tn: 2,
            },
            s,
        );
    }
}

#[test]
fn matmul_i8_manual_dot_fallback_odd_shapes() {
    for s in SHAPES {
        check(Dot4::Manual, WqKernel::default_for(s.0), s);
    }
}
