//! ggml block quantizers: byte-exact with ggml's reference (fixtures made by
//! scripts/make_quant_fixtures.py with gguf.quants), dequantizers exact, bad input refused.

use wgpu_lab::formats::quant::*;

fn data(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/quant/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn f32s(name: &str) -> Vec<f32> {
    bytemuck::pod_collect_to_vec(&data(name))
}

/// Compares two byte strings block by block, naming the first differing block.
fn assert_same_blocks(got: &[u8], want: &[u8], block_bytes: usize, fmt: &str) {
    assert_eq!(got.len(), want.len(), "{fmt}: byte counts differ");
    for (i, (g, w)) in got
        .chunks(block_bytes)
        .zip(want.chunks(block_bytes))
        .enumerate()
    {
        assert_eq!(g, w, "{fmt}: block {i} differs from ggml's reference");
    }
}

macro_rules! quant_format_tests {
    ($($fmt:ident: $quantize:ident, $dequantize:ident, $block:ty;)*) => {$(
        mod $fmt {
            use super::*;

            #[test]
            fn quantize_is_byte_exact_with_ggml() {
                let x = f32s("input_f32.bin");
                let q = $quantize(&x).unwrap();
                let want = data(concat!(stringify!($fmt), ".bin"));
                assert_same_blocks(bytemuck::cast_slice(&q), &want, std::mem::size_of::<$block>(), stringify!($fmt));
            }

            #[test]
            fn dequantize_matches_ggml() {
                let blocks: Vec<$block> = bytemuck::pod_collect_to_vec(&data(concat!(stringify!($fmt), ".bin")));
                let got = $dequantize(&blocks);
                let want = f32s(concat!(stringify!($fmt), "_dequant_f32.bin"));
                assert_eq!(got.len(), want.len());
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(g.to_bits(), w.to_bits(), "value {i}: {g} vs {w}");
                }
            }

            #[test]
            fn partial_block_is_refused() {
                let e = $quantize(&[1.0; 33]).unwrap_err();
                assert_eq!(e, QuantError::NotBlockMultiple { len: 33, block: QK });
            }

            #[test]
            fn non_finite_input_is_refused_with_its_index() {
                for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                    let mut x = vec![0.5f32; 64];
                    x[40] = bad;
                    match $quantize(&x).unwrap_err() {
                        QuantError::NonFinite { index, .. } => assert_eq!(index, 40),
                        e => panic!("wrong error {e}"),
                    }
                }
            }

            #[test]
            fn round_trip_error_is_within_half_a_step() {
                let x = f32s("input_f32.bin");
                let y = $dequantize(&$quantize(&x).unwrap());
                for (b, (xb, yb)) in x.chunks(QK).zip(y.chunks(QK)).enumerate() {
                    let lo = xb.iter().cloned().fold(f32::MAX, f32::min);
                    let hi = xb.iter().cloned().fold(f32::MIN, f32::max);
                    let amax = lo.abs().max(hi.abs());
                    // One quantization step of the format, plus f16 rounding of the scale.
                    let step = match stringify!($fmt) {
                        "q8_0" => amax / 127.0,
                        "q4_0" => amax / 8.0,
                        _ => (hi - lo) / 15.0,
                    };
                    for (v, w) in xb.iter().zip(yb) {
                        let err = (v - w).abs();
                        // Q4_0's 16 levels span [-8d, 7d]: values beyond 7.5 steps on the side
                        // opposite the extreme are clamped to 7d, up to one whole step off.
                        let clamped = stringify!($fmt) == "q4_0" && v.abs() > 7.5 * step;
                        let bound = if clamped { step } else { 0.5 * step };
                        assert!(err <= bound + amax * 2e-3 + 1e-6,
                            "block {b}: {v} -> {w}, error {err} over half step {step}");
                    }
                }
            }
        }
    )*};
}

quant_format_tests! {
    q8_0: quantize_q8_0, dequantize_q8_0, BlockQ8_0;
    q4_0: quantize_q4_0, dequantize_q4_0, BlockQ4_0;
    q4_1: quantize_q4_1, dequantize_q4_1, BlockQ4_1;
}

#[test]
fn q4_0_nibble_order_is_ggml_s() {
    // Element j in the low nibble of byte j, element j+16 in the high nibble.
    let mut x = [0f32; 32];
    x[0] = -8.0; // the extreme: d = 1, q = 0
    x[16] = 7.0; // q = 15
    x[1] = 1.0; // q = 9
    let b = quantize_q4_0(&x).unwrap()[0];
    assert_eq!(b.d.to_f32(), 1.0);
    assert_eq!(b.qs[0], 0xF << 4); // low nibble 0 (element 0), high 15 (element 16)
    assert_eq!(b.qs[1], 9 | (8 << 4));
}

#[test]
fn decode_block_matches_the_dequantizers_bit_for_bit() {
    use wgpu_lab::formats::weights::{decode_block, decode_bytes, encode_bytes, WeightFormat};
    let x = f32s("input_f32.bin");
    for f in WeightFormat::ALL {
        let bv = f.block_values();
        let x = &x[..x.len() / bv * bv];
        let bytes = encode_bytes(f, x, bv).unwrap();
        let want = decode_bytes(f, &bytes);
        let mut block = vec![0f32; bv];
        for (b, chunk) in bytes.chunks(f.bytes_per_block()).enumerate() {
            decode_block(f, chunk, &mut block);
            for (i, v) in block.iter().enumerate() {
                assert_eq!(
                    v.to_bits(),
                    want[b * bv + i].to_bits(),
                    "{} block {b}",
                    f.name()
                );
            }
        }
    }
}

/// Q4_K, Q6_K (super-blocks of 256) and Q5_0 against ggml's own quantizer (fixtures made
/// by scripts/make_kquant_fixtures.py with scripts/ggml_quantize.c) and gguf-py's
/// dequantization.
mod kquants {
    use wgpu_lab::formats::kquant::*;
    use wgpu_lab::formats::quant::*;

    fn data(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/data/kquant/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn f32s(name: &str) -> Vec<f32> {
        bytemuck::pod_collect_to_vec(&data(name))
    }

    fn same_bits(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert_eq!(g.to_bits(), w.to_bits(), "{what} value {i}: {g} vs {w}");
        }
    }

    macro_rules! kquant_tests {
        ($($fmt:ident: $quantize:ident, $dequantize:ident, $block:ty, $bs:expr;)*) => {$(
            mod $fmt {
                use super::*;

                #[test]
                fn quantize_is_byte_exact_with_ggml() {
                    let q = $quantize(&f32s("input_f32.bin")).unwrap();
                    let want = data(concat!(stringify!($fmt), ".bin"));
                    let got: &[u8] = bytemuck::cast_slice(&q);
                    let bb = std::mem::size_of::<$block>();
                    assert_eq!(got.len(), want.len());
                    for (i, (g, w)) in got.chunks(bb).zip(want.chunks(bb)).enumerate() {
                        assert_eq!(g, w, "{}: block {i} differs from ggml's", stringify!($fmt));
                    }
                }

                #[test]
                fn dequantize_matches_gguf_py() {
                    let blocks: Vec<$block> =
                        bytemuck::pod_collect_to_vec(&data(concat!(stringify!($fmt), ".bin")));
                    let want = f32s(concat!(stringify!($fmt), "_dequant_f32.bin"));
                    same_bits(&$dequantize(&blocks), &want, stringify!($fmt));
                }

                #[test]
                fn bad_rows_are_refused() {
                    let e = $quantize(&[1.0; $bs + 16]).unwrap_err();
                    assert_eq!(e, QuantError::NotBlockMultiple { len: $bs + 16, block: $bs });
                    let mut x = vec![0.5f32; $bs];
                    x[7] = f32::NAN;
                    assert!(matches!($quantize(&x), Err(QuantError::NonFinite { index: 7, .. })));
                }
            }
        )*};
    }

    kquant_tests! {
        q4_k: quantize_q4_k, dequantize_q4_k, BlockQ4K, QK_K;
        q6_k: quantize_q6_k, dequantize_q6_k, BlockQ6K, QK_K;
        q5_0: quantize_q5_0, dequantize_q5_0, BlockQ5_0, QK;
    }

    #[test]
    fn q4_k_beats_q4_1_and_q6_k_beats_q5_0_on_gaussian_weights() {
        // The point of the K-quants: more accuracy per bit than the block formats of the
        // same width (Q4_K 4.5 bits vs Q4_1 5.0; Q6_K 6.56 vs Q5_0 5.5 and Q8_0 8.5).
        let x = f32s("input_f32.bin")[..QK_K].to_vec();
        let rms = |y: &[f32]| {
            (x.iter().zip(y).map(|(a, b)| (a - b).powi(2)).sum::<f32>() / x.len() as f32).sqrt()
        };
        let e4k = rms(&dequantize_q4_k(&quantize_q4_k(&x).unwrap()));
        let e41 = rms(&dequantize_q4_1(&quantize_q4_1(&x).unwrap()));
        let e6k = rms(&dequantize_q6_k(&quantize_q6_k(&x).unwrap()));
        let e50 = rms(&dequantize_q5_0(&quantize_q5_0(&x).unwrap()));
        assert!(e4k < e41, "q4_k {e4k} vs q4_1 {e41}");
        assert!(e6k < e50 / 2.0, "q6_k {e6k} vs q5_0 {e50}");
    }
}
