//! The CPU's ceilings, measured on every core: FMA throughput at the widest vector width the
//! CPU has (AVX-512, AVX2+FMA, else 128-bit), packed int8 multiply-add throughput
//! (AVX-512 VNNI, or AVX2 `maddubs`), and the bandwidth of each cache level and of DRAM,
//! each the better of a read-only stream and a copy. Cache sizes come from sysfs.

use std::sync::Barrier;
use std::time::Instant;

use super::{Ceilings, MemoryLevel};

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |t| t.get())
}

/// Best wall time (s) over `runs` of `work(thread)` on every core at once, each run started
/// together behind a barrier; per-thread setup before the barrier is not timed.
fn best_parallel<S: Send>(
    runs: usize,
    setup: impl Fn(usize) -> S + Sync,
    work: impl Fn(&mut S) + Sync,
) -> f64 {
    let t = threads();
    let barrier = Barrier::new(t);
    let times: Vec<Vec<f64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..t)
            .map(|i| {
                let (setup, work, barrier) = (&setup, &work, &barrier);
                s.spawn(move || {
                    let mut state = setup(i);
                    work(&mut state); // warm-up: page faults, caches, frequency
                    (0..runs)
                        .map(|_| {
                            barrier.wait();
                            let start = Instant::now();
                            work(&mut state);
                            let e = start.elapsed().as_secs_f64();
                            barrier.wait();
                            e
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a ceiling thread panicked"))
            .collect()
    });
    // A run lasts as long as its slowest thread.
    (0..runs)
        .map(|r| times.iter().map(|t| t[r]).fold(0.0, f64::max))
        .fold(f64::MAX, f64::min)
}

/// The data caches from sysfs: (level, bytes per instance, threads sharing an instance).
fn caches() -> Vec<(u32, u64, usize)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/sys/devices/system/cpu/cpu0/cache") else {
        return out;
    };
    for e in dir.flatten() {
        let read = |f: &str| std::fs::read_to_string(e.path().join(f)).unwrap_or_default();
        if !e.file_name().to_string_lossy().starts_with("index")
            || read("type").trim() == "Instruction"
        {
            continue;
        }
        let size = read("size");
        let size = size.trim();
        let bytes = match size.strip_suffix('K') {
            Some(k) => k.parse::<u64>().ok().map(|k| k << 10),
            None => size
                .strip_suffix('M')
                .and_then(|m| m.parse::<u64>().ok())
                .map(|m| m << 20),
        };
        let sharing = read("shared_cpu_list")
            .trim()
            .split(',')
            .map(|part| match part.split_once('-') {
                Some((a, b)) => {
                    b.parse::<usize>().unwrap_or(0) + 1 - a.parse::<usize>().unwrap_or(0)
                }
                None => 1,
            })
            .sum::<usize>()
            .max(1);
        if let (Ok(level), Some(bytes)) = (read("level").trim().parse(), bytes) {
            out.push((level, bytes, sharing));
        }
    }
    out.sort();
    out
}

/// Bytes moved per second by `threads()` threads each streaming over its own `per_thread`
/// bytes: the better of reading them (summing) and copying half of them into the other half.
fn stream_gbps(per_thread: usize) -> f64 {
    let words = (per_thread / 4).max(64) / 64 * 64;
    // Enough passes that a run moves >= 256 MiB per thread (milliseconds even from L1), so
    // that a thread's late wake-up or a timer tick is a small part of it.
    let passes = ((256usize << 20) / (words * 4)).max(1);
    // Fewer runs for probes far outside the caches: each already lasts tens of ms.
    let runs = if per_thread > 64 << 20 { 3 } else { 7 };
    let read_s = best_parallel(
        runs,
        |i| vec![i as f32 + 1.0; words],
        |v: &mut Vec<f32>| {
            for _ in 0..passes {
                std::hint::black_box(sum(v));
            }
        },
    );
    let half = words / 2;
    let copy_s = best_parallel(
        runs,
        |i| vec![i as f32 + 1.0; 2 * half],
        |v: &mut Vec<f32>| {
            for _ in 0..passes {
                let (src, dst) = v.split_at_mut(half);
                dst.copy_from_slice(src);
                std::hint::black_box(&dst);
            }
        },
    );
    let bytes = (threads() * passes * words * 4) as f64;
    (bytes / read_s).max(bytes / copy_s) / 1e9
}

/// Sum of a slice with 16 independent lanes, so it streams at load bandwidth.
fn sum(v: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    for c in v.chunks_exact(16) {
        for i in 0..16 {
            acc[i] += c[i];
        }
    }
    acc.iter().sum()
}

/// The levels: each data cache (aggregate capacity over the cores in use, probed at half
/// of it), then DRAM (probed at twice the last cache, at least 256 MiB).
fn levels() -> Vec<MemoryLevel> {
    let t = threads();
    let mut levels = Vec::new();
    let mut last = 0u64;
    for (level, bytes, sharing) in caches() {
        let capacity = bytes * t.div_ceil(sharing) as u64;
        let probe = capacity / 2;
        levels.push(MemoryLevel {
            name: format!("L{level}"),
            fits_bytes: Some(capacity),
            probe_bytes: probe,
            gbps: stream_gbps(probe as usize / t),
        });
        last = capacity;
    }
    let probe = (2 * last).max(256 << 20);
    levels.push(MemoryLevel {
        name: "DRAM".into(),
        fits_bytes: None,
        probe_bytes: probe,
        gbps: stream_gbps(probe as usize / t),
    });
    super::monotone(&mut levels);
    levels
}

/// Measures the CPU's ceilings (about a second).
pub fn measure() -> Ceilings {
    let t = threads();
    let (width, lanes, fma) = fma_kernel();
    // Short runs, many of them: this VM's throughput drifts over seconds, and the best of
    // many ~10 ms runs finds the peak where a few long ones average the drift in.
    let iters: u64 = 4_000_000;
    let secs = best_parallel(
        9,
        |i| i as f32,
        |seed: &mut f32| {
            *seed = std::hint::black_box(fma(iters, *seed));
        },
    );
    let f32_gflops = t as f64 * iters as f64 * CHAINS as f64 * lanes as f64 * 2.0 / secs / 1e9;
    let int8_gops = int8_kernel().map(|(name, macs, dot)| {
        let secs = best_parallel(
            9,
            |i| i as i32,
            |seed: &mut i32| {
                *seed = std::hint::black_box(dot(iters, *seed));
            },
        );
        (
            t as f64 * iters as f64 * CHAINS as f64 * macs as f64 * 2.0 / secs / 1e9,
            name,
        )
    });
    let levels = levels();
    Ceilings {
        bandwidth_gbps: levels.last().map_or(0.0, |l| l.gbps),
        levels,
        f32_gflops,
        f16_gflops: None,
        int8_gops: int8_gops.map(|g| g.0),
        method: format!(
            "{width} FMA{} on {t} threads; read/copy streams per cache level (sysfs sizes)",
            int8_gops.map_or(String::new(), |g| format!(", {} int8", g.1)),
        ),
    }
}

/// Independent accumulator chains per loop round: enough to cover FMA latency x ports.
const CHAINS: usize = 12;

type FmaLoop = fn(u64, f32) -> f32;
type DotLoop = fn(u64, i32) -> i32;

/// The widest FMA loop this CPU runs: (name, f32 lanes, loop).
fn fma_kernel() -> (&'static str, usize, FmaLoop) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY (both): called only where the feature was detected just above.
            return ("AVX-512", 16, |n, s| unsafe { x86::fma_avx512(n, s) });
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return ("AVX2", 8, |n, s| unsafe { x86::fma_avx2(n, s) });
        }
    }
    ("128-bit portable", 4, fma_portable)
}

/// The widest packed int8 multiply-add loop: (name, multiply-adds per chain step, loop).
fn int8_kernel() -> Option<(&'static str, usize, DotLoop)> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512vnni") {
            // SAFETY (both): called only where the feature was detected just above.
            return Some(("AVX-512 VNNI", 64, |n, s| unsafe { x86::dot_vnni512(n, s) }));
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return Some(("AVX2", 32, |n, s| unsafe { x86::dot_avx2(n, s) }));
        }
    }
    None
}

fn fma_portable(iters: u64, seed: f32) -> f32 {
    let mut acc = [[seed; 4]; CHAINS];
    for _ in 0..iters {
        for a in acc.iter_mut() {
            for v in a.iter_mut() {
                *v = v.mul_add(0.999, 0.001);
            }
        }
    }
    acc.iter().flatten().sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::CHAINS;

    #[target_feature(enable = "avx512f")]
    pub unsafe fn fma_avx512(iters: u64, seed: f32) -> f32 {
        let (m, c) = (_mm512_set1_ps(0.999), _mm512_set1_ps(0.001));
        let mut a = [_mm512_set1_ps(seed); CHAINS];
        for _ in 0..iters {
            for v in a.iter_mut() {
                *v = _mm512_fmadd_ps(*v, m, c);
            }
        }
        a.iter().map(|v| _mm512_reduce_add_ps(*v)).sum()
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn fma_avx2(iters: u64, seed: f32) -> f32 {
        let (m, c) = (_mm256_set1_ps(0.999), _mm256_set1_ps(0.001));
        let mut a = [_mm256_set1_ps(seed); CHAINS];
        for _ in 0..iters {
            for v in a.iter_mut() {
                *v = _mm256_fmadd_ps(*v, m, c);
            }
        }
        let mut out = [0f32; 8];
        let mut s = a[0];
        for v in &a[1..] {
            s = _mm256_add_ps(s, *v);
        }
        _mm256_storeu_ps(out.as_mut_ptr(), s);
        out.iter().sum()
    }

    /// vpdpbusd: 64 u8 x i8 multiply-adds into 16 i32 lanes per instruction.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub unsafe fn dot_vnni512(iters: u64, seed: i32) -> i32 {
        let (x, y) = (_mm512_set1_epi8(3), _mm512_set1_epi8(-2));
        let mut a = [_mm512_set1_epi32(seed); CHAINS];
        for _ in 0..iters {
            for v in a.iter_mut() {
                *v = _mm512_dpbusd_epi32(*v, x, y);
            }
        }
        a.iter()
            .map(|v| _mm512_reduce_add_epi32(*v))
            .fold(0, i32::wrapping_add)
    }

    /// vpmaddubsw + vpmaddwd + vpaddd: 32 u8 x i8 multiply-adds into 8 i32 lanes. The
    /// accumulator feeds the next multiply, so nothing can be hoisted out of the loop.
    #[target_feature(enable = "avx2")]
    pub unsafe fn dot_avx2(iters: u64, seed: i32) -> i32 {
        let (y, ones) = (_mm256_set1_epi8(1), _mm256_set1_epi16(1));
        let mut a = [_mm256_set1_epi32(seed); CHAINS];
        for _ in 0..iters {
            for v in a.iter_mut() {
                let p = _mm256_madd_epi16(_mm256_maddubs_epi16(*v, y), ones);
                *v = _mm256_add_epi32(*v, p);
            }
        }
        let mut out = [0i32; 8];
        let mut s = a[0];
        for v in &a[1..] {
            s = _mm256_add_epi32(s, *v);
        }
        _mm256_storeu_si256(out.as_mut_ptr().cast(), s);
        out.iter().fold(0, |x, y| x.wrapping_add(*y))
    }
}
