//! f16 accumulation (`matmul_f16acc`) vs the f64 product of the same f16 operands; refused
//! with a reason where the adapter lacks SHADER_F16.

mod common;

use wgpu_lab::compare::{ErrorStats, TOL_F16ACC_KERNEL_REL_FROBENIUS};
use wgpu_lab::gpu::measure::GpuOp;
use wgpu_lab::kernels::matmul_f16acc::PreparedMatmulF16Acc;
use wgpu_lab::kernels::matmul_wq::{TiledKernel, WqKernel, WqVariant};
use wgpu_lab::reference::matmul_f16acc::matmul_f16acc_f64;
use wgpu_lab::rng::Rng;
use wgpu_lab::LabError;

#[test]
fn matmul_f16acc_odd_shapes_or_clear_refusal() {
    let Some(ctx) = common::ctx() else { return };
    for (m, n, k) in [
        (1, 1, 1),
        (1, 67, 64),
        (7, 13, 45),
        (33, 65, 161),
        (64, 300, 1000),
    ] {
        let mut rng = Rng::new((m + n + k) as u64);
        let a = rng.vec_f32(m * k);
        let w = rng.vec_f32(n * k);
        let tile = TiledKernel {
            bm: 32,
            bn: 64,
            tm: 4,
            tn: 4,
            kv: 4,
        };
        for variant in [
            WqVariant::Regblock(WqKernel::default_for(m)),
            WqVariant::Tiled(tile),
            WqVariant::Tiled(TiledKernel::PUBLIC_SHAPE),
        ] {
            let p = match PreparedMatmulF16Acc::with_variant(ctx, variant, &a, &w, m, n, k) {
                Err(LabError::MissingFeature { feature, .. }) => {
                    assert!(!ctx.has(wgpu::Features::SHADER_F16));
                    eprintln!("matmul_f16acc refused as expected: adapter lacks {feature}");
                    return;
                }
                r => r.unwrap(),
            };
            p.poison(ctx);
            p.run(ctx, None).unwrap();
            let got = p.read(ctx).unwrap();
            let want = matmul_f16acc_f64(&a, &w, m, n, k).unwrap();
            let e = ErrorStats::compare(&got, &want);
            assert!(
                e.passes(TOL_F16ACC_KERNEL_REL_FROBENIUS),
                "{variant:?} {m}x{n}x{k}: {}",
                e.describe(n, TOL_F16ACC_KERNEL_REL_FROBENIUS)
            );
            // f16 accumulation must actually lose precision against f32 (or it is not f16).
            if k >= 1000 {
                assert!(
                    e.rel_frobenius > 1e-5,
                    "suspiciously exact: {}",
                    e.rel_frobenius
                );
            }
        }
    }
}
