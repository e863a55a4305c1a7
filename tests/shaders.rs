//! Every WGSL kernel variant parses and validates with naga: no adapter needed.

mod common;

use wgpu_lab::formats::weights::WeightFormat;
use wgpu_lab::kernels::matmul::{Kernel, Layout};
use wgpu_lab::kernels::matmul_wq::WqKernel;
use wgpu_lab::shaders::{self, Define};

fn validate(label: &str, src: &str) {
    let module = naga::front::wgsl::parse_str(src)
        .unwrap_or_else(|e| panic!("{label}: {}", e.emit_to_string(src)));
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .unwrap_or_else(|e| panic!("{label}: {}", e.emit_to_string(src)));
}

#[test]
fn every_matmul_variant_validates() {
    let mut variants = Vec::new();
    for layout in Layout::ALL {
        variants.extend(Kernel::all(layout));
    }
    variants.push(Kernel::Regblock {
        wg_x: 8,
        tm: 1,
        tn: 1,
    });
    variants.push(Kernel::Tiled { tile: 8 });
    for k in variants {
        for b_f16 in [false, true] {
            if b_f16 && !k.reads_f16_b() {
                continue;
            }
            let src = shaders::assemble(&k.stem(), &k.defines(b_f16)).unwrap();
            validate(&format!("{k:?} b_f16={b_f16}"), &src);
        }
    }
}

#[test]
fn every_matmul_wq_format_validates() {
    use wgpu_lab::kernels::epilogue::Epilogue;
    use wgpu_lab::kernels::matmul_wq::{TiledKernel, WqVariant};
    for format in WeightFormat::ALL {
        for k in [WqKernel::default_for(1), WqKernel::default_for(64)] {
            let src = shaders::assemble("matmul_wq", &k.defines(format)).unwrap();
            validate(&format!("matmul_wq {} {k:?}", format.name()), &src);
        }
        for v in [
            WqVariant::Tiled(TiledKernel::PUBLIC_SHAPE),
            WqVariant::Gemv {
                wg: 32,
                rows: 3,
                subgroup: true,
            },
            WqVariant::Broadcast { lanes: 8, quads: 2 },
            WqVariant::Sgblock {
                sgblock: WqKernel {
                    wg_x: 8,
                    tm: 3,
                    tn: 2,
                },
            },
        ] {
            let spec = v.spec(format, Epilogue::None);
            let src = shaders::assemble(spec.stem, &spec.defines).unwrap();
            validate(&format!("{v:?} {}", format.name()), &src);
        }
    }
}

#[test]
fn the_broadcast_gemv_validates_with_each_fused_neighbour_and_refuses_other_kernels() {
    use wgpu_lab::kernels::matmul_wq::{Fused, WqVariant};
    let norm = Fused::NormIn {
        kp: 576,
        eps: 1e-5,
        parts: 72,
    };
    let v = WqVariant::Broadcast { lanes: 8, quads: 2 };
    for format in WeightFormat::ALL {
        for (fused, extra) in [
            (&[norm][..], 1),
            (&[Fused::ResidualOut], 3),
            (&[Fused::SiluOut, norm], 1),
        ] {
            let spec = v.fused_spec(format, fused).unwrap();
            let src = shaders::assemble(spec.stem, &spec.defines).unwrap();
            validate(&format!("{fused:?} {}", format.name()), &src);
            assert_eq!(spec.bindings.len(), 6 + extra);
        }
    }
    // Two neighbours on one side; SiLU pairing rows in two quads with one.
    let err = v
        .fused_spec(WeightFormat::Q4_1, &[Fused::SiluOut, Fused::ResidualOut])
        .unwrap_err();
    assert!(err.to_string().contains("each side"), "{err}");
    let one_quad = WqVariant::Broadcast { lanes: 8, quads: 1 };
    let err = one_quad
        .fused_spec(WeightFormat::Q4_1, &[Fused::SiluOut])
        .unwrap_err();
    assert!(err.to_string().contains("two quads"), "{err}");
    // Slots that are not whole vec4s (the uniform row is read as vec4s), and kernels whose
    // invocations do not own whole rows of the input and output.
    let bad = Fused::NormIn {
        kp: 576,
        eps: 1e-5,
        parts: 6,
    };
    let err = v.fused_spec(WeightFormat::Q4_1, &[bad]).unwrap_err();
    assert!(err.to_string().contains("vec4"), "{err}");
    for other in [
        WqVariant::GEMV,
        WqVariant::Regblock(WqKernel::default_for(1)),
    ] {
        let err = other.fused_spec(WeightFormat::Q4_1, &[norm]).unwrap_err();
        assert!(err.to_string().contains("gemv-bcast only"), "{err}");
    }
}

#[test]
fn int8_kernels_validate_with_both_dot_products_and_schemes() {
    use wgpu_lab::formats::int8::Int8Scheme;
    use wgpu_lab::kernels::epilogue::Epilogue;
    use wgpu_lab::kernels::matmul_i8::{matmul_spec, quantize_spec, Dot4};
    for scheme in [Int8Scheme::PerRow, Int8Scheme::Rot32] {
        for dot4 in [Dot4::Packed, Dot4::Manual] {
            let spec = matmul_spec(WqKernel::default_for(64), dot4, scheme, Epilogue::None);
            let name = format!("matmul_i8 {scheme:?} {dot4:?}");
            validate(&name, &shaders::assemble(spec.stem, &spec.defines).unwrap());
        }
        for quads in [1, 2] {
            let dot4 = Dot4::Manual;
            let spec = wgpu_lab::kernels::matmul_i8::broadcast_spec(16, quads, dot4, scheme);
            let name = format!("gemv_i8_broadcast {scheme:?} {quads}");
            validate(&name, &shaders::assemble(spec.stem, &spec.defines).unwrap());
        }
        let spec = quantize_spec(scheme);
        validate(
            spec.stem,
            &shaders::assemble(spec.stem, &spec.defines).unwrap(),
        );
    }
}

#[test]
fn every_epilogue_validates_in_every_linear_kernel() {
    use wgpu_lab::kernels::epilogue::Epilogue;
    use wgpu_lab::kernels::matmul_i8::{matmul_spec, Dot4};
    use wgpu_lab::kernels::matmul_wq::WqVariant;
    for e in [Epilogue::None, Epilogue::Bias, Epilogue::BiasGelu] {
        for v in [
            WqVariant::Regblock(WqKernel::default_for(8)),
            WqVariant::GEMV,
            WqVariant::Gemv {
                wg: 64,
                rows: 2,
                subgroup: true,
            },
            WqVariant::Tiled(wgpu_lab::kernels::matmul_wq::TiledKernel::PUBLIC_SHAPE),
            WqVariant::Broadcast {
                lanes: 16,
                quads: 1,
            },
        ] {
            let spec = v.spec(WeightFormat::Q8_0, e);
            validate(
                &format!("{v:?} {e:?}"),
                &shaders::assemble(spec.stem, &spec.defines).unwrap(),
            );
        }
        let scheme = wgpu_lab::formats::int8::Int8Scheme::PerRow;
        let spec = matmul_spec(WqKernel::default_for(8), Dot4::Manual, scheme, e);
        validate(
            &format!("i8 {e:?}"),
            &shaders::assemble(spec.stem, &spec.defines).unwrap(),
        );
    }
}

#[test]
fn regblock_validates_with_f16_elements_for_f16acc() {
    for k in [WqKernel::default_for(1), WqKernel::default_for(64)] {
        let spec = wgpu_lab::kernels::matmul_f16acc::spec(k);
        validate(
            &format!("f16acc {k:?}"),
            &shaders::assemble(spec.stem, &spec.defines).unwrap(),
        );
    }
}

#[test]
fn ceiling_fma_validates_in_f16_too() {
    let defines = vec![
        Define::Enable("f16"),
        Define::Alias("ELEM", "f16"),
        Define::U32("ITERS", 4),
    ];
    validate(
        "ceiling_fma f16",
        &shaders::assemble("ceiling_fma", &defines).unwrap(),
    );
}

#[test]
fn every_kernel_file_is_reachable() {
    // Each file in shaders/ assembles with the defines its kernel needs.
    for (stem, _) in shaders::KERNELS {
        let defines = match *stem {
            "matmul_tiled" => Kernel::Tiled { tile: 16 }.defines(false),
            "matmul_regblock" => Kernel::Regblock {
                wg_x: 16,
                tm: 2,
                tn: 2,
            }
            .defines(false),
            "matmul_scalarblock" => Kernel::Scalarblock {
                wg_x: 16,
                tm: 3,
                tn: 2,
            }
            .defines(false),
            "matmul_wq" => WqKernel::default_for(4).defines(WeightFormat::Q4_0),
            "gemv_wq" | "gemv_wq_subgroup" => vec![
                Define::U32("ROWS", 4),
                Define::Import("weights_q4_1".into()),
                Define::Import("epilogue_none".into()),
            ],
            "matmul_f16acc_tiled" => {
                wgpu_lab::kernels::matmul_f16acc::tiled_spec(
                    wgpu_lab::kernels::matmul_wq::TiledKernel::PUBLIC_SHAPE,
                )
                .defines
            }
            "matmul_i8_tiled" => {
                wgpu_lab::kernels::matmul_i8::matmul_tiled_spec(
                    wgpu_lab::kernels::matmul_wq::TiledKernel::PUBLIC_SHAPE,
                    wgpu_lab::kernels::matmul_i8::Dot4::Manual,
                    wgpu_lab::formats::int8::Int8Scheme::Rot32,
                    wgpu_lab::kernels::epilogue::Epilogue::None,
                )
                .defines
            }
            "matmul_wq_tiled" => {
                let t = wgpu_lab::kernels::matmul_wq::TiledKernel::PUBLIC_SHAPE;
                wgpu_lab::kernels::matmul_wq::WqVariant::Tiled(t)
                    .spec(
                        WeightFormat::Q4K,
                        wgpu_lab::kernels::epilogue::Epilogue::None,
                    )
                    .defines
            }
            "gemv_wq_broadcast" => {
                wgpu_lab::kernels::matmul_wq::WqVariant::Broadcast { lanes: 8, quads: 2 }
                    .spec(
                        WeightFormat::Q4_1,
                        wgpu_lab::kernels::epilogue::Epilogue::None,
                    )
                    .defines
            }
            "gemv_sparse_rows" => {
                let pattern = wgpu_lab::formats::sparse::NmPattern::new(6, 8).unwrap();
                wgpu_lab::kernels::sparse::SparseKernel::Rows { wg_x: 16 }
                    .spec(WeightFormat::Q4_1, pattern)
                    .defines
            }
            "gemv_sparse" | "gemv_sparse_bcast" | "matmul_sparse" => {
                use wgpu_lab::kernels::sparse::SparseKernel;
                let pattern = wgpu_lab::formats::sparse::NmPattern::new(2, 4).unwrap();
                let k = match *stem {
                    "gemv_sparse" => SparseKernel::Gemv { wg: 32 },
                    "gemv_sparse_bcast" => SparseKernel::Bcast { wg: 16, quads: 2 },
                    _ => SparseKernel::Matmul { wg_x: 64, tm: 4 },
                };
                k.spec(WeightFormat::Q4_0, pattern).defines
            }
            "bert_attention" => vec![Define::U32("HD4", 8)],
            "llama_rope_store" => vec![
                Define::U32("KC_BINDING", 3),
                Define::U32("VC_BINDING", 4),
                Define::Import("kv_store_f16".into()),
            ],
            "llama_attention" => vec![
                Define::U32("KC_BINDING", 2),
                Define::U32("VC_BINDING", 3),
                Define::Import("kv_load_f16".into()),
                Define::Import("attention_rope_apart".into()),
            ],
            "gemv_i8_broadcast" => {
                wgpu_lab::kernels::matmul_i8::broadcast_spec(
                    8,
                    2,
                    wgpu_lab::kernels::matmul_i8::Dot4::Manual,
                    wgpu_lab::formats::int8::Int8Scheme::Rot32,
                )
                .defines
            }
            "ceiling_fma" => vec![Define::Alias("ELEM", "f32"), Define::U32("ITERS", 4)],
            "ceiling_dot4" => vec![Define::U32("ITERS", 4)],
            "ceiling_read" => vec![Define::U32("READS", 16)],
            "matmul_i8" => vec![
                Define::U32("TM", 2),
                Define::U32("TN", 2),
                Define::Bool("BLOCKS", true),
                Define::Import("int8_dot_manual".into()),
                Define::Import("epilogue_none".into()),
            ],
            _ => vec![],
        };
        validate(stem, &shaders::assemble(stem, &defines).unwrap());
    }
}

#[test]
fn the_llama_cache_kernels_validate_with_both_kv_precisions() {
    // RoPE + store then attention (prefill), and attention with both fused (decode).
    for kv in ["f32", "f16"] {
        for (stem, access, first, rope) in [
            ("llama_rope_store", "store", 3, None),
            ("llama_attention", "load", 2, Some("attention_rope_apart")),
            ("llama_attention", "rw", 2, Some("attention_rope_fused")),
        ] {
            let mut defines = vec![
                Define::U32("KC_BINDING", first),
                Define::U32("VC_BINDING", first + 1),
                Define::Import(format!("kv_{access}_{kv}")),
            ];
            defines.extend(rope.map(|m| Define::Import(m.into())));
            validate(
                &format!("{stem} {kv} {rope:?}"),
                &shaders::assemble(stem, &defines).unwrap(),
            );
        }
    }
}

#[test]
fn unknown_kernel_and_import_are_errors() {
    assert!(shaders::assemble("no_such_kernel", &[]).is_err());
}

/// Runs `shaders/shared/f16_rne.wgsl`'s `f16_bits_rne` and pack2x16float on `xs`, returning
/// both results per value.
fn f16_on_gpu(ctx: &wgpu_lab::Context, xs: &[f32]) -> (Vec<u32>, Vec<u32>) {
    use wgpu_lab::gpu::buffers;
    use wgpu_lab::gpu::pipeline::{self, Binding, Checks};
    let lib = shaders::SHARED
        .iter()
        .find(|(n, _)| *n == "f16_rne")
        .unwrap()
        .1;
    let src = format!(
        "{lib}
@group(0) @binding(0) var<storage, read> xs: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<vec2<u32>>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {{
    let i = id.x;
    if i < arrayLength(&xs) {{
        out[i] = vec2(f16_bits_rne(xs[i]), pack2x16float(vec2(xs[i], 0.0)) & 0xffffu);
    }}
}}"
    );
    let p = pipeline::compile(
        ctx,
        "f16_rne test",
        &src,
        "main",
        &[],
        &[Binding::ReadOnly, Binding::ReadWrite],
        Checks::built_in(),
    )
    .unwrap();
    let input = buffers::upload(ctx, "xs", xs).unwrap();
    let out = buffers::storage(ctx, "out", 8 * xs.len() as u64).unwrap();
    buffers::poison(ctx, &out);
    let bg = pipeline::bind_group(ctx, &p, "f16_rne test", &[&input, &out]).unwrap();
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        pass.set_pipeline(&p);
        pass.set_bind_group(0, &bg, &[]);
        pass.dispatch_workgroups((xs.len() as u32).div_ceil(64), 1, 1);
    }
    ctx.queue.submit([enc.finish()]);
    let got: Vec<[u32; 2]> = buffers::read(ctx, &out, xs.len()).unwrap();
    got.iter().map(|p| (p[0], p[1])).unzip()
}

#[test]
fn f16_rne_rounds_as_the_cpu_twin_on_every_class_of_value() {
    // The f16 KV cache rounds through f16_rne because pack2x16float's rounding is the
    // driver's choice (WGSL allows either neighbour). Every class: ties both ways, the
    // subnormal range and its edges, the largest f16 and the overflow threshold, zeros,
    // infinities, NaN, and random values over the whole f32 range that f16 covers.
    let Some(ctx) = common::ctx() else { return };
    let mut xs: Vec<f32> = vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        65504.0,
        65519.99,
        65520.0,
        -65520.0,
        1e6,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        6.1035156e-5,
        6.1e-5,
        5.96e-8,
        2.98e-8,
        2.9802322e-8,
        2.99e-8,
        1e-9,
        f32::MIN_POSITIVE,
        1e-45,
    ];
    // Exact ties between neighbouring f16 values, normal and subnormal, odd and even below.
    for bits in [0x3c00u16, 0x3c01, 0x0001, 0x0002, 0x03ff, 0x7bfe, 0x0400] {
        let lo = half::f16::from_bits(bits).to_f32();
        let hi = half::f16::from_bits(bits + 1).to_f32();
        xs.extend([(lo + hi) / 2.0, -(lo + hi) / 2.0]);
    }
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..4096 {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        // Exponents from 2^-30 to 2^17, any mantissa, either sign.
        let bits = ((s as u32) & 0x807f_ffff) | ((((s >> 32) as u32 % 48) + 97) << 23);
        xs.push(f32::from_bits(bits));
    }
    let (rne, pack) = f16_on_gpu(ctx, &xs);
    let mut packed_differs = 0;
    for (i, &x) in xs.iter().enumerate() {
        let want = half::f16::from_f32(x);
        let got = half::f16::from_bits(rne[i] as u16);
        if x.is_nan() {
            assert!(got.is_nan() && rne[i] >> 16 == 0, "{x}: {:#x}", rne[i]);
        } else {
            assert_eq!(
                rne[i],
                want.to_bits() as u32,
                "{x:e} ({:#010x})",
                x.to_bits()
            );
        }
        packed_differs += (!x.is_nan() && pack[i] != want.to_bits() as u32) as usize;
    }
    // What the driver's own pack2x16float does, for the record (not asserted: either
    // neighbour is allowed).
    eprintln!(
        "pack2x16float differs from nearest-even on {packed_differs} of {} values",
        xs.len()
    );
}
