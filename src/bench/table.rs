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

/// Aligns a grid of cells as a Markdown table; the first row is the header.
pub fn render(cells: &[Vec<String>]) -> String {
    let cols = cells.iter().map(|r| r.len()).max().unwrap_or(0);
    let width: Vec<usize> = (0..cols)
        .map(|c| {
            cells
                .iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |row: &[String]| {
        let mut s = String::from("|");
        for (c, w) in width.iter().enumerate() {
            let cell = row.get(c).map_or("", |s| s.as_str());
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
