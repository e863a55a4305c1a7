//! `matmul_wq` (f32 activations x weights in every storage format) vs its CPU twin over the
//! dequantized weights: kernel error near f32 rounding, for odd shapes, poisoned outputs.

mod common;

use wgpu_lab::compare::{ErrorStats, TOL_WQ_KERNEL_REL_FROBENIUS};
use wgpu_lab::formats::weights::{WeightFormat, Weights};
use wgpu_lab::kernels::matmul::{Layout, Shape};
use wgpu_lab::kernels::matmul_wq::{PreparedMatmulWq, WqKernel, WqVariant};
use wgpu_lab::reference::matmul::matmul_f64;
use wgpu_lab::reference::matmul_wq::matmul_wq_f64;
use wgpu_lab::rng::Rng;

/// Runs one case; returns (kernel error, quantization error).
fn check(format: WeightFormat, kernel: WqKernel, shape: (usize, usize, usize)) -> (f64, f64) {
    check_variant(format, WqVariant::Regblock(kernel), shape)
}

fn check_variant(
    format: WeightFormat,
    kernel: WqVariant,
    (m, n, k): (usize, usize, usize),
) -> (f64, f64) {
    let Some(ctx) = common::ctx() else {
        return (0.0, 0.0);
    };
    let mut rng = Rng::new((m * 131 + n * 17 + k) as u64);
    let a = rng.vec_f32(m * k);
    let w = rng.vec_f32(n * k);
    let weights = Weights::encode(format, n, k, &w).unwrap();
    let p = PreparedMatmulWq::with_variant(ctx, kernel, &a, m, k, &weights).unwrap();
    p.poison(ctx);
    p.run(ctx, None).unwrap();
    let got = p.read(ctx).unwrap();
    let want = matmul_wq_f64(&a, m, k, &weights).unwrap();
    let e = ErrorStats::compare(&got, &want);
    assert!(
        e.passes(TOL_WQ_KERNEL_REL_FROBENIUS),
        "{} {kernel:?} {m}x{n}x{k}: {}",
        format.name(),
        e.describe(n, TOL_WQ_KERNEL_REL_FROBENIUS)
    );
    let exact = matmul_f64(Layout::Nt, Shape::new(m, n, k).unwrap(), &a, &w).unwrap();
    (
        e.rel_frobenius,
        ErrorStats::compare(&got, &exact).rel_frobenius,
    )
}

const BLOCK_SHAPES: [(usize, usize, usize); 5] = [
    (1, 1, 32),
    (1, 67, 64),
    (7, 13, 96),
    (33, 65, 160),
    (64, 300, 256),
];

/// Shapes for the K-quants, whose rows are whole super-blocks of 256: k of 1, 2, 3 and 5
/// super-blocks, n and m not multiples of any tile.
const SUPER_BLOCK_SHAPES: [(usize, usize, usize); 4] =
    [(1, 1, 256), (1, 67, 512), (7, 13, 768), (33, 65, 1280)];

macro_rules! wq_tests {
    ($($name:ident: $format:expr, $shapes:expr, $max_quant_err:expr;)*) => {$(
        #[test]
        fn $name() {
            for s in $shapes {
                for kernel in [WqKernel::default_for(s.0), WqKernel { wg_x: 8, tm: 3, tn: 2 }] {
                    let (_, quant) = check($format, kernel, s);
                    // Loose sanity bound on the format itself (the real figures are in
                    // docs/results): a wrong decode would be off by O(1).
                    assert!(quant <= $max_quant_err, "quantization error {quant}");
                }
            }
        }
    )*};
}

wq_tests! {
    matmul_wq_f32_odd_shapes: WeightFormat::F32, BLOCK_SHAPES, 1e-6;
    matmul_wq_f16_odd_shapes: WeightFormat::F16, BLOCK_SHAPES, 1e-3;
    matmul_wq_bf16_odd_shapes: WeightFormat::Bf16, BLOCK_SHAPES, 1e-2;
    matmul_wq_q8_0_odd_shapes: WeightFormat::Q8_0, BLOCK_SHAPES, 2e-2;
    matmul_wq_q4_0_odd_shapes: WeightFormat::Q4_0, BLOCK_SHAPES, 0.25;
    matmul_wq_q4_1_odd_shapes: WeightFormat::Q4_1, BLOCK_SHAPES, 0.25;
    matmul_wq_q5_0_odd_shapes: WeightFormat::Q5_0, BLOCK_SHAPES, 0.12;
    matmul_wq_q4_k_odd_shapes: WeightFormat::Q4K, SUPER_BLOCK_SHAPES, 0.25;
    matmul_wq_q6_k_odd_shapes: WeightFormat::Q6K, SUPER_BLOCK_SHAPES, 0.06;
}

#[test]
fn matmul_wq_float_formats_pad_k_that_is_not_a_block_multiple() {
    for format in [WeightFormat::F32, WeightFormat::F16, WeightFormat::Bf16] {
        check(format, WqKernel::default_for(5), (5, 9, 45));
        check(format, WqKernel::default_for(1), (1, 40, 77));
    }
}

#[test]
fn matmul_wq_quantized_formats_refuse_partial_blocks() {
    for format in WeightFormat::ALL
        .into_iter()
        .filter(|f| f.is_block_quantized())
    {
        let e = Weights::encode(format, 2, 40, &[0.5; 80])
            .unwrap_err()
            .to_string();
        let want = format!("not a multiple of the block size {}", format.block_values());
        assert!(e.contains(&want), "{e}");
    }
    // A K-quant row of whole blocks of 32 but not of 256 (llama.cpp falls back to Q5_0).
    let e = Weights::encode(WeightFormat::Q4K, 2, 576, &[0.5; 1152]).unwrap_err();
    assert!(e.to_string().contains("block size 256"), "{e}");
}

#[test]
fn matmul_wq_mismatched_activations_are_refused() {
    let Some(ctx) = common::ctx() else { return };
    let weights = Weights::encode(WeightFormat::Q8_0, 4, 64, &[0.5; 256]).unwrap();
    let r = PreparedMatmulWq::new(
        ctx,
        WqKernel::default_for(2),
        &[1.0; 2 * 96],
        2,
        96,
        &weights,
    );
    assert!(r.err().expect("k mismatch").to_string().contains("k = 96"));
}

#[test]
fn gemv_wq_every_format_odd_shapes() {
    // n not a multiple of the rows per workgroup, k with fewer blocks than invocations and
    // with more (so invocations loop), one and several blocks per invocation.
    for format in WeightFormat::ALL {
        let shapes = if format.block_values() == 256 {
            [(1, 256), (67, 512), (5, 768), (130, 4352)]
        } else {
            [(1, 32), (67, 64), (5, 96), (130, 4160)]
        };
        for (n, k) in shapes {
            let odd = WqVariant::Gemv {
                wg: 32,
                rows: 3,
                subgroup: false,
            };
            let mut variants = vec![WqVariant::GEMV, odd];
            // gemv_wq_broadcast: 32 rows per workgroup, and 3 x 4 x 2 = 24 (partial quads).
            variants.extend([
                WqVariant::Broadcast { lanes: 8, quads: 1 },
                WqVariant::Broadcast { lanes: 3, quads: 2 },
            ]);
            if common::ctx().is_some_and(|c| c.has(wgpu::Features::SUBGROUP)) {
                variants.extend([
                    WqVariant::Gemv {
                        wg: 64,
                        rows: 4,
                        subgroup: true,
                    },
                    WqVariant::Gemv {
                        wg: 32,
                        rows: 3,
                        subgroup: true,
                    },
                ]);
            }
            for v in variants {
                check_variant(format, v, (1, n, k));
            }
        }
    }
}

#[test]
fn gemv_refuses_more_than_one_row() {
    let Some(ctx) = common::ctx() else { return };
    let weights = Weights::encode(WeightFormat::Q8_0, 4, 64, &[0.5; 256]).unwrap();
    let r = PreparedMatmulWq::with_variant(ctx, WqVariant::GEMV, &[1.0; 128], 2, 64, &weights);
    assert!(r
        .err()
        .expect("m = 2")
        .to_string()
        .contains("one activation row"));
}

#[test]
fn broadcast_gemv_refuses_rows_wider_than_its_uniform_view_and_more_than_one_row() {
    let Some(ctx) = common::ctx() else { return };
    let v = WqVariant::Broadcast { lanes: 8, quads: 1 };
    // 16384 values fill the 64 KiB view; one more block does not fit.
    let k = 16384 + 32;
    let weights = Weights::encode(WeightFormat::Q4_0, 2, k, &vec![0.5; 2 * k]).unwrap();
    let e = PreparedMatmulWq::with_variant(ctx, v, &vec![1.0; k], 1, k, &weights)
        .err()
        .expect("k over the uniform view")
        .to_string();
    assert!(e.contains("16416 values") && e.contains("65536"), "{e}");
    let weights = Weights::encode(WeightFormat::Q4_0, 2, 64, &[0.5; 128]).unwrap();
    let e = PreparedMatmulWq::with_variant(ctx, v, &[1.0; 128], 2, 64, &weights)
        .err()
        .expect("m = 2")
        .to_string();
    assert!(e.contains("one activation row"), "{e}");
    // The widest row it takes runs and is right.
    check_variant(WeightFormat::Q4_0, v, (1, 9, 16384));
}

#[test]
fn tiled_every_format_odd_shapes() {
    use wgpu_lab::kernels::matmul_wq::TiledKernel;
    // Tiles that do and do not divide m and n; 16, 32 and 8 values staged per step (k = 96
    // leaves the 32-value steps' last one partial for 16); the public kernel's shape.
    let small = TiledKernel {
        bm: 32,
        bn: 64,
        tm: 4,
        tn: 4,
        kv: 4,
    };
    let square = TiledKernel {
        bm: 64,
        bn: 64,
        tm: 4,
        tn: 8,
        kv: 8,
    };
    for format in WeightFormat::ALL {
        let shapes: &[(usize, usize, usize)] = if format.block_values() == 256 {
            &[(33, 65, 768), (1, 7, 256), (70, 130, 512)]
        } else {
            &[(33, 65, 96), (1, 7, 32), (70, 130, 160)]
        };
        for &s in shapes {
            for t in [small, square, TiledKernel::PUBLIC_SHAPE] {
                check_variant(format, WqVariant::Tiled(t), s);
            }
        }
    }
}

#[test]
fn subgroup_block_every_format_odd_shapes() {
    // matmul_wq_sg: activation rows broadcast from lanes 0..tm-1. Blocks whose rows do and
    // do not divide m (one row: only lane 0's row is real), weight rows past n, workgroups
    // of one and of several subgroups. Where the adapter cannot run them (no SUBGROUP),
    // the refusal names the reason.
    let Some(ctx) = common::ctx() else { return };
    let blocks = [(8, 8, 4), (16, 5, 3), (64, 4, 1), (8, 1, 2)];
    for format in WeightFormat::ALL {
        let shapes: &[(usize, usize, usize)] = if format.block_values() == 256 {
            &[(33, 65, 768), (1, 7, 256), (9, 130, 512)]
        } else {
            &[(33, 65, 96), (1, 7, 32), (9, 130, 160)]
        };
        for (wg_x, tm, tn) in blocks {
            let v = WqVariant::Sgblock {
                sgblock: WqKernel { wg_x, tm, tn },
            };
            if let Some(why) = wgpu_lab::kernels::matmul::subgroup_block_unsupported(ctx, wg_x, tm)
            {
                let w =
                    Weights::encode(format, 7, shapes[1].2, &vec![0.5; 7 * shapes[1].2]).unwrap();
                let e = PreparedMatmulWq::with_variant(
                    ctx,
                    v,
                    &vec![1.0; shapes[1].2],
                    1,
                    shapes[1].2,
                    &w,
                )
                .err()
                .expect("refused")
                .to_string();
                assert_eq!(e, why);
                continue;
            }
            for &s in shapes {
                check_variant(format, v, s);
            }
        }
    }
}

#[test]
fn tiled_refuses_what_the_adapter_cannot_hold() {
    use wgpu_lab::kernels::matmul_wq::TiledKernel;
    let Some(ctx) = common::ctx() else { return };
    let weights = Weights::encode(WeightFormat::Q8_0, 4, 64, &[0.5; 256]).unwrap();
    // 256 + 256 rows staged, 32 vec4s (+1) each: 270 KB of workgroup memory.
    let huge = TiledKernel {
        bm: 256,
        bn: 256,
        tm: 8,
        tn: 8,
        kv: 32,
    };
    let e =
        PreparedMatmulWq::with_variant(ctx, WqVariant::Tiled(huge), &[1.0; 128], 2, 64, &weights)
            .err()
            .expect("over the workgroup memory limit")
            .to_string();
    assert!(e.contains("max_compute_workgroup_storage_size"), "{e}");
    assert!(!huge.fits(&ctx.limits()));
}
