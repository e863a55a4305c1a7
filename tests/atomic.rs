//! Files are written atomically and the tune cache is merged under a lock: a failed or
//! killed writer leaves the previous file whole, and two `tune` runs at once both keep their
//! entries (and an unrelated adapter's).

mod common;

use std::time::Duration;

use wgpu_lab::bench::tune::{self, TuneCache};
use wgpu_lab::kernels::matmul_wq::{WqKernel, WqVariant};

/// Temporary files left beside `dir`'s files by an atomic write.
fn temporaries(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

#[test]
fn a_failed_write_leaves_the_old_file_and_no_temporary() {
    let dir = common::tmp("atomic-fail");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("out.json");
    std::fs::write(&path, "old").unwrap();
    let e = wgpu_lab::atomic::write_with(&path, |w| {
        use std::io::Write;
        w.write_all(&[b'x'; 1 << 20])?;
        Err(std::io::Error::other("the writer failed half-way"))
    });
    assert!(e.is_err());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
    assert!(temporaries(&dir).is_empty(), "{:?}", temporaries(&dir));
    wgpu_lab::atomic::write(&path, "new").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
    assert!(temporaries(&dir).is_empty());
}

#[test]
fn a_killed_writer_leaves_the_old_file_whole() {
    // `quantize` writes a 64 MiB GGUF; killed at several points of its run, the output is
    // always the old file or the whole new one, never a part.
    let dir = common::tmp("atomic-kill");
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("big.npy");
    let data: Vec<f32> = (0..16 << 20).map(|i| (i % 251) as f32).collect();
    wgpu_lab::npy::write_array(&input, &[4096, 4096], &data).unwrap();
    let out = dir.join("big.gguf");
    for delay_ms in [30, 80, 150, 300, 600] {
        std::fs::write(&out, "old").unwrap();
        let mut child = common::bin()
            .args(["quantize", "--format", "f32"])
            .arg(&input)
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        child.wait().unwrap();
        let bytes = std::fs::read(&out).unwrap();
        eprintln!(
            "killed after {delay_ms} ms: {}",
            if bytes == b"old" {
                "the old file"
            } else {
                "the new file"
            }
        );
        if bytes != b"old" {
            let g = wgpu_lab::formats::gguf::Gguf::open(&out).expect("a whole GGUF");
            assert_eq!(g.tensors.len(), 1, "killed after {delay_ms} ms");
            assert!(bytes.len() > 64 << 20, "killed after {delay_ms} ms");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_tune_cache_merges_what_is_on_disk_under_its_lock() {
    let path = common::tmp("merge/tune.json");
    let _ = std::fs::remove_file(&path);
    let v = |tm| {
        WqVariant::Regblock(WqKernel {
            wg_x: 16,
            tm,
            tn: 4,
        })
    };
    // Two writers that each loaded the cache before the other wrote: both entries stay.
    let a = tune::Tuned::from([("q8_0/gemm".to_string(), v(2))]);
    let b = tune::Tuned::from([("q4_0/gemm".to_string(), v(6))]);
    TuneCache::update(&path, "gpu A", &a, true).unwrap();
    TuneCache::update(&path, "gpu A", &b, false).unwrap();
    TuneCache::update(&path, "gpu B", &a, false).unwrap();
    let c = TuneCache::load(&path);
    assert_eq!(c.adapters["gpu A"].len(), 2);
    assert_eq!(c.adapters["gpu B"].len(), 1);
    assert!(c.autotuned["gpu A"].contains("q8_0/gemm"));
    assert!(!c.autotuned["gpu A"].contains("q4_0/gemm"));
    assert!(!c.autotuned.contains_key("gpu B"));
    // `tune` finding the same key later clears its autotuned mark.
    TuneCache::update(&path, "gpu A", &a, false).unwrap();
    assert!(!TuneCache::load(&path).autotuned.contains_key("gpu A"));
}

#[test]
fn two_concurrent_tune_runs_both_keep_their_entries() {
    if common::ctx().is_none() {
        return;
    }
    let path = common::tmp("concurrent/tune.json");
    let _ = std::fs::remove_file(&path);
    // An entry of another adapter, already there.
    let other = tune::Tuned::from([(
        "f16/gemm".to_string(),
        WqVariant::Regblock(WqKernel::default_for(4)),
    )]);
    TuneCache::update(&path, "another adapter", &other, false).unwrap();
    let spawn = |p: &str| {
        common::bin()
            .args(["tune", "--precision", p, "--repeat", "1"])
            .args([
                "--gemm-problem",
                "4,32,32",
                "--gemv-problem",
                "32,32",
                "--tune-cache",
            ])
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("q8_0"), spawn("q4_0"));
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let c = TuneCache::load(&path);
    assert!(c.adapters["another adapter"].contains_key("f16/gemm"));
    let ours: Vec<&String> = c
        .adapters
        .iter()
        .filter(|(k, _)| *k != "another adapter")
        .flat_map(|(_, t)| t.keys())
        .collect();
    for key in ["q8_0/gemm", "q8_0/gemv", "q4_0/gemm", "q4_0/gemv"] {
        assert!(ours.iter().any(|k| *k == key), "{key} missing: {ours:?}");
    }
}
