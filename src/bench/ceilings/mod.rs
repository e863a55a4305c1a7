//! The hardware's own ceilings, measured: arithmetic peaks and, for every memory level a
//! problem can stream from, the bandwidth of that level. Every benchmark row is placed on
//! the roofline of the level its working set fits in, named in the table, so that a row
//! whose data sits in a cache is not held against a DRAM bandwidth. A ceiling is a claim
//! about the conditions of the sweep, so the sweep measures them before and after and
//! holds each row to the higher of the two (see [`Ceilings::max`], [`Ceilings::disturbed`]).

pub mod cpu;
pub mod gpu;

use serde::Serialize;

/// A memory level and the bandwidth measured streaming from it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MemoryLevel {
    /// Name for tables: "L1", "L2", "L3", "DRAM", or "<= 16 MiB" where the sizes of the
    /// device's caches are unknown.
    pub name: String,
    /// Working sets up to this many bytes stream from this level (None: any size).
    pub fits_bytes: Option<u64>,
    /// Working set of the measurement (bytes read + written live at once).
    pub probe_bytes: u64,
    /// The better of a read-only stream and a copy, GB/s counting bytes moved.
    pub gbps: f64,
}

/// Measured ceilings of one device.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Ceilings {
    /// Bandwidth of the outermost level (DRAM or device memory), GB/s: the classic roof.
    pub bandwidth_gbps: f64,
    /// Every level, innermost first; the last one holds any working set.
    pub levels: Vec<MemoryLevel>,
    /// f32 FMA throughput, GFLOP/s (an FMA counts 2).
    pub f32_gflops: f64,
    /// f16 FMA throughput, GFLOP/s (None without SHADER_F16; the CPU's f16 runs in f32).
    pub f16_gflops: Option<f64>,
    /// Packed int8 dot throughput, GOP/s (a multiply-add counts 2; None where absent).
    pub int8_gops: Option<f64>,
    /// How they were measured (vector width, threads), for the report.
    pub method: String,
}

/// Two measurements of a ceiling that differ by more than this fraction of the higher mean
/// the machine's load changed during the sweep. Why 0.4: `wgpu-lab ceilings --repeat 4`
/// on the quiet 2-vCPU VM this was built on gave CPU f32 peaks of 262-320 GFLOP/s, L3
/// 23-41 GB/s and lavapipe bandwidths of 4.3-7.6 GB/s from one round to the next (up to
/// ~43% apart; one L2 probe came out at 47 against 122-132); a second job on the same
/// cores halves throughput, which this still flags. Recorded in docs/results/ceilings-lavapipe.md.
pub const DISTURBED_FRACTION: f64 = 0.4;

/// Makes every level at least as fast as the levels outside it: an inner cache is never
/// slower than the memory behind it, so a probe that came out slower (small probes pay
/// more fixed cost per byte) is raised to the outer level's figure, keeping the ceiling an
/// upper bound.
pub fn monotone(levels: &mut [MemoryLevel]) {
    let mut outer = 0.0f64;
    for l in levels.iter_mut().rev() {
        outer = outer.max(l.gbps);
        l.gbps = outer;
    }
}

/// Which arithmetic a precision's kernel uses on a device: the peak its roofline is cut at.
pub fn peak_for(c: &Ceilings, precision: &str, on_cpu: bool) -> f64 {
    let int8 = c.int8_gops.unwrap_or(c.f32_gflops);
    match precision {
        "f16acc" if !on_cpu => c.f16_gflops.unwrap_or(c.f32_gflops),
        "int8" | "int8rot" => int8,
        // The CPU's ggml-format baselines (ggml, candle) quantize activations to 8 bits and
        // multiply in integers; GPU kernels decode weights to f32 and use f32 FMAs.
        "q8_0" | "q4_0" | "q4_1" | "q5_0" | "q4_k" | "q6_k" if on_cpu => int8.max(c.f32_gflops),
        _ => c.f32_gflops,
    }
}

impl Ceilings {
    /// The level a working set of `bytes` streams from: the innermost that holds it.
    pub fn level_for(&self, bytes: f64) -> Option<&MemoryLevel> {
        self.levels
            .iter()
            .find(|l| l.fits_bytes.is_none_or(|f| bytes <= f as f64))
            .or(self.levels.last())
    }

    /// Roofline of a row: min(peak, intensity x bandwidth of its level); and the level.
    pub fn roofline(
        &self,
        precision: &str,
        on_cpu: bool,
        intensity: f64,
        working_set: f64,
    ) -> (f64, String) {
        let (bw, name) = self
            .level_for(working_set)
            .map_or((self.bandwidth_gbps, "memory".to_string()), |l| {
                (l.gbps, l.name.clone())
            });
        (peak_for(self, precision, on_cpu).min(intensity * bw), name)
    }

    /// The higher of two measurements of every ceiling (levels matched by position).
    pub fn max(&self, other: &Ceilings) -> Ceilings {
        let omax = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        Ceilings {
            bandwidth_gbps: self.bandwidth_gbps.max(other.bandwidth_gbps),
            levels: self
                .levels
                .iter()
                .zip(
                    other
                        .levels
                        .iter()
                        .chain(std::iter::repeat(&self.levels[0])),
                )
                .map(|(a, b)| MemoryLevel {
                    gbps: if a.name == b.name {
                        a.gbps.max(b.gbps)
                    } else {
                        a.gbps
                    },
                    ..a.clone()
                })
                .collect(),
            f32_gflops: self.f32_gflops.max(other.f32_gflops),
            f16_gflops: omax(self.f16_gflops, other.f16_gflops),
            int8_gops: omax(self.int8_gops, other.int8_gops),
            method: self.method.clone(),
        }
    }

    /// The ceilings whose two measurements differ by more than [`DISTURBED_FRACTION`]:
    /// "L2 bandwidth 41.0 -> 25.3 GB/s", one entry each; empty when the sweep was quiet.
    pub fn disturbed(&self, after: &Ceilings) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |what: String, a: f64, b: f64| {
            if a > 0.0 && b > 0.0 && (a - b).abs() / a.max(b) > DISTURBED_FRACTION {
                out.push(format!("{what} {a:.1} -> {b:.1}"));
            }
        };
        for (a, b) in self.levels.iter().zip(&after.levels) {
            check(format!("{} bandwidth GB/s", a.name), a.gbps, b.gbps);
        }
        check("f32 GFLOP/s".into(), self.f32_gflops, after.f32_gflops);
        if let (Some(a), Some(b)) = (self.f16_gflops, after.f16_gflops) {
            check("f16 GFLOP/s".into(), a, b);
        }
        if let (Some(a), Some(b)) = (self.int8_gops, after.int8_gops) {
            check("int8 GOP/s".into(), a, b);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(name: &str, fits: Option<u64>, gbps: f64) -> MemoryLevel {
        MemoryLevel {
            name: name.into(),
            fits_bytes: fits,
            probe_bytes: fits.unwrap_or(1 << 30) / 2,
            gbps,
        }
    }

    fn ceilings(l2: f64) -> Ceilings {
        Ceilings {
            bandwidth_gbps: 10.0,
            levels: vec![level("L2", Some(1 << 20), l2), level("DRAM", None, 10.0)],
            f32_gflops: 100.0,
            f16_gflops: None,
            int8_gops: Some(400.0),
            method: String::new(),
        }
    }

    #[test]
    fn rows_are_placed_on_the_level_they_fit() {
        let c = ceilings(50.0);
        assert_eq!(c.roofline("f32", false, 1.0, 1000.0), (50.0, "L2".into()));
        assert_eq!(c.roofline("f32", false, 1.0, 4e6), (10.0, "DRAM".into()));
        assert_eq!(c.roofline("f32", false, 1e3, 4e6).0, 100.0);
        assert_eq!(c.roofline("int8", false, 1e3, 4e6).0, 400.0);
        assert_eq!(c.roofline("q4_0", true, 1e3, 4e6).0, 400.0);
        assert_eq!(c.roofline("q4_0", false, 1e3, 4e6).0, 100.0);
    }

    #[test]
    fn max_and_disturbed_compare_two_measurements() {
        let (a, b) = (ceilings(50.0), ceilings(25.0));
        assert_eq!(a.max(&b).levels[0].gbps, 50.0);
        assert_eq!(b.max(&a).levels[0].gbps, 50.0);
        assert_eq!(a.disturbed(&b).len(), 1);
        assert!(a.disturbed(&ceilings(48.0)).is_empty());
    }
}
