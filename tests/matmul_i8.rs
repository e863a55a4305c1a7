//! W8A8 (`matmul_i8`): the GPU's activation quantization agrees with the CPU's, the product
//! matches exact integer arithmetic, with the packed dot and its fallback, in both schemes
//! (per-row scales; Hadamard-rotated 32-value blocks).

mod common;

use wgpu_lab::compare::{ErrorStats, TOL_I8_KERNEL_REL_FROBENIUS};
use wgpu_lab::formats::int8::{
    hadamard32, quantize_rows, quantize_rows_with, round_half_away, Int8Scheme,
};
use wgpu_lab::gpu::measure::GpuOp;
use wgpu_lab::kernels::matmul_i8::{Dot4, PreparedMatmulI8};
use wgpu_lab::kernels::matmul_wq::{TiledKernel, WqKernel, WqVariant};
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

#[test]
fn rot32_quantizer_rotates_blocks_and_keeps_products() {
    // The normalised Hadamard transform is its own inverse (to f32 rounding).
    let mut rng = Rng::new(5);
    let x: [f32; 32] = rng.vec_f32(32).try_into().unwrap();
    let mut y = x;
    hadamard32(&mut y);
    hadamard32(&mut y);
    for (a, b) in x.iter().zip(&y) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    // A row with one outlier per block: per-row scales crush the small values, rotated
    // blocks keep them. Errors measured in the original basis.
    let (rows, k) = (4, 100);
    let mut w = rng.vec_f32(rows * k);
    for i in (0..w.len()).step_by(37) {
        w[i] *= 40.0;
    }
    let err = |q: &[f32]| -> f64 {
        let num: f64 = q
            .iter()
            .zip(&w)
            .map(|(a, b)| ((a - b) as f64).powi(2))
            .sum();
        (num / w.iter().map(|v| (*v as f64).powi(2)).sum::<f64>()).sqrt()
    };
    let per_row = quantize_rows(&w, rows, k).unwrap();
    let rot = quantize_rows_with(&w, rows, k, Int8Scheme::Rot32).unwrap();
    assert_eq!(
        (rot.scales.len(), rot.kp, rot.scales_per_row()),
        (rows * 4, 128, 4)
    );
    let (e_row, e_rot) = (err(&per_row.dequantize()), err(&rot.dequantize()));
    assert!(e_rot < 0.5 * e_row, "rotated {e_rot} vs per-row {e_row}");
    // The integer product of rotated operands approximates the original product: within
    // 1% of |a||w| (int8 steps are ~0.4-0.8% of a block's largest value).
    let a = rng.vec_f32(3 * k);
    let aq = quantize_rows_with(&a, 3, k, Int8Scheme::Rot32).unwrap();
    let got = matmul_i8_f64(&aq, &rot).unwrap();
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    for r in 0..3 {
        for c in 0..rows {
            let (ar, wr) = (&a[r * k..(r + 1) * k], &w[c * k..(c + 1) * k]);
            let exact: f64 = ar.iter().zip(wr).map(|(x, y)| *x as f64 * *y as f64).sum();
            let bound = 0.01 * norm(ar) * norm(wr);
            let e = (got[r * rows + c] - exact).abs();
            assert!(e < bound, "[{r}][{c}]: error {e} vs {bound}");
        }
    }
    // Mixed schemes are refused.
    assert!(matmul_i8_f64(&quantize_rows(&a, 3, k).unwrap(), &rot).is_err());
}

fn check(dot4: Dot4, kernel: WqKernel, (m, n, k): (usize, usize, usize)) {
    check_scheme(Int8Scheme::PerRow, dot4, kernel, (m, n, k))
}

fn check_scheme(scheme: Int8Scheme, dot4: Dot4, kernel: WqKernel, shape: (usize, usize, usize)) {
    check_variant(scheme, dot4, WqVariant::Regblock(kernel), shape)
}

fn check_variant(
    scheme: Int8Scheme,
    dot4: Dot4,
    kernel: WqVariant,
    (m, n, k): (usize, usize, usize),
) {
    let Some(ctx) = common::ctx() else { return };
    let mut rng = Rng::new((m * 7 + n * 3 + k) as u64);
    let a = rng.vec_f32(m * k);
    let w = rng.vec_f32(n * k);
    let wq = quantize_rows_with(&w, n, k, scheme).unwrap();
    let aq = quantize_rows_with(&a, m, k, scheme).unwrap();
    let p = PreparedMatmulI8::with_variant(ctx, kernel, dot4, &a, m, &wq).unwrap();
    p.poison(ctx);
    p.run(ctx, None).unwrap();
    // The GPU's quantizer agrees with the CPU's: scales to a few ulp (WGSL division is
    // 2.5 ULP), values within one step, padding zero (per row; rotation mixes a block).
    let gq = p.read_activations(ctx).unwrap();
    assert_eq!(gq.scales.len(), aq.scales.len());
    for (i, (g, c)) in gq.scales.iter().zip(&aq.scales).enumerate() {
        assert!(
            (g - c).abs() <= 4.0 * f32::EPSILON * c.abs(),
            "scale {i}: {g} vs {c}"
        );
    }
    for r in 0..m {
        for i in 0..gq.kp {
            let (g, c) = (gq.q(r, i) as i32, aq.q(r, i) as i32);
            assert!((g - c).abs() <= 1, "[{r}][{i}]: GPU {g} vs CPU {c}");
            if i >= k && scheme == Int8Scheme::PerRow {
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
        "{scheme:?} {dot4:?} {kernel:?} {m}x{n}x{k}: {}",
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

#[test]
fn matmul_i8_rot32_blocks_odd_shapes() {
    for s in SHAPES {
        check_scheme(
            Int8Scheme::Rot32,
            Dot4::Packed,
            WqKernel::default_for(s.0),
            s,
        );
        check_scheme(
            Int8Scheme::Rot32,
            Dot4::Manual,
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
fn matmul_i8_tiled_both_schemes_odd_shapes() {
    // Tiles that do not divide m or n; 32 and 64 values staged per step (k = 160 leaves the
    // 64-value steps' last one half full), the public kernel's shape.
    let tiles = [
        TiledKernel {
            bm: 32,
            bn: 64,
            tm: 4,
            tn: 4,
            kv: 2,
        },
        TiledKernel {
            bm: 64,
            bn: 64,
            tm: 8,
            tn: 4,
            kv: 4,
        },
        TiledKernel::PUBLIC_SHAPE,
    ];
    for s in SHAPES {
        for t in tiles {
            for scheme in [Int8Scheme::PerRow, Int8Scheme::Rot32] {
                check_variant(scheme, Dot4::Packed, WqVariant::Tiled(t), s);
            }
        }
        check_variant(
            Int8Scheme::Rot32,
            Dot4::Manual,
            WqVariant::Tiled(tiles[0]),
            s,
        );
    }
}

#[test]
fn gemv_i8_broadcast_both_schemes_odd_shapes() {
    // One activation row; rows that end in a partial workgroup and a partial quad (67 and
    // 300 rows; 3 lanes x 8 rows = 24 per workgroup), k not a multiple of 32 (padding).
    for (lanes, quads) in [(8, 1), (3, 2), (16, 2)] {
        let v = WqVariant::Broadcast { lanes, quads };
        for scheme in [Int8Scheme::PerRow, Int8Scheme::Rot32] {
            for dot4 in [Dot4::Packed, Dot4::Manual] {
                for shape in [(1, 1, 1), (1, 67, 64), (1, 300, 257), (1, 13, 45)] {
                    check_variant(scheme, dot4, v, shape);
                }
            }
        }
    }
}

#[test]
fn gemv_i8_broadcast_equals_the_register_block_bit_for_bit() {
    // The decoder's decode steps use the broadcast kernel and its prefill the register
    // block: the same operands must give the same floats (same block order, same scaling).
    let Some(ctx) = common::ctx() else { return };
    let (n, k) = (75, 200);
    let mut rng = Rng::new(11);
    let a = rng.vec_f32(k);
    let w = rng.vec_f32(n * k);
    for scheme in [Int8Scheme::PerRow, Int8Scheme::Rot32] {
        let wq = quantize_rows_with(&w, n, k, scheme).unwrap();
        let run = |v| {
            let p = PreparedMatmulI8::with_variant(ctx, v, Dot4::best(ctx), &a, 1, &wq).unwrap();
            p.run(ctx, None).unwrap();
            p.read(ctx).unwrap()
        };
        let bcast = run(WqVariant::Broadcast { lanes: 4, quads: 2 });
        let block = run(WqVariant::Regblock(WqKernel::default_for(1)));
        assert_eq!(bcast, block, "{scheme:?}");
    }
}

#[test]
fn matmul_i8_refuses_odd_tiles_and_gemv() {
    let Some(ctx) = common::ctx() else { return };
    let wq = quantize_rows(&[0.5; 64], 2, 32).unwrap();
    let odd = TiledKernel {
        bm: 32,
        bn: 32,
        tm: 4,
        tn: 4,
        kv: 3,
    };
    let e = PreparedMatmulI8::with_variant(
        ctx,
        WqVariant::Tiled(odd),
        Dot4::Manual,
        &[1.0; 32],
        1,
        &wq,
    )
    .err()
    .expect("odd kv")
    .to_string();
    assert!(e.contains("even kv"), "{e}");
    let e = PreparedMatmulI8::with_variant(ctx, WqVariant::GEMV, Dot4::Manual, &[1.0; 32], 1, &wq)
        .err()
        .expect("no GEMV")
        .to_string();
    assert!(e.contains("no GEMV"), "{e}");
    let bcast = WqVariant::Broadcast { lanes: 8, quads: 2 };
    let e = PreparedMatmulI8::with_variant(ctx, bcast, Dot4::Manual, &[1.0; 64], 2, &wq)
        .err()
        .expect("two rows")
        .to_string();
    assert!(e.contains("one activation row"), "{e}");
}
