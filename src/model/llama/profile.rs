//! Where a decode step's time goes: each dispatch of the step timed on its own (GPU
//! timestamps, `gpu::timing::time_each`) and summed per stage of the forward, with the
//! weight bytes each linear stage reads, so a stage's time is also a bandwidth; and the
//! time between dispatches (the step's span less its dispatches: barriers, pass
//! boundaries). This is how the decoder's limits are found: a linear far under the
//! adapter's read bandwidth is bound by its kernel, a small stage that takes time is bound
//! by dispatch cost, a large gap by the number of dispatches.

use serde::Serialize;

/// What a dispatch of the forward computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Residual add + RMSNorm (two per layer, and the final one).
    Norm,
    /// The fused Q|K|V linear (one dispatch per run of one weight format).
    Qkv,
    /// RoPE on Q and K, and the KV cache store.
    Rope,
    /// Causal attention over the cache.
    Attention,
    /// The attention output linear.
    AttnOut,
    /// The fused gate|up linear.
    GateUp,
    /// SiLU(gate) * up.
    SiluMul,
    /// The FFN down linear.
    Down,
    /// The output projection to the vocabulary.
    Output,
    /// The argmax of the logits (greedy decoding).
    Argmax,
    /// W8A8: the activations quantized to int8 before a product.
    Quantize,
}

impl Stage {
    /// Every stage, in the order of a layer.
    pub const ALL: [Stage; 11] = [
        Stage::Norm,
        Stage::Qkv,
        Stage::Rope,
        Stage::Attention,
        Stage::AttnOut,
        Stage::GateUp,
        Stage::SiluMul,
        Stage::Down,
        Stage::Output,
        Stage::Argmax,
        Stage::Quantize,
    ];

    /// The name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Norm => "add+rmsnorm",
            Stage::Qkv => "qkv",
            Stage::Rope => "rope+kv store",
            Stage::Attention => "attention",
            Stage::AttnOut => "attn out",
            Stage::GateUp => "gate|up",
            Stage::SiluMul => "silu*up",
            Stage::Down => "down",
            Stage::Output => "output",
            Stage::Argmax => "argmax",
            Stage::Quantize => "quantize (w8a8)",
        }
    }
}

/// One stage's share of the profiled steps.
#[derive(Debug, Clone, Serialize)]
pub struct StageTime {
    /// The stage.
    pub stage: Stage,
    /// Its dispatches per step.
    pub dispatches: usize,
    /// GPU ms per step (mean over the profiled steps).
    pub ms: f64,
    /// Weight bytes it reads per step (linears; 0 for the rest).
    pub weight_bytes: u64,
}

impl StageTime {
    /// Weight bytes read per second, GB/s (None for stages that read no weights).
    pub fn gb_s(&self) -> Option<f64> {
        gb_s(self.weight_bytes, self.ms)
    }
}

/// `bytes` read in `ms`, GB/s (None when nothing was read or no time measured).
pub fn gb_s(bytes: u64, ms: f64) -> Option<f64> {
    (bytes > 0 && ms > 0.0).then(|| bytes as f64 / ms / 1e6)
}

/// Per-stage GPU time summed over the decode steps profiled so far.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    steps: usize,
    /// The steps' spans less their dispatches, summed, ms.
    between: f64,
    /// (stage, dispatches per step, ms summed over steps, weight bytes per step).
    totals: Vec<(Stage, usize, f64, u64)>,
}

impl Profile {
    /// Adds one step: each dispatch's stage, GPU ms and weight bytes, in order, and the
    /// step's span (first start to last end), ms.
    pub fn add_step(&mut self, dispatches: &[(Stage, f64, u64)], span: f64) {
        let first = self.steps == 0;
        self.steps += 1;
        let busy: f64 = dispatches.iter().map(|d| d.1).sum();
        self.between += (span - busy).max(0.0);
        for &(stage, ms, bytes) in dispatches {
            match self.totals.iter_mut().find(|t| t.0 == stage) {
                Some(t) => {
                    t.2 += ms;
                    if first {
                        t.1 += 1;
                        t.3 += bytes;
                    }
                }
                None => self.totals.push((stage, 1, ms, bytes)),
            }
        }
    }

    /// Steps profiled.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// GPU ms per step between dispatches (mean over the profiled steps).
    pub fn between_ms(&self) -> f64 {
        self.between / self.steps.max(1) as f64
    }

    /// Each stage's time per step, in the order of `Stage::ALL` (stages that never ran are
    /// left out).
    pub fn stages(&self) -> Vec<StageTime> {
        Stage::ALL
            .iter()
            .filter_map(|s| self.totals.iter().find(|t| t.0 == *s))
            .map(|&(stage, dispatches, ms, weight_bytes)| StageTime {
                stage,
                dispatches,
                ms: ms / self.steps.max(1) as f64,
                weight_bytes,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_average_over_steps_and_count_dispatches_once() {
        let mut p = Profile::default();
        let step = [
            (Stage::Norm, 0.25, 0),
            (Stage::Qkv, 1.0, 4_000_000),
            (Stage::Norm, 0.25, 0),
        ];
        p.add_step(&step, 2.0);
        p.add_step(&step.map(|(s, ms, b)| (s, ms * 3.0, b)), 5.0);
        let s = p.stages();
        assert_eq!(p.steps(), 2);
        // Spans 2 and 5 ms over dispatches of 1.5 and 4.5 ms.
        assert!((p.between_ms() - 0.5).abs() < 1e-12, "{}", p.between_ms());
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].stage, s[0].dispatches), (Stage::Norm, 2));
        assert!((s[0].ms - 1.0).abs() < 1e-12, "{}", s[0].ms);
        assert_eq!((s[1].stage, s[1].weight_bytes), (Stage::Qkv, 4_000_000));
        assert!((s[1].gb_s().unwrap() - 2.0).abs() < 1e-12);
        assert_eq!(s[0].gb_s(), None);
    }
}
