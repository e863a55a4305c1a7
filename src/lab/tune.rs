//! `tune --kernel`: search the `override` constants a user's kernel declares in its header
//! (`// lab: tune NAME = v1, v2, ...`) under the built-in search's rules: every candidate is
//! validated (here on the quick battery) and a failing one is never chosen however fast;
//! the fastest is confirmed against the file's defaults on a problem twice as large along
//! each dimension (`bench::tune::confirm_problem`), and the defaults stay if they win there;
//! the winner must then pass the full battery before it is stored.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::bench::tune::{confirm_problem, Constants, ShapeClass};
use crate::error::{LabError, Result};
use crate::gpu::measure::{measure, Runs};
use crate::gpu::Context;
use crate::lab::check::{check_with_limit, verdict, Prepared, Shapes};
use crate::lab::contract::Op;
use crate::lab::kernel::Kernel;
use crate::lab::problem::Problem;

/// Most candidates one search times (the product of the declared lists is cut here, in
/// order, with a note).
pub const MAX_CANDIDATES: usize = 256;

/// The tune-cache key of a user kernel's constants: op, shape class and a hash of the file,
/// so an edited file is searched again.
pub fn cache_key(kernel: &Kernel, op: Op, m: usize) -> String {
    // FNV-1a, 64 bits: stable across runs and platforms (unlike std's hasher).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in kernel.source.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("lab/{}/{}/{h:016x}", op.label(), ShapeClass::of(m).name())
}

/// Every combination of the header's `tune` values, in file order (the last name varies
/// fastest), at most [`MAX_CANDIDATES`].
pub fn candidates(kernel: &Kernel) -> Vec<Constants> {
    let mut out: Vec<Constants> = vec![BTreeMap::new()];
    for (name, values) in &kernel.header.tune {
        let mut next = Vec::new();
        for c in &out {
            for &v in values {
                let mut c = c.clone();
                c.insert(name.clone(), v);
                next.push(c);
            }
        }
        out = next;
        if out.len() > MAX_CANDIDATES {
            out.truncate(MAX_CANDIDATES);
        }
    }
    out
}

/// Fails, naming the file's override constants, when its header declares nothing to
/// search (no `// lab: tune` line).
pub fn searchable(kernel: &Kernel) -> Result<()> {
    if kernel.header.tune.is_empty() {
        return Err(LabError::Kernel {
            path: kernel.path.clone(),
            message: format!(
                "nothing to search: declare the values of its override constants in the \
                 header, e.g. `// lab: tune WG_X = 8, 16, 32` (it has: {})",
                if kernel.overrides.is_empty() {
                    "no override constants".to_string()
                } else {
                    kernel
                        .overrides
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        });
    }
    Ok(())
}

/// One candidate's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct KernelTrial {
    /// Its constants.
    pub constants: Constants,
    /// Median time on the tuning problem, ms (NaN when it did not run).
    pub ms: f64,
    /// It compiled and passed the quick battery and the tuning problem.
    pub passed: bool,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// What a search found.
#[derive(Debug, Clone, Serialize)]
pub struct KernelTune {
    /// `op/precision`.
    pub op: String,
    /// The tuning problem (m, n, k).
    pub problem: (usize, usize, usize),
    /// Every candidate timed, in order.
    pub trials: Vec<KernelTrial>,
    /// The file's defaults on the tuning problem.
    pub default: KernelTrial,
    /// The fastest valid candidate on the tuning problem.
    pub fastest: Option<KernelTrial>,
    /// Its time and the defaults' on the confirmation problem, ms.
    pub confirm_ms: Option<(f64, f64)>,
    /// What to keep: the fastest, unless the defaults won the confirmation or it failed
    /// the full battery (then None: keep the defaults).
    pub chosen: Option<Constants>,
    /// Why the fastest was not chosen, if it was not.
    pub note: Option<String>,
}

/// Validates one candidate on the quick battery, then times it on `(m, n, k)` (validated
/// there too).
fn trial(
    ctx: &Context,
    kernel: &Kernel,
    op: Op,
    constants: Constants,
    (m, n, k): (usize, usize, usize),
    runs: Runs,
    limit: Duration,
) -> Result<KernelTrial> {
    let failed = |constants: Constants, e: String| KernelTrial {
        constants,
        ms: f64::NAN,
        passed: false,
        error: Some(e),
    };
    let cand = match kernel.clone().with_constants(&constants) {
        Ok(c) => c,
        Err(e) => return Ok(failed(constants, e.to_string())),
    };
    let report = match check_with_limit(ctx, &cand, op, &Shapes::quick(), limit) {
        Ok(r) => r,
        // A hung candidate leaves the device busy: stop the search.
        Err(e @ LabError::Timeout { .. }) | Err(e @ LabError::DeviceLost(_)) => return Err(e),
        Err(e) => return Ok(failed(constants, e.to_string())),
    };
    if let Some(f) = report.first_failure() {
        return Ok(failed(constants, f.describe().trim().to_string()));
    }
    if let Some(why) = report.skipped {
        return Ok(failed(constants, why));
    }
    let problem = Problem::new(op, m, n, k, 0x70e)?;
    let prepared = match Prepared::new(ctx, &cand, &problem) {
        Ok(p) => p,
        Err(e) => return Ok(failed(constants, e.to_string())),
    };
    let (t, got) = measure(ctx, &prepared, runs)?;
    let v = verdict(&problem, &got, t.first_run_ms);
    Ok(KernelTrial {
        constants,
        ms: t.gpu.median,
        passed: v.passed,
        error: (!v.passed).then(|| v.describe().trim().to_string()),
    })
}

/// Searches `kernel`'s declared constants for `op` on `problem` (m, n, k), at most until
/// `budget` has passed (the defaults and the first candidate always run), calling `done`
/// after each candidate (a progress bar). Needs at least one `tune` line in the header.
#[allow(clippy::too_many_arguments)]
pub fn tune_kernel(
    ctx: &Context,
    kernel: &Kernel,
    op: Op,
    problem: (usize, usize, usize),
    runs: Runs,
    budget: Option<Duration>,
    limit: Duration,
    done: &mut dyn FnMut(&KernelTrial),
) -> Result<KernelTune> {
    searchable(kernel)?;
    kernel.check_contract(op)?;
    let start = Instant::now();
    let default = trial(ctx, kernel, op, kernel.set.clone(), problem, runs, limit)?;
    let mut trials = Vec::new();
    for (i, c) in candidates(kernel).into_iter().enumerate() {
        if let (Some(b), true) = (budget, i > 0) {
            let mean = start.elapsed() / (i as u32 + 1);
            if start.elapsed() + mean > b {
                break;
            }
        }
        let mut all = kernel.set.clone();
        all.extend(c);
        let t = trial(ctx, kernel, op, all, problem, runs, limit)?;
        done(&t);
        trials.push(t);
    }
    let fastest = trials
        .iter()
        .filter(|t| t.passed && t.ms.is_finite())
        .min_by(|a, b| a.ms.total_cmp(&b.ms))
        .cloned();
    let mut out = KernelTune {
        op: op.label(),
        problem,
        trials,
        default: default.clone(),
        fastest: fastest.clone(),
        confirm_ms: None,
        chosen: None,
        note: None,
    };
    let Some(fastest) = fastest else {
        out.note = Some("no candidate passed validation".into());
        return Ok(out);
    };
    // Confirmation: the winner against the defaults on a problem twice as large.
    let big = confirm_problem(problem);
    let big = if problem.0 == 1 {
        (1, big.1, big.2)
    } else {
        big
    };
    let w = trial(ctx, kernel, op, fastest.constants.clone(), big, runs, limit)?;
    let d = trial(ctx, kernel, op, kernel.set.clone(), big, runs, limit)?;
    out.confirm_ms = Some((w.ms, d.ms));
    if !w.passed {
        out.note = Some(format!(
            "the fastest failed on the confirmation problem {big:?}: {}",
            w.error.unwrap_or_default()
        ));
        return Ok(out);
    }
    if d.passed && d.ms < w.ms {
        out.note = Some(format!(
            "the defaults won on the confirmation problem {big:?} ({:.3} ms against {:.3})",
            d.ms, w.ms
        ));
        return Ok(out);
    }
    let winner = kernel.clone().with_constants(&fastest.constants)?;
    let full = check_with_limit(ctx, &winner, op, &Shapes::battery(), limit)?;
    if let Some(f) = full.first_failure() {
        out.note = Some(format!(
            "the fastest failed the full battery: {}",
            f.describe().trim()
        ));
        return Ok(out);
    }
    out.chosen = Some(fastest.constants);
    Ok(out)
}
