//! Plain-text tables of benchmark rows, aligned for terminals and Markdown.

use crate::bench::matmul::MatmulRow;

/// Renders rows as a Markdown table (readable as plain text too).
pub fn matmul_table(rows: &[MatmulRow]) -> String {
    let header = [
        "kernel",
        "layout",
        "m x n x k",
        "GPU ms median (min-max)",
        "GFLOP/s",
        "CPU ms",
        "vs CPU",
        "rel err",
        "max abs err",
        "tol",
        "pass",
        "timing",
    ];
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        if let Some(why) = &r.skipped {
            cells.push(note_row(
                vec![
                    r.kernel.clone(),
                    r.layout.name().to_string(),
                    format!("{}x{}x{}", r.m, r.n, r.k),
                ],
                &format!("skipped: {why}"),
            ));
            continue;
        }
        cells.push(vec![
            r.kernel.clone(),
            r.layout.name().to_string(),
            format!("{}x{}x{}", r.m, r.n, r.k),
            format!(
                "{:.3} ({:.3}-{:.3})",
                r.gpu_ms_median, r.gpu_ms_min, r.gpu_ms_max
            ),
            format!("{:.2}", r.gflops),
            r.cpu_ms.map_or("-".into(), |c| format!("{c:.3}")),
            r.speedup_vs_cpu.map_or("-".into(), |s| format!("{s:.2}x")),
            format!("{:.2e}", r.rel_err),
            format!("{:.2e}", r.max_abs_err),
            format!("{:.0e}", r.tolerance),
            if r.passed { "ok" } else { "FAIL" }.to_string(),
            r.timing.name().to_string(),
        ]);
    }
    render(&cells)
}

/// Renders per-precision rows: throughput, bandwidth, memory, both errors.
pub fn precision_table(rows: &[MatmulRow]) -> String {
    let header = [
        "precision",
        "kernel",
        "m x n x k",
        "GPU ms median (min-max)",
        "GFLOP/s",
        "GB/s",
        "weights MiB",
        "vs f32",
        "vs dense",
        "vs CPU",
        "CPU library",
        "kernel err",
        "tol",
        "quant err",
        "pass",
    ];
    let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("-".to_string(), f);
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        let shape = format!("{}x{}x{}", r.m, r.n, r.k);
        // Sparse rows name their pattern and pruning method beside the precision.
        let precision = match (&r.sparsity, &r.prune) {
            (Some(s), Some(p)) => format!("{} {s} {p}", r.precision),
            (Some(s), None) if s != "dense" => format!("{} {s}", r.precision),
            _ => r.precision.clone(),
        };
        if let Some(why) = &r.skipped {
            cells.push(note_row(
                vec![precision, r.kernel.clone(), shape],
                &format!("skipped: {why}"),
            ));
            continue;
        }
        cells.push(vec![
            precision,
            r.kernel.clone(),
            shape,
            format!(
                "{:.3} ({:.3}-{:.3})",
                r.gpu_ms_median, r.gpu_ms_min, r.gpu_ms_max
            ),
            format!("{:.2}", r.gflops),
            opt(r.gbps, &|v| format!("{v:.2}")),
            opt(r.weight_bytes.map(|b| b as f64 / (1 << 20) as f64), &|v| {
                format!("{v:.2}")
            }),
            opt(r.speedup_vs_f32, &|v| format!("{v:.2}x")),
            opt(r.speedup_vs_dense, &|v| format!("{v:.2}x")),
            opt(r.speedup_vs_cpu, &|v| format!("{v:.2}x")),
            r.cpu_impl.clone().unwrap_or_else(|| "-".into()),
            format!("{:.2e}", r.rel_err),
            format!("{:.0e}", r.tolerance),
            opt(r.quant_rel_err, &|v| format!("{v:.2e}")),
            if r.passed { "ok" } else { "FAIL" }.to_string(),
        ]);
    }
    render(&cells)
}

/// Renders the `infer` rows: speed (GPU, the CPU library and our CPU twin), memory, accuracy,
/// compile time.
pub fn infer_table(rows: &[crate::bench::infer::InferRow]) -> String {
    let header = [
        "precision",
        "batch x seq",
        "GPU ms/batch (min-max)",
        "GPU sent/s",
        "GPU tok/s",
        "CPU sent/s",
        "CPU tok/s",
        "twin sent/s",
        "linear MiB",
        "all MiB",
        "min cos",
        "mean cos",
        "pipelines ms",
        "first batch ms",
    ];
    let mib = |b: u64| format!("{:.1}", b as f64 / (1 << 20) as f64);
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        cells.push(vec![
            match r.quantizer {
                Some(q) => format!("{} ({})", r.precision, q.name()),
                None => r.precision.clone(),
            },
            format!("{} x {}", r.batch, r.seq),
            format!(
                "{:.2} ({:.2}-{:.2})",
                r.gpu_ms_median, r.gpu_ms_min, r.gpu_ms_max
            ),
            format!("{:.1}", r.gpu_sentences_per_s),
            format!("{:.0}", r.gpu_tokens_per_s),
            opt(r.cpu_sentences_per_s),
            r.cpu_tokens_per_s.map_or("-".into(), |v| format!("{v:.0}")),
            opt(r.twin_sentences_per_s),
            mib(r.linear_weight_bytes),
            mib(r.weight_bytes),
            format!("{:.6}", r.min_cosine),
            format!("{:.6}", r.mean_cosine),
            format!("{:.0}", r.pipeline_ms),
            format!("{:.0}", r.first_run_ms),
        ]);
    }
    render(&cells)
}

/// Marks the last cell of a [`note_row`]: it spans the columns left after the leading cells.
const NOTE_MARK: char = '\u{1}';

/// A row whose leading cells sit under the first headings and whose `note` (a skip reason)
/// runs across every column after them, instead of being squeezed into one.
pub fn note_row(mut lead: Vec<String>, note: &str) -> Vec<String> {
    lead.push(format!("{NOTE_MARK}{note}"));
    lead
}

fn is_note(cell: &str) -> bool {
    cell.starts_with(NOTE_MARK)
}

/// Aligns a grid of cells as a Markdown table; the first row is the header.
///
/// Every row must have as many cells as the header, except a [`note_row`], whose note spans
/// the rest: a row that is neither is a bug in the caller (its cells would sit under the
/// wrong headings), so it panics rather than pad.
pub fn render(cells: &[Vec<String>]) -> String {
    let cols = cells.first().map_or(0, Vec::len);
    let spans = |r: &Vec<String>| r.len() <= cols && r.last().is_some_and(|c| is_note(c));
    if let Some(bad) = cells.iter().find(|r| r.len() != cols && !spans(r)) {
        panic!(
            "table row has {} cells for {cols} headings: {bad:?}",
            bad.len()
        );
    }
    let width: Vec<usize> = (0..cols)
        .map(|c| {
            cells
                .iter()
                .filter_map(|r| r.get(c).filter(|s| !is_note(s)))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |row: &[String]| {
        let mut s = String::from("|");
        for (c, w) in width.iter().enumerate() {
            let cell = row.get(c).map_or("", |s| s.as_str());
            if let Some(note) = cell.strip_prefix(NOTE_MARK) {
                // One cell across the remaining columns (Markdown renders the rest empty).
                let rest: usize = width[c..].iter().map(|w| w + 3).sum::<usize>() - 3;
                s.push_str(&format!(" {note:<rest$} |"));
                break;
            }
            s.push_str(&format!(" {cell:<w$} |"));
        }
        s.push('\n');
        s
    };
    let mut out = String::new();
    if let Some((head, body)) = cells.split_first() {
        out.push_str(&line(head));
        out.push('|');
        for w in &width {
            out.push_str(&format!("{}|", "-".repeat(w + 2)));
        }
        out.push('\n');
        for r in body {
            out.push_str(&line(r));
        }
    }
    out
}

/// Renders the `llm-bench` rows: llama-bench's speeds and llama-perplexity's accuracy.
pub fn llm_table(rows: &[crate::bench::llm::LlmRow]) -> String {
    let header = [
        "precision",
        "pp tok/s",
        "tg tok/s",
        "tg GB/s",
        "read GB/s",
        "% of read BW",
        "CPU pp tok/s",
        "CPU tg tok/s",
        "weights MiB",
        "KV MiB",
        "perplexity",
        "KLD mean",
        "top-1",
        "CPU ppl",
        "CPU KLD",
        "CPU top-1",
        "pass",
        "matrices",
        "decode kernel",
    ];
    let f = |v: Option<f64>, p: usize| v.map_or("-".to_string(), |v| format!("{v:.p$}"));
    let mib = |b: Option<u64>| f(b.map(|b| b as f64 / (1 << 20) as f64), 1);
    // A median with the spread of its runs, where there was more than one value.
    let spread = |v: Option<f64>, range: Option<[f64; 2]>| match (v, range) {
        (Some(v), Some([lo, hi])) if hi > lo => format!("{v:.2} ({lo:.2}-{hi:.2})"),
        _ => f(v, 2),
    };
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        if let Some(why) = &r.skipped {
            cells.push(note_row(
                vec![r.precision.clone()],
                &format!("skipped: {why}"),
            ));
            continue;
        }
        cells.push(vec![
            r.precision.clone(),
            spread(r.pp_tok_s, r.pp_tok_s_range),
            spread(r.tg_tok_s, r.tg_tok_s_range),
            f(r.tg_gbps, 3),
            f(r.read_gbps, 2),
            f(r.tg_roof_pct, 1),
            f(r.cpu_pp_tok_s, 1),
            f(r.cpu_tg_tok_s, 1),
            mib(r.weight_bytes),
            mib(r.kv_bytes),
            f(r.perplexity, 3),
            r.kld_mean.map_or("-".into(), |v| format!("{v:.5}")),
            r.top1_agreement
                .map_or("-".into(), |v| format!("{:.1}%", 100.0 * v)),
            f(r.cpu_perplexity, 3),
            r.cpu_kld_mean.map_or("-".into(), |v| format!("{v:.5}")),
            r.cpu_top1_agreement
                .map_or("-".into(), |v| format!("{:.1}%", 100.0 * v)),
            if r.passed { "ok" } else { "FAIL" }.into(),
            r.matrix_formats.clone().unwrap_or_default(),
            r.decode_kernel.clone().unwrap_or_default(),
        ]);
    }
    render(&cells)
}

/// The `llm-bench` rows as CSV (one header line, empty cells for nulls; columns added
/// since the first version go at the end, so that scripts reading by position keep working).
pub fn llm_csv(rows: &[crate::bench::llm::LlmRow]) -> String {
    let mut out = String::from(
        "precision,pp_tok_s,tg_tok_s,tg_gbps,tg_roof_pct,cpu_pp_tok_s,cpu_tg_tok_s,cpu_impl,\
         weight_bytes,kv_bytes,perplexity,kld_mean,top1_agreement,matrix_formats,decode_kernel,passed,\
         skipped,pp_tok_s_min,pp_tok_s_max,tg_tok_s_min,tg_tok_s_max,read_gbps,cpu_perplexity,\
         cpu_kld_mean,cpu_top1_agreement,cpu_skipped\n",
    );
    let f = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    let u = |v: Option<u64>| v.map_or(String::new(), |v| v.to_string());
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    for r in rows {
        out += &[
            r.precision.clone(),
            f(r.pp_tok_s),
            f(r.tg_tok_s),
            f(r.tg_gbps),
            f(r.tg_roof_pct),
            f(r.cpu_pp_tok_s),
            f(r.cpu_tg_tok_s),
            q(r.cpu_impl.as_deref().unwrap_or("")),
            u(r.weight_bytes),
            u(r.kv_bytes),
            f(r.perplexity),
            f(r.kld_mean),
            f(r.top1_agreement),
            q(r.matrix_formats.as_deref().unwrap_or("")),
            q(r.decode_kernel.as_deref().unwrap_or("")),
            r.passed.to_string(),
            q(r.skipped.as_deref().unwrap_or("")),
            f(r.pp_tok_s_range.map(|r| r[0])),
            f(r.pp_tok_s_range.map(|r| r[1])),
            f(r.tg_tok_s_range.map(|r| r[0])),
            f(r.tg_tok_s_range.map(|r| r[1])),
            f(r.read_gbps),
            f(r.cpu_perplexity),
            f(r.cpu_kld_mean),
            f(r.cpu_top1_agreement),
            q(r.cpu_skipped.as_deref().unwrap_or("")),
        ]
        .join(",");
        out.push('\n');
    }
    out
}

/// Renders a decode-step profile (`generate --profile`): per stage its dispatches, GPU ms
/// per token, share of the step, weight MB read and the bandwidth that makes; then the
/// time between dispatches and the step's total.
pub fn profile_table(profile: &crate::model::llama::profile::Profile) -> String {
    let stages = profile.stages();
    let between = profile.between_ms();
    let header = [
        "stage",
        "dispatches",
        "ms/token",
        "share",
        "weight MB",
        "GB/s",
    ];
    let total_ms: f64 = stages.iter().map(|s| s.ms).sum::<f64>() + between;
    let total_bytes: u64 = stages.iter().map(|s| s.weight_bytes).sum();
    let row = |name: &str, dispatches: usize, ms: f64, bytes: u64| {
        let gb_s =
            crate::model::llama::profile::gb_s(bytes, ms).map_or("-".into(), |g| format!("{g:.2}"));
        vec![
            name.to_string(),
            dispatches.to_string(),
            format!("{ms:.3}"),
            format!("{:.1}%", 100.0 * ms / total_ms.max(f64::MIN_POSITIVE)),
            if bytes > 0 {
                format!("{:.2}", bytes as f64 / 1e6)
            } else {
                "-".into()
            },
            gb_s,
        ]
    };
    let mut cells = vec![header.map(String::from).to_vec()];
    for s in &stages {
        cells.push(row(s.stage.name(), s.dispatches, s.ms, s.weight_bytes));
    }
    let mut gap = row("between dispatches", 0, between, 0);
    gap[1] = "-".into();
    cells.push(gap);
    let dispatches = stages.iter().map(|s| s.dispatches).sum();
    cells.push(row("total", dispatches, total_ms, total_bytes));
    render(&cells)
}

/// One row of a pruning table: precision, sparsity, method (None on dense rows), why it
/// was skipped, and its own cells.
type PruningRow<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    Vec<String>,
);

/// Renders a pruning table: precision, sparsity and method lead each row, then the
/// `columns`, or a note saying why the row was skipped.
fn pruning_table<'a>(columns: &[&str], rows: impl Iterator<Item = PruningRow<'a>>) -> String {
    let header = ["precision", "sparsity", "prune"].iter().chain(columns);
    let mut cells: Vec<Vec<String>> = vec![header.map(|s| s.to_string()).collect()];
    for (precision, sparsity, prune, skipped, rest) in rows {
        let lead = vec![
            precision.to_string(),
            sparsity.to_string(),
            prune.unwrap_or("-").to_string(),
        ];
        cells.push(match skipped {
            Some(why) => note_row(lead, &format!("skipped: {why}")),
            None => lead.into_iter().chain(rest).collect(),
        });
    }
    render(&cells)
}

fn opt_fixed(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.digits$}"))
}

fn mib(bytes: Option<u64>) -> Option<f64> {
    bytes.map(|b| b as f64 / (1 << 20) as f64)
}

/// Renders `llm-bench --sparsity`: the pruned decoder's accuracy per precision x pattern
/// x method.
pub fn llm_prune_table(rows: &[crate::bench::llm_prune::PruneRow]) -> String {
    let columns = [
        "perplexity",
        "vs dense",
        "KLD",
        "top-1",
        "linear MiB",
        "bits/w",
        "prune s",
        "GPU ppl",
        "pp tok/s",
        "tg tok/s",
        "tg vs dense",
        "GPU decode",
    ];
    pruning_table(
        &columns,
        rows.iter().map(|r| {
            let cells = vec![
                opt_fixed(r.perplexity, 3),
                r.perplexity_ratio
                    .map_or("-".into(), |v| format!("{v:.3}x")),
                opt_fixed(r.kld_mean, 4),
                opt_fixed(r.top1_agreement, 3),
                opt_fixed(mib(r.weight_bytes), 1),
                opt_fixed(r.bits_per_weight, 2),
                opt_fixed(r.prune_s, 1),
                opt_fixed(r.gpu_perplexity, 3),
                opt_fixed(r.pp_tok_s, 1),
                opt_fixed(r.tg_tok_s, 1),
                r.tg_vs_dense.map_or("-".into(), |v| format!("{v:.2}x")),
                match (&r.gpu_skipped, &r.decode_kernel) {
                    (Some(why), _) => format!("skipped: {why}"),
                    (None, Some(k)) => k.clone(),
                    (None, None) => "-".into(),
                },
            ];
            let (p, s) = (r.precision.as_str(), r.sparsity.as_str());
            (p, s, r.prune.as_deref(), r.skipped.as_deref(), cells)
        }),
    )
}

/// Renders `infer --sparsity`: the pruned encoder's cosines per precision x pattern x
/// method.
pub fn infer_prune_table(rows: &[crate::bench::infer_prune::EncoderPruneRow]) -> String {
    let columns = [
        "min cos",
        "mean cos",
        "linear MiB",
        "prune s",
        "GPU min cos",
        "GPU sent/s",
        "GPU kernel",
    ];
    pruning_table(
        &columns,
        rows.iter().map(|r| {
            let cells = vec![
                opt_fixed(r.min_cosine, 5),
                opt_fixed(r.mean_cosine, 5),
                opt_fixed(mib(r.weight_bytes), 2),
                opt_fixed(r.prune_s, 1),
                opt_fixed(r.gpu_min_cosine, 5),
                opt_fixed(r.gpu_sentences_per_s, 1),
                match (&r.gpu_skipped, &r.gpu_kernel) {
                    (Some(why), _) => format!("skipped: {why}"),
                    (None, Some(k)) => k.clone(),
                    (None, None) => "-".into(),
                },
            ];
            let (p, s) = (r.precision.as_str(), r.sparsity.as_str());
            (p, s, r.prune.as_deref(), r.skipped.as_deref(), cells)
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_row_spans_the_rest_and_does_not_widen_columns() {
        let cells = vec![
            vec!["a".to_string(), "bb".into(), "c".into(), "d".into()],
            vec!["1".to_string(), "2".into(), "3".into(), "4".into()],
            note_row(vec!["x".into()], "skipped: a long reason here"),
        ];
        let out = render(&cells);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "| a | bb | c | d |");
        assert_eq!(lines[3], "| x | skipped: a long reason here |");
    }

    fn llm_row() -> crate::bench::llm::LlmRow {
        crate::bench::llm::LlmRow {
            precision: "q4_1".into(),
            pp_tok_s: Some(12.5),
            tg_tok_s: Some(15.0),
            pp_tok_s_range: Some([12.5, 12.5]),
            tg_tok_s_range: Some([11.25, 21.5]),
            cpu_pp_tok_s: None,
            cpu_tg_tok_s: None,
            cpu_impl: None,
            cpu_perplexity: Some(9.75),
            cpu_kld_mean: None,
            cpu_top1_agreement: None,
            cpu_skipped: None,
            weight_bytes: Some(84 << 20),
            kv_bytes: Some(1 << 20),
            perplexity: Some(9.5),
            kld_mean: Some(0.07),
            top1_agreement: Some(0.8),
            tg_gbps: Some(1.32),
            tg_roof_pct: Some(26.4),
            read_gbps: Some(5.0),
            matrix_formats: Some("q4_1 x211".into()),
            decode_kernel: Some("gemv-bcast 16x8".into()),
            passed: true,
            skipped: None,
        }
    }

    #[test]
    fn llm_rows_show_the_spread_of_their_runs_and_the_bandwidth_they_are_read_against() {
        let table = llm_table(&[llm_row()]);
        let row = table.lines().nth(2).unwrap();
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        // A single value where the runs agree, median (min-max) where they did not.
        assert_eq!(
            &cells[1..6],
            ["q4_1", "12.50", "15.00 (11.25-21.50)", "1.320", "5.00"]
        );
        let csv = llm_csv(&[llm_row()]);
        let mut lines = csv.lines();
        let head: Vec<&str> = lines.next().unwrap().split(',').collect();
        let vals: Vec<&str> = lines.next().unwrap().split(',').collect();
        // The first columns keep their positions; the spread and bandwidth come last.
        assert_eq!(&head[..3], ["precision", "pp_tok_s", "tg_tok_s"]);
        assert_eq!(head.len(), vals.len());
        let col = |name: &str| vals[head.iter().position(|h| *h == name).unwrap()];
        assert_eq!(col("tg_tok_s_min"), "11.25");
        assert_eq!(col("tg_tok_s_max"), "21.5");
        assert_eq!(col("read_gbps"), "5");
        assert_eq!(col("cpu_perplexity"), "9.75");
        assert_eq!(head.last(), Some(&"cpu_skipped"));
    }

    #[test]
    #[should_panic(expected = "cells for 2 headings")]
    fn a_short_row_without_a_note_is_a_bug() {
        render(&[vec!["a".into(), "b".into()], vec!["1".into()]]);
    }
}
