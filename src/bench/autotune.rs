//! First-use autotuning: the first time a command needs a precision's kernel for a shape
//! class (GEMM, GEMV) on an adapter whose tune cache has no entry for it, a short search
//! runs before the table, so a user's first numbers come from a tuned kernel rather than
//! from defaults shaped for another driver. `tune` stays the long search.
//!
//! The search is `tune`'s (every candidate validated against its reference, a failing one
//! never chosen, a GEMM winner confirmed against the default on the doubled problem), with
//! a time budget per entry: candidates run in order of how often they won elsewhere (the
//! default first, so there is always a baseline; then the larger register blocks and the
//! public kernel's tile shape) and none starts once the budget is spent. The winner is
//! written to the cache and marked as autotuned; later runs read it without searching.
//!
//! Budget: 8 s per entry by default: issue 22 asks for at most 10 s per entry on lavapipe,
//! and a confirmation of a GEMM winner takes the last third. Measured there (2 cores), GEMM
//! candidates at the class problem cost 0.2 s (the default) to over 1 s (large blocks), so
//! 8 s tries 4-9 of ~90; GEMV candidates are cheap, 38 of 40 fit
//! (docs/results/autotune-lavapipe.md). The f32 nn register block (`matmul`'s f32 kernel)
//! has its own prior per adapter kind and skips a candidate whose predicted cost would
//! cross the deadline: 9-17 of 104 in 6.2 s on lavapipe
//! (docs/results/public-gemm-lavapipe.md).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::bench::tune::{self, ShapeClass, Trial, TuneCache};
use crate::error::Result;
use crate::formats::precision::Precision;
use crate::gpu::measure::Runs;
use crate::gpu::Context;
use crate::kernels::matmul::Layout;
use crate::kernels::matmul_wq::{TiledKernel, WqKernel, WqVariant};

/// The default budget per cache entry.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(8);

/// Where a row's kernel came from, as tables and JSON label it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tuning {
    /// From a `tune` run (the long search).
    Tuned,
    /// From a first-use autotune (a short search on first need).
    Autotuned,
    /// The untuned default (no cache entry, or `--no-autotune`).
    Default,
}

impl Tuning {
    /// `tuned`, `autotuned` or `default`.
    pub fn name(self) -> &'static str {
        match self {
            Tuning::Tuned => "tuned",
            Tuning::Autotuned => "autotuned",
            Tuning::Default => "default",
        }
    }
}

/// What one autotune did, for the line a command prints.
#[derive(Debug, Clone)]
pub struct Searched {
    /// The cache entry's key (`q4_0/gemm`).
    pub key: String,
    /// The kernel chosen.
    pub chosen: Option<Trial>,
    /// Candidates tried, and how many there were.
    pub tried: usize,
    /// Candidates in the search space.
    pub of: usize,
    /// Wall time of the search.
    pub elapsed: Duration,
}

/// The tune cache of one command, searching the entries it lacks on first need.
pub struct Autotuner {
    path: PathBuf,
    /// The cache as read (and as updated by the searches).
    pub cache: TuneCache,
    budget: Duration,
    enabled: bool,
    /// Every search this command ran, in order.
    pub searches: Vec<Searched>,
}

/// `p`'s GEMV-kernel entry and its candidates (none for precisions without one).
fn gemv_entry(ctx: &Context, p: Precision) -> Option<(String, Vec<WqVariant>)> {
    let gemv: Vec<WqVariant> = match p {
        Precision::Weights(_) => tune::gemv_candidates(ctx),
        Precision::Int8 | Precision::Int8Rot => tune::gemv_candidates(ctx)
            .into_iter()
            .filter(|v| matches!(v, WqVariant::Broadcast { .. }))
            .collect(),
        _ => Vec::new(),
    };
    (!gemv.is_empty()).then(|| (tune::gemv_key(p), gemv))
}

/// The register blocks in the order the budget tries them: the default first, then the
/// blocks with the most outputs per invocation (the ones that won on CPU adapters and on
/// the H100: 8x4, 4x8, 8x2, ...), wider workgroups before narrower.
fn ordered(class: ShapeClass, m: usize) -> Vec<WqVariant> {
    let default = WqKernel::default_for(m);
    let mut blocks = tune::candidates(class);
    blocks.retain(|b| *b != default);
    blocks.sort_by_key(|b| (std::cmp::Reverse(b.tm * b.tn), std::cmp::Reverse(b.wg_x)));
    std::iter::once(default)
        .chain(blocks)
        .map(WqVariant::Regblock)
        .collect()
}

impl Autotuner {
    /// The cache at `path` (read now); `budget` per entry; `enabled = false` never searches
    /// (`--no-autotune`, or `WGPU_LAB_NO_AUTOTUNE=1` in the environment).
    pub fn new(path: PathBuf, budget: Duration, enabled: bool) -> Self {
        let enabled = enabled && std::env::var("WGPU_LAB_NO_AUTOTUNE").map_or(true, |v| v != "1");
        Self {
            cache: TuneCache::load(&path),
            path,
            budget,
            enabled,
            searches: Vec::new(),
        }
    }

    /// Where the entry `key` of this adapter came from.
    pub fn tuning(&self, ctx: &Context, key: &str) -> Tuning {
        let adapter = tune::adapter_key(ctx);
        let has = self
            .cache
            .adapters
            .get(&adapter)
            .is_some_and(|t| t.contains_key(key));
        let auto = self
            .cache
            .autotuned
            .get(&adapter)
            .is_some_and(|a| a.contains(key));
        match (has, auto) {
            (true, true) => Tuning::Autotuned,
            (true, false) => Tuning::Tuned,
            _ => Tuning::Default,
        }
    }

    /// Makes sure the cache has `p`'s register-block entry for the class of `m` rows (and,
    /// for GEMV, its GEMV-kernel entry where the precision has one), searching what is
    /// missing within the budget and saving the cache after each search. Does nothing when
    /// disabled or when the entries exist.
    pub fn ensure(&mut self, ctx: &Context, p: Precision, m: usize) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        let class = ShapeClass::of(m);
        let mut entries: Vec<(String, Vec<WqVariant>)> = vec![(
            tune::entry_key(p, class),
            self.block_candidates(ctx, p, class, m),
        )];
        if class == ShapeClass::Gemv {
            entries.extend(gemv_entry(ctx, p));
        }
        self.ensure_entries(ctx, p, class, entries)
    }

    /// Makes sure the cache has `p`'s GEMV-kernel entry (the decoder's decode kernel),
    /// searching it within the budget when missing.
    pub fn ensure_gemv_kernel(&mut self, ctx: &Context, p: Precision) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        let entries = gemv_entry(ctx, p).into_iter().collect();
        self.ensure_entries(ctx, p, ShapeClass::Gemv, entries)
    }

    /// Makes sure the cache has the f32 register block of `layout` (`matmul`'s f32 kernel,
    /// [`tune::f32_key`]), searching it within the budget when missing: the candidates in
    /// the order of the adapter kind's prior ([`tune::f32_prior`]), two thirds of the
    /// budget for the search and the rest for confirming a winner against the default on
    /// the doubled problem.
    pub fn ensure_f32(&mut self, ctx: &Context, layout: Layout) -> Result<()> {
        let key = tune::f32_key(layout);
        if !self.enabled || self.tuning(ctx, key) != Tuning::Default {
            return Ok(());
        }
        let start = Instant::now();
        let cands = tune::f32_prior_on(ctx, layout);
        let of = cands.len();
        let bar = progress(key, of);
        let deadline = start + self.budget.mul_f64(0.67);
        let runs = Runs {
            warmup: 1,
            repeat: 3,
        };
        let (trials, chosen) = tune::search_f32(
            ctx,
            layout,
            runs,
            ShapeClass::Gemm.problem(),
            cands,
            Some(deadline),
            &mut || bar.inc(1),
        )?;
        bar.finish_and_clear();
        let problem = ShapeClass::Gemm.problem();
        let searched = Searched {
            key: key.to_string(),
            chosen,
            tried: trials.iter().filter(|t| t.problem == problem).count(),
            of,
            elapsed: start.elapsed(),
        };
        if let Some(t) = chosen {
            let entry = tune::Tuned::from([(key.to_string(), t.kernel)]);
            self.cache = TuneCache::update(&self.path, &tune::adapter_key(ctx), &entry, true)?;
        }
        self.searches.push(searched);
        Ok(())
    }

    fn ensure_entries(
        &mut self,
        ctx: &Context,
        p: Precision,
        class: ShapeClass,
        entries: Vec<(String, Vec<WqVariant>)>,
    ) -> Result<()> {
        let problem = class.problem();
        let adapter = tune::adapter_key(ctx);
        for (key, cands) in entries {
            if self.tuning(ctx, &key) != Tuning::Default {
                continue;
            }
            let searched = self.search(ctx, p, class, problem, &key, cands)?;
            if let Some(t) = searched.chosen {
                let entry = tune::Tuned::from([(key.clone(), t.kernel)]);
                self.cache = TuneCache::update(&self.path, &adapter, &entry, true)?;
            }
            self.searches.push(searched);
        }
        Ok(())
    }

    fn block_candidates(
        &self,
        ctx: &Context,
        p: Precision,
        class: ShapeClass,
        m: usize,
    ) -> Vec<WqVariant> {
        let mut v = ordered(class, m);
        let tiled = matches!(
            p,
            Precision::Weights(_) | Precision::F16Acc | Precision::Int8 | Precision::Int8Rot
        );
        if tiled && class == ShapeClass::Gemm {
            // The public kernel's tile shape early (it wins on some drivers), the other
            // tiles last.
            let public = WqVariant::Tiled(TiledKernel::PUBLIC_SHAPE);
            v.insert(1.min(v.len()), public);
            v.extend(
                tune::tiled_candidates(ctx)
                    .into_iter()
                    .map(WqVariant::Tiled)
                    .filter(|t| *t != public),
            );
        }
        if matches!(p, Precision::Weights(_)) && class == ShapeClass::Gemm {
            // The subgroup blocks where the adapter can run them: on CPU adapters the
            // first (8 rows x 4 weight rows in 8 invocations) right after the default,
            // as for the f32 kernel; the rest last.
            let mut sg = tune::wq_sg_variants(ctx).into_iter();
            if tune::is_cpu_adapter(ctx) {
                if let Some(first) = sg.next() {
                    v.insert(1.min(v.len()), first);
                }
            }
            v.extend(sg);
        }
        v
    }

    fn search(
        &self,
        ctx: &Context,
        p: Precision,
        class: ShapeClass,
        problem: (usize, usize, usize),
        key: &str,
        cands: Vec<WqVariant>,
    ) -> Result<Searched> {
        let start = Instant::now();
        let of = cands.len();
        let bar = progress(key, of);
        // Two thirds of the budget for the search, the rest for a GEMM confirmation.
        let search_share = if class == ShapeClass::Gemm { 0.67 } else { 1.0 };
        let deadline = start + self.budget.mul_f64(search_share);
        let runs = Runs {
            warmup: 1,
            repeat: 3,
        };
        let (trials, best) = tune::search_until(
            ctx,
            p,
            class,
            runs,
            cands,
            problem,
            Some(deadline),
            &mut || bar.inc(1),
        )?;
        bar.finish_and_clear();
        let tried = trials.len();
        let default = WqVariant::Regblock(WqKernel::default_for(problem.0));
        let chosen = match (best, trials.iter().find(|t| t.kernel == default)) {
            (Some(b), Some(d)) if class == ShapeClass::Gemm && b.kernel != default => {
                let at = tune::confirm_problem(problem);
                let (confirm, _) = tune::search_until(
                    ctx,
                    p,
                    class,
                    runs,
                    vec![b.kernel, default],
                    at,
                    None,
                    &mut || {},
                )?;
                Some(tune::confirmed(b, *d, &confirm))
            }
            _ => best,
        };
        Ok(Searched {
            key: key.to_string(),
            chosen,
            tried,
            of,
            elapsed: start.elapsed(),
        })
    }
}

/// The progress bar of one search (on stderr; hidden when it is not a terminal).
fn progress(key: &str, of: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(of as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "autotune {msg} {bar:30} {pos}/{len} candidates, {elapsed} of the budget",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(key.to_string());
    bar
}

impl Searched {
    /// `autotuned q4_0/gemm: Regblock { .. } (12 of 48 candidates in 7.9 s)`.
    pub fn describe(&self) -> String {
        format!(
            "autotuned {}: {} ({} of {} candidates in {:.1} s)",
            self.key,
            self.chosen
                .map_or("none passed, the default stays".into(), |t| format!(
                    "{:?}",
                    t.kernel
                )),
            self.tried,
            self.of,
            self.elapsed.as_secs_f64()
        )
    }
}
