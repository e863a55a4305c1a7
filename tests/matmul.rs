//! GPU matmul kernels vs the f64 CPU reference: every kernel, both layouts, shapes that
//! break every tile, NaN-poisoned outputs, forced splitting and 2-D dispatch.

mod common;

use wgpu_lab::compare::{ErrorStats, TOL_F32_REL_FROBENIUS};
use wgpu_lab::kernels::matmul::{Kernel, Layout, MatmulOptions, PreparedMatmul, Shape};
use wgpu_lab::reference::matmul::{matmul_cpu_fast, matmul_f64};
use wgpu_lab::rng::Rng;

/// Runs `kernel` on random inputs with a poisoned output and checks it against f64 (over
/// the f16-rounded B when `opts.b_f16`: the values the kernel multiplies).
fn check(kernel: Kernel, layout: Layout, (m, n, k): (usize, usize, usize), opts: MatmulOptions) {
    let Some(ctx) = common::ctx() else { return };
    // A subgroup block this adapter cannot run (no SUBGROUP, or subgroups narrower than its
    // rows) is refused with the reason: matmul_sgblock_refuses_what_its_subgroups_cannot_hold.
    if let Some(why) = kernel.unsupported(ctx) {
        eprintln!("SKIPPED {kernel:?}: {why}");
        return;
    }
    let shape = Shape::new(m, n, k).unwrap();
    let mut rng = Rng::new((m * 31 + n * 7 + k) as u64);
    let a = rng.vec_f32(m * k);
    let b = rng.vec_f32(k * n);
    let b_seen: Vec<f32> = if opts.b_f16 {
        b.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect()
    } else {
        b.clone()
    };
    let want = matmul_f64(layout, shape, &a, &b_seen).unwrap();
    let p = PreparedMatmul::new(ctx, kernel, layout, shape, &a, &b, opts).unwrap();
    p.poison(ctx);
    p.run(ctx, None).unwrap();
    let got = p.read(ctx).unwrap();
    let e = ErrorStats::compare(&got, &want);
    assert!(
        e.passes(TOL_F32_REL_FROBENIUS),
        "{kernel:?} {} {m}x{n}x{k} ({} chunks): {}",
        layout.name(),
        p.chunk_count(),
        e.describe(n, TOL_F32_REL_FROBENIUS)
    );
}

const SHAPES: [(usize, usize, usize); 6] = [
    (1, 1, 1),
    (1, 300, 77), // a vector times a matrix
    (7, 13, 5),
    (33, 65, 17),
    (257, 129, 300),
    (64, 1, 33), // a matrix times a vector
];

macro_rules! kernel_tests {
    ($($name:ident: $kernel:expr, $layout:expr;)*) => {$(
        #[test]
        fn $name() {
            let kernel = Kernel::named($kernel, $layout).unwrap();
            for s in SHAPES {
                check(kernel, $layout, s, MatmulOptions::default());
            }
        }
    )*};
}

kernel_tests! {
    matmul_naive_nn_odd_shapes: "naive", Layout::Nn;
    matmul_naive_nt_odd_shapes: "naive", Layout::Nt;
    matmul_tiled_nn_odd_shapes: "tiled", Layout::Nn;
    matmul_tiled_nt_odd_shapes: "tiled", Layout::Nt;
    matmul_regblock_nn_odd_shapes: "regblock", Layout::Nn;
    matmul_regblock_nt_odd_shapes: "regblock", Layout::Nt;
    matmul_scalarblock_nn_odd_shapes: "scalarblock", Layout::Nn;
    matmul_scalarblock_nt_odd_shapes: "scalarblock", Layout::Nt;
    matmul_sgblock_nn_odd_shapes: "sgblock", Layout::Nn;
    matmul_sgblock_nt_odd_shapes: "sgblock", Layout::Nt;
}

#[test]
fn matmul_all_kernels_1000_cubed() {
    for layout in Layout::ALL {
        for kernel in Kernel::all(layout) {
            check(kernel, layout, (1000, 1000, 1000), MatmulOptions::default());
        }
    }
}

#[test]
fn matmul_regblock_other_configurations() {
    // Register blocks that do not divide the shape, workgroups of other widths, and the
    // largest written-out blocks the tuner searches (8x16x4 covers 16 rows and 128 columns
    // in nn: here one partial tile in each direction; 8x8x8 in nt).
    for (wg_x, tm, tn) in [
        (8, 1, 1),
        (8, 3, 3),
        (32, 4, 1),
        (64, 2, 2),
        (8, 16, 4),
        (8, 8, 8),
        (16, 12, 4),
    ] {
        for layout in Layout::ALL {
            let kernel = Kernel::Regblock { wg_x, tm, tn };
            check(kernel, layout, (37, 91, 23), MatmulOptions::default());
        }
    }
}

#[test]
fn matmul_scalarblock_other_configurations() {
    // Every scalar block the tuner searches, and odd ones: blocks that do not divide the
    // shape, one row, one column; a partial tile in each direction.
    let mut blocks: Vec<(u32, u32, u32)> = wgpu_lab::bench::tune::f32_scalar_candidates()
        .iter()
        .map(|k| (k.wg_x, k.tm, k.tn))
        .collect();
    blocks.extend([(8, 1, 1), (8, 3, 5), (32, 7, 2)]);
    for (wg_x, tm, tn) in blocks {
        for layout in Layout::ALL {
            let kernel = Kernel::Scalarblock { wg_x, tm, tn };
            check(kernel, layout, (37, 91, 23), MatmulOptions::default());
        }
    }
}

#[test]
fn matmul_sgblock_other_configurations() {
    // Every subgroup block the tuner searches, and odd ones: one row (only lane 0's row is
    // real), rows and columns that do not divide the shape, workgroups of several
    // subgroups; a partial tile in each direction and k not a multiple of 4.
    // Every block shape the tuner searches, in workgroups of 8 (the wider workgroups only
    // change an override constant: two of them here).
    let mut blocks: Vec<(u32, u32, u32)> = wgpu_lab::bench::tune::f32_sg_candidates()
        .iter()
        .filter(|k| k.wg_x == 8)
        .map(|k| (k.wg_x, k.tm, k.tn))
        .collect();
    blocks.extend([(16, 8, 2), (64, 4, 8), (8, 1, 1), (16, 5, 3), (32, 7, 2)]);
    for (wg_x, tm, tn) in blocks {
        for layout in Layout::ALL {
            let kernel = Kernel::Sgblock { wg_x, tm, tn };
            check(kernel, layout, (37, 91, 23), MatmulOptions::default());
        }
    }
}

#[test]
fn matmul_sgblock_refuses_what_its_subgroups_cannot_hold() {
    // Lanes 0..tm-1 hold the block's rows, so tm may not exceed the adapter's smallest
    // subgroup, and the workgroup must be whole subgroups: clear errors naming both, not
    // wrong answers.
    let Some(ctx) = common::ctx() else { return };
    let (min, max) = (ctx.summary.subgroup_min_size, ctx.summary.subgroup_max_size);
    let shape = Shape::new(4, 4, 4).unwrap();
    let refusal = |kernel: Kernel| {
        PreparedMatmul::new(
            ctx,
            kernel,
            Layout::Nn,
            shape,
            &[1.0; 16],
            &[1.0; 16],
            MatmulOptions::default(),
        )
        .err()
        .unwrap_or_else(|| panic!("{kernel:?} is refused"))
        .to_string()
    };
    let subgroups = ctx.has(wgpu::Features::SUBGROUP);
    let too_tall = refusal(Kernel::Sgblock {
        wg_x: max.max(1),
        tm: min + 1,
        tn: 1,
    });
    let partial = refusal(Kernel::Sgblock {
        wg_x: max.max(2) - 1,
        tm: 1,
        tn: 1,
    });
    if subgroups {
        assert!(
            too_tall.contains(&format!("subgroups of at least {}", min + 1)),
            "{too_tall}"
        );
        assert!(partial.contains("must be a multiple of"), "{partial}");
    } else {
        assert!(too_tall.contains("SUBGROUP"), "{too_tall}");
        assert!(partial.contains("SUBGROUP"), "{partial}");
    }
}

#[test]
fn matmul_split_across_bindings_matches() {
    // A 4 KiB pretend binding limit forces A, B and C into many blocks.
    let opts = MatmulOptions {
        max_binding_bytes: Some(4096),
        ..Default::default()
    };
    for layout in Layout::ALL {
        for kernel in Kernel::all(layout) {
            check(kernel, layout, (70, 90, 50), opts);
        }
    }
}

#[test]
fn matmul_over_65535_workgroups_uses_2d_dispatch() {
    // naive covers 8x8 outputs per workgroup: 1 x 600000 needs 75000 workgroups.
    let kernel = Kernel::named("naive", Layout::Nt).unwrap();
    check(
        kernel,
        Layout::Nt,
        (1, 600_000, 4),
        MatmulOptions::default(),
    );
}

#[test]
fn matmul_sgblock_over_65535_workgroups_uses_2d_dispatch() {
    // 32 columns per workgroup: 1 x 2_200_000 needs 68750 workgroups, folded into y; the
    // padding workgroups of the last row of the grid return before any subgroup operation.
    let kernel = Kernel::named("sgblock", Layout::Nn).unwrap();
    check(
        kernel,
        Layout::Nn,
        (1, 2_200_000, 4),
        MatmulOptions::default(),
    );
}

#[test]
fn matmul_cpu_baseline_matches_reference() {
    for layout in Layout::ALL {
        let shape = Shape::new(45, 67, 89).unwrap();
        let mut rng = Rng::new(5);
        let a = rng.vec_f32(45 * 89);
        let b = rng.vec_f32(89 * 67);
        let got = matmul_cpu_fast(layout, shape, &a, &b).unwrap();
        let want = matmul_f64(layout, shape, &a, &b).unwrap();
        let e = ErrorStats::compare(&got, &want);
        assert!(e.passes(TOL_F32_REL_FROBENIUS), "{}", e.describe(67, 1e-5));
    }
}

#[test]
fn matmul_reference_is_right_on_a_known_product() {
    // [[1,2],[3,4]] * [[5,6],[7,8]] = [[19,22],[43,50]]
    let shape = Shape::new(2, 2, 2).unwrap();
    let c = matmul_f64(Layout::Nn, shape, &[1., 2., 3., 4.], &[5., 6., 7., 8.]).unwrap();
    assert_eq!(c, vec![19., 22., 43., 50.]);
    // nt: B stored transposed gives the same product.
    let c = matmul_f64(Layout::Nt, shape, &[1., 2., 3., 4.], &[5., 7., 6., 8.]).unwrap();
    assert_eq!(c, vec![19., 22., 43., 50.]);
}

#[test]
fn matmul_poison_is_detected_when_nothing_is_written() {
    // The harness itself must catch a kernel that writes nothing: run no dispatch at all.
    let Some(ctx) = common::ctx() else { return };
    let shape = Shape::new(5, 6, 7).unwrap();
    let mut rng = Rng::new(9);
    let (a, b) = (rng.vec_f32(35), rng.vec_f32(42));
    let kernel = Kernel::named("naive", Layout::Nn).unwrap();
    let p =
        PreparedMatmul::new(ctx, kernel, Layout::Nn, shape, &a, &b, Default::default()).unwrap();
    p.poison(ctx);
    let got = p.read(ctx).unwrap();
    let want = matmul_f64(Layout::Nn, shape, &a, &b).unwrap();
    assert!(!ErrorStats::compare(&got, &want).passes(TOL_F32_REL_FROBENIUS));
}

#[test]
fn matmul_regblock_f16_b_both_layouts_odd_shapes() {
    let opts = MatmulOptions {
        b_f16: true,
        ..Default::default()
    };
    for layout in Layout::ALL {
        let kernel = Kernel::named("regblock", layout).unwrap();
        for s in SHAPES {
            check(kernel, layout, s, opts);
        }
        // And split across bindings, where B's blocks are converted one by one.
        let split = MatmulOptions {
            max_binding_bytes: Some(4096),
            ..opts
        };
        check(kernel, layout, (70, 90, 50), split);
    }
}

#[test]
fn matmul_f16_b_is_refused_for_scalar_kernels() {
    let Some(ctx) = common::ctx() else { return };
    let opts = MatmulOptions {
        b_f16: true,
        ..Default::default()
    };
    let shape = Shape::new(2, 2, 2).unwrap();
    for name in ["tiled", "scalarblock"] {
        let kernel = Kernel::named(name, Layout::Nn).unwrap();
        let r = PreparedMatmul::new(ctx, kernel, Layout::Nn, shape, &[1.0; 4], &[1.0; 4], opts);
        assert!(r
            .err()
            .unwrap_or_else(|| panic!("{name} has no f16 B"))
            .to_string()
            .contains("regblock"));
    }
}
