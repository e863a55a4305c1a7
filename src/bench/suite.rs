//! `wgpu-lab bench`: sweeps GEMM (and GEMV) over sizes x precisions on one or more adapters,
//! every row validated, with the CPU baseline in the same run and each row placed on its
//! device's measured roofline.

use std::path::PathBuf;

use serde::Serialize;

use crate::bench::ceilings::{self, Ceilings};
use crate::bench::infer::{self, InferRequest, InferRow};
use crate::bench::infer_prune::EncoderPruneRow;
use crate::bench::llm_prune::PruneRow;
use crate::bench::matmul::MatmulRow;
use crate::bench::precision::{self, PrecisionRequest};
use crate::bench::sparse::{self as bench_sparse, SparseRequest};
use crate::error::Result;
use crate::formats::precision::Precision;
use crate::gpu::measure::Runs;
use crate::gpu::Context;
use crate::kernels::matmul_wq::is_gemv_name;

/// What to sweep.
#[derive(Debug, Clone)]
pub struct SuiteRequest {
    /// Square GEMM sizes (m = n = k); GEMV uses n = k = size.
    pub sizes: Vec<usize>,
    /// Precisions.
    pub precisions: Vec<Precision>,
    /// Add the GEMV (m = 1) sweep.
    pub gemv: bool,
    /// Add a model's rows: all-MiniLM-L6-v2's infer rows from a folder, or a llama GGUF
    /// file's llm-bench rows (see [`is_llm_model`]).
    pub model: Option<PathBuf>,
    /// Warm-up and timed runs per row.
    pub runs: Runs,
    /// Tuned kernel configurations (from `wgpu-lab tune`), used where they exist.
    pub tune: crate::bench::tune::TuneCache,
    /// Weight sparsity rows (issue 23): each problem's weights pruned to each pattern and
    /// run by the sparse kernels, and with `model`, the pruned model's rows. None: dense only.
    pub sparse: Option<SparseRequest>,
}

impl SuiteRequest {
    /// The `--quick` sweep: finishes in under two minutes on the 2-core software adapter.
    pub fn quick() -> Self {
        Self {
            sizes: vec![256, 512],
            precisions: Precision::parse_list("f32,f16,int8,q8_0,q4_0").expect("valid names"),
            gemv: true,
            model: None,
            runs: Runs {
                warmup: 1,
                repeat: 3,
            },
            tune: Default::default(),
            sparse: None,
        }
    }
}

/// An adapter and its ceilings.
#[derive(Debug, Clone, Serialize)]
pub struct AdapterReport {
    /// Adapter name.
    pub name: String,
    /// Backend.
    pub backend: String,
    /// Driver.
    pub driver: String,
    /// The ceilings rows are held to: the higher of the two measurements.
    pub ceilings: Ceilings,
    /// Measured before the adapter's rows.
    pub ceilings_before: Ceilings,
    /// Measured again after them (None when that failed, e.g. the device was lost).
    pub ceilings_after: Option<Ceilings>,
    /// Ceilings whose two measurements differ by more than the noise: the machine's load
    /// changed during the sweep, and its rows are suspect. Empty when quiet.
    pub disturbed: Vec<String>,
}

/// One row of the sweep (a GPU kernel, or the CPU baseline with `adapter` = "cpu").
#[derive(Debug, Clone, Serialize)]
pub struct SuiteRow {
    /// Adapter name, or "cpu".
    pub adapter: String,
    /// Backend (vulkan, metal, dx12, gl), or "cpu".
    pub backend: String,
    /// Precision.
    pub precision: String,
    /// Kernel.
    pub kernel: String,
    /// Rows of the activations.
    pub m: usize,
    /// Outputs per row.
    pub n: usize,
    /// Inner dimension.
    pub k: usize,
    /// Median time, ms.
    pub gpu_ms_median: f64,
    /// Throughput (GOP/s for int8).
    pub gflops: f64,
    /// Weight bytes per second.
    pub gbps: Option<f64>,
    /// FLOP per byte of compulsory traffic (activations + weights + output).
    pub intensity: f64,
    /// Compulsory bytes (activations + weights + output): the working set.
    pub working_set_bytes: f64,
    /// The memory level that working set streams from (L2, L3, DRAM, ...).
    pub memory_level: String,
    /// min(peak of this precision, intensity x bandwidth of that level), measured.
    pub roofline_gflops: f64,
    /// gflops / roofline_gflops.
    pub fraction_of_roofline: f64,
    /// CPU baseline on the same inputs, ms.
    pub cpu_ms: Option<f64>,
    /// cpu_ms / gpu_ms_median.
    pub speedup_vs_cpu: Option<f64>,
    /// Kernel error (relative Frobenius) against its reference.
    pub rel_err: f64,
    /// Validation passed.
    pub passed: bool,
    /// The kernel configuration used.
    pub tuned: String,
    /// Why the row did not run, if it did not.
    pub skipped: Option<String>,
    /// Bytes of weights as stored on the device (compressed for N:M rows).
    pub weight_bytes: Option<u64>,
    /// The weights' sparsity (`dense`, `2:4`, `u50`...) in a sweep with `--sparsity`.
    pub sparsity: Option<String>,
    /// The pruning method of a sparse row.
    pub prune: Option<String>,
    /// The fastest dense row of the same precision and problem / this row's time.
    pub speedup_vs_dense: Option<f64>,
}

/// Everything one `bench` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    /// Adapters and their ceilings.
    pub adapters: Vec<AdapterReport>,
    /// The CPU's ceilings the CPU rows are held to: the higher of the two measurements.
    pub cpu: Ceilings,
    /// The CPU's ceilings before the sweep.
    pub cpu_before: Ceilings,
    /// The CPU's ceilings after the sweep.
    pub cpu_after: Ceilings,
    /// CPU ceilings that moved by more than the noise during the sweep.
    pub cpu_disturbed: Vec<String>,
    /// GPU and CPU rows.
    pub rows: Vec<SuiteRow>,
    /// Model rows (with `--model` naming a sentence-encoder folder).
    pub model: Vec<InferRow>,
    /// One llm-bench report per adapter (with `--model` naming a llama GGUF).
    pub llm: Vec<crate::bench::llm::LlmReport>,
    /// One pruned-decoder report per adapter (a llama GGUF `--model` with `--sparsity`).
    pub llm_prune: Vec<LlmPruneReport>,
    /// The pruned encoder's rows per adapter (a sentence-encoder `--model` with `--sparsity`).
    pub encoder_prune: Vec<EncoderPruneReport>,
}

/// `llm-bench --sparsity`'s rows for one adapter, over the suite's text tokens.
#[derive(Debug, Clone, Serialize)]
pub struct LlmPruneReport {
    /// Adapter the GPU columns ran on.
    pub adapter: String,
    /// The GGUF file.
    pub model: String,
    /// Text tokens the perplexities are over.
    pub text_tokens: usize,
    /// Calibration tokens (Wanda, SparseGPT).
    pub calibration_tokens: usize,
    /// A dense row per precision, then one per pattern.
    pub rows: Vec<PruneRow>,
}

/// `infer --sparsity`'s rows for one adapter.
#[derive(Debug, Clone, Serialize)]
pub struct EncoderPruneReport {
    /// Adapter the GPU columns ran on.
    pub adapter: String,
    /// The model folder.
    pub model: String,
    /// A dense row per precision, then one per pattern.
    pub rows: Vec<EncoderPruneRow>,
}

/// Whether `--model` names a llama GGUF file (decoder rows) rather than a folder.
pub fn is_llm_model(path: &std::path::Path) -> bool {
    path.is_file() || path.extension().is_some_and(|e| e == "gguf")
}

/// Tokens of the committed passage the suite's decoder rows are evaluated on (the whole
/// passage is `llm-bench`'s job: minutes per precision on lavapipe).
pub const LLM_TEXT_TOKENS: usize = 128;

/// The suite's decoder rows: the file's own tensors, then each of the suite's precisions
/// the decoder runs at (the others are named in a note row).
fn llm_report(
    ctx: &Context,
    path: &std::path::Path,
    req: &SuiteRequest,
) -> Result<crate::bench::llm::LlmReport> {
    use crate::bench::llm::{self, LlmBenchRequest};
    use crate::formats::llama::{LlamaWeights, LlmPrecision};
    let file = LlamaWeights::load(path)?;
    let tok = crate::model::llama::tokenize::LlamaTokenizer::new(&file.vocab)?;
    let mut text = tok.encode(llm::DEFAULT_TEXT)?;
    text.truncate(LLM_TEXT_TOKENS);
    let precisions = std::iter::once(LlmPrecision::Native)
        // The suite's precisions the decoder runs at (every weight format and int8rot).
        .chain(req.precisions.iter().filter_map(|p| {
            LlmPrecision::parse_list(p.name())
                .ok()
                .and_then(|v| v.into_iter().next())
        }))
        .collect();
    let lreq = LlmBenchRequest {
        precisions,
        pp: 32,
        tg: 16,
        repeat: req.runs.repeat,
        text,
        cpu: true,
        quantizer: crate::formats::quant_search::Quantizer::Reference,
        kv: crate::formats::llama::KvPrecision::F32,
        ceiling: true,
        tuned: req.tune.for_adapter(ctx),
        write_gguf: None,
    };
    llm::run(ctx, &file, &lreq)
}

/// The suite's precisions that are plain weight formats: the ones a pruned model is stored at.
fn weight_formats(req: &SuiteRequest) -> Vec<crate::formats::weights::WeightFormat> {
    req.precisions
        .iter()
        .filter_map(|p| match p {
            Precision::Weights(f) => Some(*f),
            _ => None,
        })
        .collect()
}

/// The pruned decoder's rows (`llm-bench --sparsity`, over the suite's text tokens, pp32 / tg16).
fn llm_prune_report(
    ctx: &Context,
    path: &std::path::Path,
    req: &SuiteRequest,
    sreq: &SparseRequest,
) -> Result<LlmPruneReport> {
    use crate::bench::llm::{SpeedRuns, DEFAULT_TEXT};
    use crate::bench::llm_prune::{self, PruneGpu, PruneRequest};
    use crate::formats::llama::LlamaWeights;
    let file = LlamaWeights::load(path)?;
    let tok = crate::model::llama::tokenize::LlamaTokenizer::new(&file.vocab)?;
    let mut text = tok.encode(DEFAULT_TEXT)?;
    text.truncate(LLM_TEXT_TOKENS);
    let preq = PruneRequest {
        precisions: weight_formats(req),
        sparsity: sreq.sparsity.clone(),
        methods: vec![sreq.method],
        text,
        calibration: tok.encode(crate::model::llama::calibrate::CALIBRATION_TEXT)?,
        gpu: Some(PruneGpu {
            runs: SpeedRuns {
                pp: 32,
                tg: 16,
                repeat: req.runs.repeat,
            },
            tuned: req.tune.for_adapter(ctx),
            accuracy: true,
        }),
    };
    let rows = llm_prune::run(Some(ctx), &file, &preq, &mut |_| {})?;
    Ok(LlmPruneReport {
        adapter: ctx.summary.name.clone(),
        model: path.display().to_string(),
        text_tokens: preq.text.len(),
        calibration_tokens: preq.calibration.len(),
        rows,
    })
}

/// The pruned encoder's rows (`infer --sparsity`).
fn encoder_prune_report(
    ctx: &Context,
    dir: &std::path::Path,
    req: &SuiteRequest,
    sreq: &SparseRequest,
) -> Result<EncoderPruneReport> {
    use crate::bench::infer_prune::{self, EncoderGpu};
    use crate::formats::bert::BertWeights;
    let w = BertWeights::load(dir)?;
    let tok =
        crate::model::bert::tokenize::Tokenizer::from_dir(dir, w.config.max_position_embeddings)?;
    let tuned = req.tune.for_adapter(ctx);
    let gpu = EncoderGpu {
        ctx,
        tuned: &tuned,
        repeat: req.runs.repeat,
    };
    let rows = infer_prune::run(
        Some(&gpu),
        &w,
        &tok,
        &weight_formats(req),
        &sreq.sparsity,
        &[sreq.method],
    )?;
    Ok(EncoderPruneReport {
        adapter: ctx.summary.name.clone(),
        model: dir.display().to_string(),
        rows,
    })
}

impl SuiteReport {
    /// True when every row that ran passed validation.
    pub fn all_passed(&self) -> bool {
        self.rows.iter().all(|r| r.skipped.is_some() || r.passed)
            && self
                .llm
                .iter()
                .flat_map(|l| &l.rows)
                .all(|r| r.skipped.is_some() || r.passed)
    }

    /// Every ceiling that moved during the sweep, by device; empty for a quiet sweep.
    pub fn disturbed(&self) -> Vec<String> {
        let cpu = self.cpu_disturbed.iter().map(|d| format!("cpu: {d}"));
        let gpus = self.adapters.iter().flat_map(|a| {
            a.disturbed
                .iter()
                .map(move |d| format!("{} ({}): {d}", a.name, a.backend))
        });
        cpu.chain(gpus).collect()
    }

    /// Places every row on the roofline of its device's final ceilings.
    fn place_all(&mut self) {
        for r in &mut self.rows {
            let c = if r.adapter == "cpu" {
                Some(&self.cpu)
            } else {
                self.adapters
                    .iter()
                    .find(|a| a.name == r.adapter && a.backend == r.backend)
                    .map(|a| &a.ceilings)
            };
            if let Some(c) = c {
                place(r, c);
            }
        }
    }
}

/// Bytes a GEMM must move at least once: activations, weights, output.
fn compulsory_bytes(r: &MatmulRow) -> f64 {
    let act = if r.precision == "int8" { 1.0 } else { 4.0 };
    r.m as f64 * r.k as f64 * act
        + r.weight_bytes.unwrap_or((r.n * r.k * 4) as u64) as f64
        + r.m as f64 * r.n as f64 * 4.0
}

/// Fills a row's memory level, roofline and fraction of it from `c` (nothing when `c` was
/// never measured: no levels).
fn place(r: &mut SuiteRow, c: &Ceilings) {
    if r.skipped.is_some() || !r.intensity.is_finite() || c.levels.is_empty() {
        return;
    }
    let (roof, level) = c.roofline(
        &r.precision,
        r.adapter == "cpu",
        r.intensity,
        r.working_set_bytes,
    );
    r.roofline_gflops = roof;
    r.memory_level = level;
    r.fraction_of_roofline = r.gflops / roof;
}

/// A GPU row of the sweep from a benchmark row, placed on `c`'s roofline.
pub(crate) fn suite_row(r: &MatmulRow, c: &Ceilings) -> SuiteRow {
    let bytes = compulsory_bytes(r);
    let intensity = 2.0 * r.m as f64 * r.n as f64 * r.k as f64 / bytes;
    let mut row = SuiteRow {
        adapter: r.adapter.clone(),
        backend: r.backend.clone(),
        precision: r.precision.clone(),
        kernel: r.kernel.clone(),
        m: r.m,
        n: r.n,
        k: r.k,
        gpu_ms_median: r.gpu_ms_median,
        gflops: r.gflops,
        gbps: r.gbps,
        intensity,
        working_set_bytes: bytes,
        memory_level: String::new(),
        roofline_gflops: f64::NAN,
        fraction_of_roofline: f64::NAN,
        cpu_ms: r.cpu_ms,
        speedup_vs_cpu: r.speedup_vs_cpu,
        rel_err: r.rel_err,
        passed: r.passed,
        tuned: r.config.clone(),
        skipped: r.skipped.clone(),
        weight_bytes: r.weight_bytes,
        sparsity: r.sparsity.clone(),
        prune: r.prune.clone(),
        speedup_vs_dense: r.speedup_vs_dense,
    };
    place(&mut row, c);
    row
}

/// The CPU baseline of a row's precision as a row on the CPU's roofline (the gemm crate for
/// f32, the fast CPU path on the stored weights otherwise).
pub(crate) fn cpu_row(r: &MatmulRow, cpu: &Ceilings) -> Option<SuiteRow> {
    let ms = r.cpu_ms?;
    let flops = 2.0 * r.m as f64 * r.n as f64 * r.k as f64;
    let bytes = compulsory_bytes(r);
    let intensity = flops / bytes;
    let gflops = flops / (ms * 1e6);
    let mut row = SuiteRow {
        adapter: "cpu".into(),
        backend: "cpu".into(),
        precision: r.precision.clone(),
        kernel: r.cpu_impl.clone().unwrap_or_else(|| "-".into()),
        m: r.m,
        n: r.n,
        k: r.k,
        gpu_ms_median: ms,
        gflops,
        gbps: r.weight_bytes.map(|b| b as f64 / (ms * 1e6)),
        intensity,
        working_set_bytes: bytes,
        memory_level: String::new(),
        roofline_gflops: f64::NAN,
        fraction_of_roofline: f64::NAN,
        cpu_ms: Some(ms),
        speedup_vs_cpu: Some(1.0),
        rel_err: 0.0,
        passed: true,
        tuned: format!(
            "{} threads",
            std::thread::available_parallelism().map_or(1, |t| t.get())
        ),
        skipped: None,
        weight_bytes: r.weight_bytes,
        // "dense" in a sparsity sweep, so the side-by-side table lines it up with the
        // GPU's dense rows.
        sparsity: r.sparsity.clone(),
        prune: None,
        speedup_vs_dense: None,
    };
    place(&mut row, cpu);
    Some(row)
}

/// The problems of a sweep: (label, m, n, k).
pub fn problems(req: &SuiteRequest) -> Vec<(String, usize, usize, usize)> {
    let mut p: Vec<_> = req
        .sizes
        .iter()
        .map(|&s| (format!("gemm {s}^3"), s, s, s))
        .collect();
    if req.gemv {
        p.extend(
            req.sizes
                .iter()
                .map(|&s| (format!("gemv {s}x{s}"), 1, s, s)),
        );
    }
    p
}

/// Runs the sweep on `ctx`, reporting progress with `tick(label)` before each problem and
/// `checkpoint(report so far)` after it (so results survive a crash later in the sweep).
pub fn run(
    ctxs: &[Context],
    req: &SuiteRequest,
    tick: &mut dyn FnMut(&str),
    checkpoint: &mut dyn FnMut(&SuiteReport) -> Result<()>,
) -> Result<SuiteReport> {
    let cpu = ceilings::cpu::measure();
    let mut report = SuiteReport {
        adapters: Vec::new(),
        cpu: cpu.clone(),
        cpu_before: cpu.clone(),
        cpu_after: cpu,
        cpu_disturbed: Vec::new(),
        rows: Vec::new(),
        model: Vec::new(),
        llm: Vec::new(),
        llm_prune: Vec::new(),
        encoder_prune: Vec::new(),
    };
    for ctx in ctxs {
        tick(&format!("ceilings of {}", ctx.summary.name));
        let c = ceilings::gpu::measure(ctx, &report.cpu_before)?;
        report.adapters.push(AdapterReport {
            name: ctx.summary.name.clone(),
            backend: ctx.summary.backend.clone(),
            driver: ctx.summary.driver.clone(),
            ceilings: c.clone(),
            ceilings_before: c.clone(),
            ceilings_after: None,
            disturbed: Vec::new(),
        });
        for (label, m, n, k) in problems(req) {
            tick(&format!("{label} on {}", ctx.summary.name));
            let mut rng = crate::rng::Rng::new((m * 31 + n + k) as u64);
            let a = rng.vec_f32(m * k);
            let w = rng.vec_f32(n * k);
            let preq = PrecisionRequest {
                m,
                n,
                k,
                precisions: req.precisions.clone(),
                kernel: None,
                runs: req.runs,
                cpu_baseline: ctxs.first().is_some_and(|f| std::ptr::eq(f, ctx)),
                tuned: req.tune.for_adapter(ctx),
                extra: Vec::new(),
            };
            let measured = precision::run(ctx, &preq, &a, &w).and_then(|dense| match &req.sparse {
                Some(sreq) => bench_sparse::run(ctx, &preq, sreq, &a, &w, dense),
                None => Ok(dense),
            });
            match measured {
                Ok(rows) => {
                    // One CPU row per precision (the gemv rows share their precision's; the
                    // sparse rows have none).
                    let dense = |r: &&MatmulRow| r.prune.is_none() && !is_gemv_name(&r.kernel);
                    for r in rows.iter().filter(dense) {
                        if let Some(cr) = cpu_row(r, &report.cpu) {
                            report.rows.push(cr);
                        }
                    }
                    // The CPU baseline ran once per problem (with the first adapter): every
                    // adapter's rows compare with it.
                    let cpu_ms = |precision: &str| {
                        report
                            .rows
                            .iter()
                            .find(|r| {
                                r.adapter == "cpu"
                                    && r.precision == precision
                                    && (r.m, r.n, r.k) == (m, n, k)
                            })
                            .map(|r| r.gpu_ms_median)
                    };
                    let new: Vec<SuiteRow> = rows
                        .iter()
                        .map(|r| {
                            let mut row = suite_row(r, &c);
                            if row.cpu_ms.is_none() && row.skipped.is_none() {
                                row.cpu_ms = cpu_ms(&row.precision);
                                row.speedup_vs_cpu = row.cpu_ms.map(|ms| ms / row.gpu_ms_median);
                            }
                            row
                        })
                        .collect();
                    report.rows.extend(new);
                }
                // Over a limit, a lost device, a hang: this problem fails with the reason
                // and the sweep goes on.
                Err(e) => report.rows.push(SuiteRow {
                    adapter: ctx.summary.name.clone(),
                    backend: ctx.summary.backend.clone(),
                    precision: "all".into(),
                    kernel: "-".into(),
                    m,
                    n,
                    k,
                    gpu_ms_median: f64::NAN,
                    gflops: f64::NAN,
                    gbps: None,
                    intensity: f64::NAN,
                    working_set_bytes: f64::NAN,
                    memory_level: String::new(),
                    roofline_gflops: f64::NAN,
                    fraction_of_roofline: f64::NAN,
                    cpu_ms: None,
                    speedup_vs_cpu: None,
                    rel_err: f64::NAN,
                    passed: false,
                    tuned: String::new(),
                    skipped: Some(e.to_string()),
                    weight_bytes: None,
                    sparsity: None,
                    prune: None,
                    speedup_vs_dense: None,
                }),
            }
            checkpoint(&report)?;
        }
        if let Some(path) = req.model.as_deref().filter(|p| is_llm_model(p)) {
            tick(&format!("llm on {}", ctx.summary.name));
            report.llm.push(llm_report(ctx, path, req)?);
            checkpoint(&report)?;
        }
        if let Some((path, sreq)) = req.model.as_deref().zip(req.sparse.as_ref()) {
            tick(&format!("pruned model on {}", ctx.summary.name));
            if is_llm_model(path) {
                report
                    .llm_prune
                    .push(llm_prune_report(ctx, path, req, sreq)?);
            } else {
                report
                    .encoder_prune
                    .push(encoder_prune_report(ctx, path, req, sreq)?);
            }
            checkpoint(&report)?;
        }
        if let Some(dir) = req.model.as_deref().filter(|p| !is_llm_model(p)) {
            tick(&format!("model on {}", ctx.summary.name));
            let ireq = InferRequest {
                precisions: req
                    .precisions
                    .iter()
                    .copied()
                    .filter(|p| crate::model::bert::gpu::supported(*p))
                    .collect(),
                batch: 8,
                seq: None,
                repeat: req.runs.repeat,
                cpu: true,
                quantizers: vec![crate::formats::quant_search::Quantizer::Imatrix],
            };
            report.model.extend(infer::run(ctx, dir, &ireq)?);
            checkpoint(&report)?;
        }
        // The ceilings again, after this adapter's rows: each row is held to the higher.
        tick(&format!("ceilings of {} again", ctx.summary.name));
        let a = report.adapters.last_mut().expect("pushed above");
        match ceilings::gpu::measure(ctx, &report.cpu_before) {
            Ok(after) => {
                a.disturbed = a.ceilings_before.disturbed(&after);
                a.ceilings = a.ceilings_before.max(&after);
                a.ceilings_after = Some(after);
            }
            // A device lost mid-sweep cannot be measured again: its rows keep the first
            // measurement, and the report says the check did not happen.
            Err(e) => a
                .disturbed
                .push(format!("ceilings not measured again after the rows: {e}")),
        }
    }
    tick("CPU ceilings again");
    let after = ceilings::cpu::measure();
    report.cpu_disturbed = report.cpu_before.disturbed(&after);
    report.cpu = report.cpu_before.max(&after);
    report.cpu_after = after;
    report.place_all();
    checkpoint(&report)?;
    Ok(report)
}

impl SuiteRow {
    /// The precision with the row's sparsity and pruning method, where it has them:
    /// "q4_0", "q4_0 dense", "q4_0 2:4 wanda". Tables and charts key rows by it.
    pub fn label(&self) -> String {
        match (&self.sparsity, &self.prune) {
            (Some(s), Some(m)) => format!("{} {s} {m}", self.precision),
            (Some(s), None) => format!("{} {s}", self.precision),
            _ => self.precision.clone(),
        }
    }

    /// A short device label for tables and charts: "llvmpipe vulkan", "cpu".
    pub fn device(&self) -> String {
        if self.adapter == "cpu" {
            return "cpu".into();
        }
        let name = self
            .adapter
            .split(['(', ','])
            .next()
            .unwrap_or(&self.adapter)
            .trim();
        format!("{name} {}", self.backend)
    }
}
