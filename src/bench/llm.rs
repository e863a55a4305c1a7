//! `wgpu-lab llm-bench`: llama-bench and llama-perplexity --kl-divergence in one table. Per
//! precision: prompt processing (pp) and token generation (tg) tokens/s on the GPU and on
//! the CPU, weight and KV-cache bytes, and accuracy against the f32 CPU twin teacher-forced
//! over a text: perplexity, mean KL divergence, top-1 agreement. The whole text is one
//! context when it fits the model's (evaluated in chunks that continue the KV cache, the
//! same as one pass), else consecutive windows of the context's length.

use std::time::Instant;

use serde::Serialize;

use crate::bench::autotune::{Autotuner, Tuning};
use crate::bench::tune::{self, Tuned};
use crate::error::{LabError, Result};
use crate::formats::llama::{LlamaWeights, LlmPrecision};
use crate::formats::precision::Precision;
use crate::formats::quant_search::Quantizer;
use crate::formats::weights::WeightFormat;
use crate::gpu::Context;
use crate::model::llama::gpu::{GpuLlama, LlamaKernels, Want};
use crate::reference::llama::LlamaCpu;
use crate::reference::llama_cpp::LlamaCpp;
use crate::rng::Rng;
use crate::stats::Summary;

/// The committed default passage (1188 SmolLM2 tokens, written for this project).
pub const DEFAULT_TEXT: &str = include_str!("../../tests/data/llama/passage.txt");

/// What to run.
#[derive(Debug, Clone)]
pub struct LlmBenchRequest {
    /// Precisions, in order.
    pub precisions: Vec<LlmPrecision>,
    /// Prompt tokens of the pp test (random ids, as llama-bench).
    pub pp: usize,
    /// Generated tokens of the tg test (greedy, from an empty context).
    pub tg: usize,
    /// Timed repetitions of pp and tg.
    pub repeat: usize,
    /// The evaluation text, as token ids.
    pub text: Vec<u32>,
    /// Time the CPU too.
    pub cpu: bool,
    /// How Q4_0/Q4_1 are re-encoded (reference, rmse, or imatrix: calibrated on
    /// `model::llama::calibrate`'s text).
    pub quantizer: Quantizer,
    /// KV cache storage of the GPU model.
    pub kv: crate::formats::llama::KvPrecision,
    /// Measure the adapter's read bandwidth first and next to each row's generation
    /// timing, for each row's share of it.
    pub ceiling: bool,
    /// The tune cache's entries for this adapter: the decode kernel comes from its GEMV
    /// entry for the format most matrices are in, where it has one.
    pub tuned: Tuned,
    /// Also write each row's tensors as a GGUF into this folder (`<precision>.gguf`, the
    /// file the CPU column's llama.cpp ran), for stock llama.cpp tools to run the same file.
    pub write_gguf: Option<std::path::PathBuf>,
}

/// The decoder's kernels on this adapter for weights `w`: the adapter's defaults
/// (`LlamaKernels::default_for`), decoding with the tune cache's GEMV kernel for the
/// format most of the matrices are in, where `tuned` has one; W8A8 (`precision.w8a8()`)
/// runs its own kernels. Also returns the decode kernel's description, `(tuned)` when it
/// came from the cache.
pub fn kernels_for(
    ctx: &Context,
    w: &LlamaWeights,
    tuned: &Tuned,
    kv: crate::formats::llama::KvPrecision,
    precision: LlmPrecision,
) -> (LlamaKernels, String) {
    let kernels = LlamaKernels::default_for(ctx).with_kv(kv);
    if let Some(scheme) = precision.w8a8() {
        let k = kernels.with_w8a8(Some(scheme));
        return (k, k.decode_name());
    }
    let main = w.format_counts().first().map(|c| c.0);
    match main.and_then(|f| tune::tuned_gemv(tuned, Precision::Weights(f))) {
        Some(v) => (kernels.with_decode(v), format!("{} (tuned)", v.describe())),
        None => (kernels, kernels.decode_name()),
    }
}

/// One precision's row.
#[derive(Debug, Clone, Serialize)]
pub struct LlmRow {
    /// Precision name.
    pub precision: String,
    /// Prompt processing, tokens/s (median).
    pub pp_tok_s: Option<f64>,
    /// Token generation, tokens/s (median).
    pub tg_tok_s: Option<f64>,
    /// The slowest and fastest of the timed prompt runs, tokens/s: the spread behind
    /// `pp_tok_s` (on a shared or throttling machine it can be wide).
    pub pp_tok_s_range: Option<[f64; 2]>,
    /// The same for token generation.
    pub tg_tok_s_range: Option<[f64; 2]>,
    /// The same on the CPU.
    pub cpu_pp_tok_s: Option<f64>,
    /// The same on the CPU.
    pub cpu_tg_tok_s: Option<f64>,
    /// The CPU implementation timed: llama.cpp, its version, the CPU variant ggml loaded
    /// and its threads.
    pub cpu_impl: Option<String>,
    /// Perplexity of llama.cpp's own logits over the same text (the same GGUF tensors).
    pub cpu_perplexity: Option<f64>,
    /// Mean KL(teacher || llama.cpp) per position, nats.
    pub cpu_kld_mean: Option<f64>,
    /// Fraction of positions where llama.cpp's argmax equals the teacher's.
    pub cpu_top1_agreement: Option<f64>,
    /// Why the CPU columns are empty when llama.cpp could not run this row.
    pub cpu_skipped: Option<String>,
    /// Bytes of weights on the GPU.
    pub weight_bytes: Option<u64>,
    /// Bytes of the GPU KV cache for pp + tg positions.
    pub kv_bytes: Option<u64>,
    /// exp(mean negative log-likelihood of each next token of the text).
    pub perplexity: Option<f64>,
    /// Mean KL(teacher || this) per position, nats.
    pub kld_mean: Option<f64>,
    /// Fraction of positions whose argmax equals the teacher's.
    pub top1_agreement: Option<f64>,
    /// Decode bandwidth: weight bytes x tg tokens/s, GB/s (decode streams every weight).
    pub tg_gbps: Option<f64>,
    /// `tg_gbps` as a percentage of `read_gbps` (the roofline of a memory-bound decode).
    pub tg_roof_pct: Option<f64>,
    /// The adapter's read bandwidth, GB/s, measured just before this row's generation was
    /// timed, so that the share compares two figures of the same minutes (a machine's
    /// speed can move between rows); None when not measured.
    pub read_gbps: Option<f64>,
    /// The matrices' storage formats with counts (`q5_0 x181, q4_k x30`): a K-quant asked
    /// for rows that are not whole super-blocks falls back as llama-quantize does.
    pub matrix_formats: Option<String>,
    /// The decode steps' kernel (`gemv-bcast 16x8`; `(tuned)` from the tune cache).
    pub decode_kernel: Option<String>,
    /// The run completed (every number finite).
    pub passed: bool,
    /// Why the row did not run.
    pub skipped: Option<String>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct LlmReport {
    /// Adapter.
    pub adapter: String,
    /// Model file.
    pub model: String,
    /// Tokens of the evaluation text.
    pub text_tokens: usize,
    /// How the text was evaluated.
    pub context: String,
    /// KV cache storage of the GPU rows.
    pub kv: crate::formats::llama::KvPrecision,
    /// How Q4_0/Q4_1 were re-encoded, with the calibration size for imatrix.
    pub quantizer: String,
    /// The adapter's read bandwidth, GB/s, streaming as many bytes as the file's weights
    /// (`ceilings`' read probe), measured before the first row (each row also has its
    /// own, `read_gbps`); None when not measured.
    pub bandwidth_gbps: Option<f64>,
    /// Rows.
    pub rows: Vec<LlmRow>,
}

/// Log-softmax of each vocab-wide row, in f64.
pub fn log_softmax(logits: &[f32], vocab: usize) -> Vec<Vec<f64>> {
    logits
        .chunks(vocab)
        .map(|row| {
            let max = row.iter().fold(f32::MIN, |m, v| m.max(*v)) as f64;
            let lse = row
                .iter()
                .map(|v| (*v as f64 - max).exp())
                .sum::<f64>()
                .ln()
                + max;
            row.iter().map(|v| *v as f64 - lse).collect()
        })
        .collect()
}

/// Windows of the text: the whole text when it fits the context, else consecutive chunks.
fn windows(text: &[u32], context: usize) -> Vec<&[u32]> {
    text.chunks(context).filter(|w| w.len() > 1).collect()
}

/// Accuracy of `student` logits against the teacher's log-probabilities.
pub(crate) struct Accuracy {
    pub perplexity: f64,
    pub kld_mean: f64,
    pub top1: f64,
}

fn accuracy(teacher: &[Vec<f64>], student: &[Vec<f64>], next: &[u32]) -> Accuracy {
    let (mut nll, mut kld, mut agree) = (0.0, 0.0, 0usize);
    for ((t, s), &y) in teacher.iter().zip(student).zip(next) {
        nll -= s[y as usize];
        kld += t
            .iter()
            .zip(s)
            .map(|(lt, ls)| lt.exp() * (lt - ls))
            .sum::<f64>();
        let am = |v: &[f64]| (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b });
        agree += (am(t) == am(s)) as usize;
    }
    let n = next.len().max(1) as f64;
    Accuracy {
        perplexity: (nll / n).exp(),
        kld_mean: kld / n,
        top1: agree as f64 / n,
    }
}

/// Log-probabilities of the f32 CPU twin over each window (positions that have a next
/// token), the teacher every precision is compared with.
pub fn teacher(file: &LlamaWeights, text: &[u32]) -> Result<Vec<Vec<f64>>> {
    twin_log_probs(
        &file.at_precision(LlmPrecision::Format(WeightFormat::F32))?,
        text,
    )
}

/// Perplexity over `text`, mean KLD from `teacher` and top-1 agreement with it, of the CPU
/// twin holding `w`'s values (e.g. a pruned model: `bench::llm_prune`).
pub fn twin_accuracy(
    w: &LlamaWeights,
    text: &[u32],
    teacher: &[Vec<f64>],
) -> Result<(f64, f64, f64)> {
    let student = twin_log_probs(w, text)?;
    let next: Vec<u32> = windows(text, w.config.context)
        .iter()
        .flat_map(|win| win[1..].iter().copied())
        .collect();
    let acc = accuracy(teacher, &student, &next);
    Ok((acc.perplexity, acc.kld_mean, acc.top1))
}

/// Log-probabilities of the CPU twin of `w` (as stored) over each window of `text`.
fn twin_log_probs(w: &LlamaWeights, text: &[u32]) -> Result<Vec<Vec<f64>>> {
    let twin = LlamaCpu::new(w);
    let vocab = twin.config.vocab;
    let mut out = Vec::new();
    for w in windows(text, twin.config.context) {
        let mut cache = twin.cache(w.len());
        let logits = twin.forward(&mut cache, &w[..w.len() - 1])?;
        out.extend(log_softmax(&logits, vocab));
    }
    Ok(out)
}

/// The adapter's read bandwidth streaming the file's weight bytes (GB/s), where the request
/// asks for it.
fn read_bandwidth(
    ctx: &Context,
    file: &LlamaWeights,
    req: &LlmBenchRequest,
) -> Result<Option<f64>> {
    req.ceiling
        .then(|| crate::bench::ceilings::gpu::gpu_read_bandwidth(ctx, file.bytes()))
        .transpose()
}

/// What a GPU row measures of a decoder: its accuracy teacher-forced over the text, and
/// pp / tg as llama-bench runs them (on `prompt`, random ids).
pub(crate) struct GpuFigures {
    pub acc: Accuracy,
    pub pp: Summary,
    pub tg: Summary,
    pub prompt: Vec<u32>,
}

/// How many tokens the speed tests run, and how often.
#[derive(Debug, Clone, Copy)]
pub struct SpeedRuns {
    /// Prompt tokens of the prompt-processing test.
    pub pp: usize,
    /// Generated tokens of the generation test.
    pub tg: usize,
    /// Timed repetitions.
    pub repeat: usize,
}

/// Runs `gpu` teacher-forced over `text`'s windows (its logits against `teacher`), then
/// pp (`runs.pp` random ids in one pass from an empty cache) and tg (`runs.tg` greedy
/// steps from an empty cache), `runs.repeat` timed runs after one untimed.
pub(crate) fn gpu_figures(
    ctx: &Context,
    gpu: &mut GpuLlama,
    text: &[u32],
    runs: SpeedRuns,
    teacher: &[Vec<f64>],
) -> Result<GpuFigures> {
    let req = runs;
    let c = gpu.config.clone();
    // Accuracy: teacher-forced over the text, window by window.
    let mut student = Vec::new();
    let mut next = Vec::new();
    for win in windows(text, c.context) {
        gpu.reset();
        let out = gpu.forward(ctx, &win[..win.len() - 1], Want::AllLogits, None)?;
        student.extend(log_softmax(&out.logits, c.vocab));
        next.extend_from_slice(&win[1..]);
    }
    let acc = accuracy(teacher, &student, &next);
    drop(student);
    // Speed: pp on random ids, tg greedy from an empty context.
    let mut rng = Rng::new(7);
    let prompt: Vec<u32> = (0..req.pp)
        .map(|_| (rng.next_u64() % c.vocab as u64) as u32)
        .collect();
    let pp = tok_s(req.repeat, || {
        gpu.reset();
        gpu.forward(ctx, &prompt, Want::LastLogits, None)?;
        Ok(prompt.len())
    })?;
    let tg = tok_s(req.repeat, || {
        gpu.reset();
        let mut t = prompt[0];
        for _ in 0..req.tg {
            t = gpu
                .forward(ctx, &[t], Want::Argmax, None)?
                .token
                .expect("argmax asked");
        }
        Ok(req.tg)
    })?;
    Ok(GpuFigures {
        acc,
        pp,
        tg,
        prompt,
    })
}

/// The capacity a GPU row's KV cache needs: the speed runs and the longest text window.
pub(crate) fn capacity(text: &[u32], runs: SpeedRuns, context: usize) -> usize {
    let eval_len = windows(text, context)
        .iter()
        .map(|w| w.len())
        .max()
        .unwrap_or(1);
    (runs.pp + runs.tg).max(eval_len).min(context)
}

/// Tokens/s of `run` (which returns the tokens it processed), `repeat` times after one
/// untimed run: median and spread.
fn tok_s(repeat: usize, mut run: impl FnMut() -> Result<usize>) -> Result<Summary> {
    run()?;
    let mut samples = Vec::new();
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        let n = run()?;
        samples.push(n as f64 / t.elapsed().as_secs_f64());
    }
    Ok(Summary::of(&samples).expect("at least one sample"))
}

/// llama.cpp's figures for one row: speed as llama-bench measures it, accuracy from its own
/// logits.
struct CpuFigures {
    pp: f64,
    tg: f64,
    acc: Accuracy,
    name: String,
}

/// Runs `w` in llama.cpp: teacher-forced over the text's windows (its logits against the
/// same teacher as the GPU row), then pp (the prompt's random ids in one batch, from an
/// empty cache) and tg (`req.tg` single-token steps from an empty cache, each step's next
/// token drawn at random, logits computed every step), `req.repeat` timed runs after one
/// untimed, medians: llama-bench's `pp` and `tg` tests.
fn llama_cpp_row(
    w: &LlamaWeights,
    req: &LlmBenchRequest,
    teacher: &[Vec<f64>],
    prompt: &[u32],
    capacity: usize,
) -> Result<CpuFigures> {
    let mut m = LlamaCpp::new(w, capacity)?;
    let mut student = Vec::new();
    let mut next = Vec::new();
    for win in windows(&req.text, w.config.context) {
        m.reset();
        let logits = m.forward(&win[..win.len() - 1], true)?;
        student.extend(log_softmax(&logits, m.vocab));
        next.extend_from_slice(&win[1..]);
    }
    let acc = accuracy(teacher, &student, &next);
    drop(student);
    let pp = tok_s(req.repeat, || {
        m.reset();
        m.forward(prompt, false)?;
        Ok(prompt.len())
    })?;
    let mut rng = Rng::new(11);
    let vocab = m.vocab as u64;
    let tg = tok_s(req.repeat, || {
        m.reset();
        let mut t = prompt[0];
        for _ in 0..req.tg {
            m.forward(&[t], false)?;
            t = (rng.next_u64() % vocab) as u32;
        }
        Ok(req.tg)
    })?;
    Ok(CpuFigures {
        pp: pp.median,
        tg: tg.median,
        acc,
        name: m.describe.clone(),
    })
}

fn one(
    ctx: &Context,
    file: &LlamaWeights,
    req: &LlmBenchRequest,
    teacher: &[Vec<f64>],
    precision: LlmPrecision,
    importance: Option<&crate::formats::llama::LlamaImportance>,
    auto: Option<&mut Autotuner>,
) -> Result<LlmRow> {
    let w = file.at_precision_with(precision, req.quantizer, importance)?;
    let c = &w.config;
    // The decode kernel: first-use autotuned where asked and missing.
    let main = w.format_counts().first().map(|c| Precision::Weights(c.0));
    let (tuned, autotuned) = match (auto, main) {
        (Some(a), Some(p)) if precision.w8a8().is_none() => {
            a.ensure_gemv_kernel(ctx, p)?;
            let how = a.tuning(ctx, &tune::gemv_key(p));
            (a.cache.for_adapter(ctx), how == Tuning::Autotuned)
        }
        _ => (req.tuned.clone(), false),
    };
    if let Some(dir) = &req.write_gguf {
        let name = precision.name().replace(':', "-");
        crate::reference::llama_cpp::write_gguf(&w, &dir.join(format!("{name}.gguf")))?;
    }
    let (kernels, mut decode_kernel) = kernels_for(ctx, &w, &tuned, req.kv, precision);
    if autotuned {
        if let Some(k) = decode_kernel.strip_suffix(" (tuned)") {
            decode_kernel = format!("{k} (autotuned)");
        }
    }
    let runs = SpeedRuns {
        pp: req.pp,
        tg: req.tg,
        repeat: req.repeat,
    };
    let capacity = capacity(&req.text, runs, c.context);
    let mut gpu = GpuLlama::new(ctx, &w, capacity, kernels)?;
    let figures = gpu_figures(ctx, &mut gpu, &req.text, runs, teacher)?;
    let (acc, pp, tg, prompt) = (figures.acc, figures.pp, figures.tg, figures.prompt);
    let read_gbps = read_bandwidth(ctx, file, req)?;
    // The CPU columns: llama.cpp on the same tensors (W8A8's counterpart is llama.cpp at
    // Q8_0: int8 weights and int8 activations per 32-value block, no rotation). Whatever
    // llama.cpp cannot run becomes an empty CPU cell with the reason.
    let cpu = if req.cpu {
        let q8;
        let cpu_w = if precision.w8a8().is_some() {
            q8 = file.at_precision(LlmPrecision::Format(WeightFormat::Q8_0))?;
            &q8
        } else {
            &w
        };
        Some(
            llama_cpp_row(cpu_w, req, teacher, &prompt, capacity).map(|mut c| {
                if precision.w8a8().is_some() {
                    c.name = format!("{} at Q8_0 (W8A8 per 32 values)", c.name);
                }
                c
            }),
        )
    } else {
        None
    };
    let (cpu, cpu_skipped) = match cpu {
        Some(Ok(c)) => (Some(c), None),
        Some(Err(e)) => (None, Some(e.to_string())),
        None => (None, None),
    };
    let finite = [acc.perplexity, acc.kld_mean, acc.top1, pp.median, tg.median]
        .iter()
        .all(|v| v.is_finite());
    Ok(LlmRow {
        precision: precision.name().into(),
        pp_tok_s: Some(pp.median),
        tg_tok_s: Some(tg.median),
        pp_tok_s_range: Some([pp.min, pp.max]),
        tg_tok_s_range: Some([tg.min, tg.max]),
        cpu_pp_tok_s: cpu.as_ref().map(|c| c.pp),
        cpu_tg_tok_s: cpu.as_ref().map(|c| c.tg),
        cpu_impl: cpu.as_ref().map(|c| c.name.clone()),
        cpu_perplexity: cpu.as_ref().map(|c| c.acc.perplexity),
        cpu_kld_mean: cpu.as_ref().map(|c| c.acc.kld_mean),
        cpu_top1_agreement: cpu.as_ref().map(|c| c.acc.top1),
        cpu_skipped,
        weight_bytes: Some(gpu.weight_bytes),
        kv_bytes: Some(gpu.kv_bytes),
        perplexity: Some(acc.perplexity),
        kld_mean: Some(acc.kld_mean),
        top1_agreement: Some(acc.top1),
        tg_gbps: Some(gpu.weight_bytes as f64 * tg.median / 1e9),
        tg_roof_pct: read_gbps.map(|b| 100.0 * gpu.weight_bytes as f64 * tg.median / 1e9 / b),
        read_gbps,
        matrix_formats: Some(match precision.w8a8() {
            // Quantized on upload from these f32 values.
            Some(_) => {
                let n: usize = w.format_counts().iter().map(|c| c.1).sum();
                format!("{} x{n}", precision.name())
            }
            None => w.format_summary(),
        }),
        decode_kernel: Some(decode_kernel),
        passed: finite,
        skipped: None,
    })
}

/// Runs every precision; one that cannot run here (over a limit, a missing feature) is a
/// skipped row with the reason, the others still run.
pub fn run(ctx: &Context, file: &LlamaWeights, req: &LlmBenchRequest) -> Result<LlmReport> {
    run_autotuned(ctx, file, req, None)
}

/// [`run`], with first-use autotuning of each row's decode kernel (the GEMV entry of the
/// format most of its matrices are in) where `auto` is given and its cache lacks it.
pub fn run_autotuned(
    ctx: &Context,
    file: &LlamaWeights,
    req: &LlmBenchRequest,
    mut auto: Option<&mut Autotuner>,
) -> Result<LlmReport> {
    if req.text.len() < 2 {
        return Err(LabError::InvalidArgument(
            "the evaluation text needs at least 2 tokens".into(),
        ));
    }
    if req.pp == 0 || req.tg == 0 || req.pp + req.tg > file.config.context {
        return Err(LabError::InvalidArgument(format!(
            "-p {} and -n {} must be >= 1 and fit the model's context of {}",
            req.pp, req.tg, file.config.context
        )));
    }
    let bandwidth_gbps = read_bandwidth(ctx, file, req)?;
    let teacher = teacher(file, &req.text)?;
    let importance = match req.quantizer {
        Quantizer::Imatrix => {
            let tok = crate::model::llama::tokenize::LlamaTokenizer::new(&file.vocab)?;
            Some(crate::model::llama::calibrate::calibrate(file, &tok)?)
        }
        _ => None,
    };
    let ctxlen = file.config.context;
    let mut rows = Vec::new();
    for &p in &req.precisions {
        rows.push(
            match one(
                ctx,
                file,
                req,
                &teacher,
                p,
                importance.as_ref(),
                auto.as_deref_mut(),
            ) {
                Ok(r) => r,
                Err(e @ LabError::DeviceLost(_)) => return Err(e),
                Err(e) => LlmRow {
                    precision: p.name().into(),
                    pp_tok_s: None,
                    tg_tok_s: None,
                    pp_tok_s_range: None,
                    tg_tok_s_range: None,
                    cpu_pp_tok_s: None,
                    cpu_tg_tok_s: None,
                    cpu_impl: None,
                    cpu_perplexity: None,
                    cpu_kld_mean: None,
                    cpu_top1_agreement: None,
                    cpu_skipped: None,
                    weight_bytes: None,
                    kv_bytes: None,
                    perplexity: None,
                    kld_mean: None,
                    top1_agreement: None,
                    tg_gbps: None,
                    tg_roof_pct: None,
                    read_gbps: None,
                    matrix_formats: None,
                    decode_kernel: None,
                    passed: false,
                    skipped: Some(e.to_string()),
                },
            },
        );
    }
    Ok(LlmReport {
        adapter: ctx.summary.name.clone(),
        model: file.path.display().to_string(),
        text_tokens: req.text.len(),
        context: if req.text.len() <= ctxlen {
            format!("whole text in one context ({} tokens)", req.text.len())
        } else {
            format!("windows of {ctxlen} tokens (the model's context)")
        },
        kv: req.kv,
        quantizer: match &importance {
            Some(i) => format!("imatrix ({} calibration tokens)", i.tokens),
            None => req.quantizer.name().into(),
        },
        bandwidth_gbps,
        rows,
    })
}
