//! Writing a sweep: JSON, flat CSV, SVG charts (throughput per precision, roofline) and a
//! Markdown summary that embeds them.

use std::fmt::Write as _;
use std::path::Path;

use plotters::element::ComposedElement;
use plotters::prelude::*;

use crate::bench::ceilings::Ceilings;
use crate::bench::suite::{SuiteReport, SuiteRow};
use crate::bench::table::{note_row, render};
use crate::error::{LabError, Result};

fn io(path: &Path) -> impl Fn(std::io::Error) -> LabError + '_ {
    move |source| LabError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Fails now, not after an hour of sweeping, if `path` cannot be written.
pub fn check_writable(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(|_| ())
        .map_err(io(path))
}

/// The whole report as JSON.
pub fn json(report: &SuiteReport) -> String {
    serde_json::to_string_pretty(report).expect("the report serialises")
}

/// CSV columns, in order.
pub const CSV_COLUMNS: [&str; 25] = [
    "adapter",
    "backend",
    "precision",
    "kernel",
    "m",
    "n",
    "k",
    "gpu_ms_median",
    "gflops",
    "gbps",
    "intensity",
    "working_set_bytes",
    "memory_level",
    "roofline_gflops",
    "fraction_of_roofline",
    "cpu_ms",
    "speedup_vs_cpu",
    "rel_err",
    "passed",
    "tuned",
    "skipped",
    "weight_bytes",
    "sparsity",
    "prune",
    "speedup_vs_dense",
];

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The rows as flat CSV (one header line, one line per row; empty cells for nulls).
pub fn csv(report: &SuiteReport) -> String {
    let num = |v: f64| {
        if v.is_finite() {
            format!("{v}")
        } else {
            String::new()
        }
    };
    let opt = |v: Option<f64>| v.map_or(String::new(), num);
    let mut out = CSV_COLUMNS.join(",") + "\n";
    for r in &report.rows {
        let cells = [
            csv_field(&r.adapter),
            r.backend.clone(),
            r.precision.clone(),
            r.kernel.clone(),
            r.m.to_string(),
            r.n.to_string(),
            r.k.to_string(),
            num(r.gpu_ms_median),
            num(r.gflops),
            opt(r.gbps),
            num(r.intensity),
            num(r.working_set_bytes),
            csv_field(&r.memory_level),
            num(r.roofline_gflops),
            num(r.fraction_of_roofline),
            opt(r.cpu_ms),
            opt(r.speedup_vs_cpu),
            num(r.rel_err),
            r.passed.to_string(),
            csv_field(&r.tuned),
            csv_field(r.skipped.as_deref().unwrap_or("")),
            r.weight_bytes.map_or(String::new(), |b| b.to_string()),
            r.sparsity.clone().unwrap_or_default(),
            r.prune.clone().unwrap_or_default(),
            opt(r.speedup_vs_dense),
        ];
        out += &cells.join(",");
        out.push('\n');
    }
    out
}

/// One color per precision (in `Precision::ALL` order), the same on every device and chart.
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
];

fn precision_color(name: &str) -> RGBColor {
    let i = crate::formats::precision::Precision::ALL
        .iter()
        .position(|p| p.name() == name)
        .unwrap_or(COLORS.len() - 1);
    COLORS[i % COLORS.len()]
}

/// Chart size: the plot on the left, the legend in a column of its own on the right (18
/// series inside the plot hid the data).
const CHART: (u32, u32) = (1180, 620);
const LEGEND_W: u32 = 330;

fn plot_err(e: impl std::fmt::Display) -> LabError {
    LabError::Shape(format!("drawing a chart: {e}"))
}

fn ok_rows(report: &SuiteReport) -> Vec<&SuiteRow> {
    report
        .rows
        .iter()
        .filter(|r| r.skipped.is_none() && r.gflops.is_finite() && r.gflops > 0.0)
        .collect()
}

fn range(vals: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = vals.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    if lo > hi {
        (0.1, 10.0)
    } else {
        (lo / 2.0, hi * 2.0)
    }
}

/// Devices in first-seen order: each gets a marker shape (and the CPU a dashed line).
fn devices(rows: &[&SuiteRow]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in rows {
        if !out.contains(&r.device()) {
            out.push(r.device());
        }
    }
    out
}

/// Precisions in table order, those present in `rows`.
fn precisions(rows: &[&SuiteRow]) -> Vec<String> {
    crate::formats::precision::Precision::ALL
        .iter()
        .map(|p| p.name().to_string())
        .filter(|n| rows.iter().any(|r| r.precision == *n))
        .collect()
}

/// A filled polygon with an outline, drawn at a point.
type Marker<C, DB> = ComposedElement<C, DB, Polygon<(i32, i32)>, PathElement<(i32, i32)>>;

/// A marker at `at` (data coordinates in a chart, pixels in a plain area): shape 0 circle
/// (an octagon), 1 triangle, 2 square, 3+ diamond.
fn marker<C: Clone, DB: DrawingBackend>(at: C, shape: usize, color: RGBColor) -> Marker<C, DB> {
    let r = 4;
    let pts = match shape {
        0 => vec![
            (-2, -4),
            (2, -4),
            (4, -2),
            (4, 2),
            (2, 4),
            (-2, 4),
            (-4, 2),
            (-4, -2),
        ],
        1 => vec![(0, -r - 1), (-r - 1, r), (r + 1, r)],
        2 => vec![(-r, -r), (r, -r), (r, r), (-r, r)],
        _ => vec![(0, -r - 1), (r + 1, 0), (0, r + 1), (-r - 1, 0)],
    };
    let mut outline = pts.clone();
    outline.push(pts[0]);
    EmptyElement::at(at)
        + Polygon::new(pts, color.filled())
        + PathElement::new(outline, BLACK.mix(0.5).stroke_width(1))
}

/// The legend column: a color per precision, then a marker (and line) style per device.
fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    precisions: &[String],
    devices: &[String],
    lines: bool,
    extra: &[(String, RGBAColor)],
) -> Result<()> {
    let font = ("sans-serif", 14).into_font();
    let bold = ("sans-serif", 15).into_font().style(FontStyle::Bold);
    let mut y = 50;
    let text = |t: &str, x: i32, y: i32, f: &FontDesc| {
        area.draw(&Text::new(t.to_string(), (x, y - 7), f.clone()))
            .map_err(plot_err)
    };
    text("precision (color)", 10, y, &bold)?;
    for p in precisions {
        y += 20;
        let c = precision_color(p);
        area.draw(&Rectangle::new([(12, y - 5), (32, y + 5)], c.filled()))
            .map_err(plot_err)?;
        text(p, 40, y, &font)?;
    }
    y += 34;
    text("device (marker)", 10, y, &bold)?;
    for (i, d) in devices.iter().enumerate() {
        y += 20;
        if lines {
            let style = BLACK.mix(0.6).stroke_width(2);
            if d == "cpu" {
                for x0 in (8..36).step_by(8) {
                    area.draw(&PathElement::new(vec![(x0, y), (x0 + 4, y)], style))
                        .map_err(plot_err)?;
                }
            } else {
                area.draw(&PathElement::new(vec![(8, y), (36, y)], style))
                    .map_err(plot_err)?;
            }
        }
        area.draw(&marker((22, y), i, RGBColor(60, 60, 60)))
            .map_err(plot_err)?;
        let label = if d == "cpu" && lines {
            "cpu (dashed)".to_string()
        } else {
            d.clone()
        };
        text(&label, 40, y, &font)?;
    }
    if !extra.is_empty() {
        y += 34;
        text("measured ceilings", 10, y, &bold)?;
        for (name, color) in extra {
            y += 20;
            area.draw(&PathElement::new(
                vec![(8, y), (36, y)],
                color.stroke_width(2),
            ))
            .map_err(plot_err)?;
            text(name, 40, y, &font)?;
        }
    }
    Ok(())
}

/// GEMM throughput per precision against size, log-log: a line per (device, precision,
/// kernel), colored by precision, marked by device, the CPU baseline dashed.
pub fn throughput_svg(report: &SuiteReport, path: &Path) -> Result<()> {
    let rows: Vec<&SuiteRow> = ok_rows(report).into_iter().filter(|r| r.m == r.n).collect();
    let (y0, y1) = range(rows.iter().map(|r| r.gflops));
    // x is log2(n) on a linear axis, so every power-of-two size gets its own label.
    let (x0, x1) = rows
        .iter()
        .map(|r| (r.n as f64).log2())
        .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    let (x0, x1) = if x0 > x1 {
        (7.0, 12.0)
    } else {
        (x0 - 0.5, x1 + 0.5)
    };
    // Drawn into memory, then written atomically.
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, CHART).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let (left, right) = root.split_horizontally(CHART.0 - LEGEND_W);
        let mut chart = ChartBuilder::on(&left)
            .caption(
                "GEMM throughput per precision (m = n = k)",
                ("sans-serif", 22),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_labels(((x1 - x0).ceil() as usize + 1).max(2))
            .y_labels(12)
            .x_label_formatter(&|v| {
                if (v - v.round()).abs() < 1e-6 {
                    format!("{}", 2f64.powf(v.round()))
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|v| fmt_num(*v))
            .x_desc("matrix size n (m = n = k), log scale")
            .y_desc("throughput, GFLOP/s (GOP/s for int8), log scale")
            .draw()
            .map_err(plot_err)?;
        let devs = devices(&rows);
        // (device, precision, kernel) -> points.
        type Key = (String, String, String);
        let mut series: Vec<(Key, Vec<(f64, f64)>)> = Vec::new();
        for r in &rows {
            let key = (
                r.device(),
                r.precision.clone(),
                r.kernel.clone() + &r.label(),
            );
            let pt = ((r.n as f64).log2(), r.gflops);
            match series.iter_mut().find(|(k, _)| *k == key) {
                Some((_, pts)) => pts.push(pt),
                None => series.push((key, vec![pt])),
            }
        }
        for ((device, precision, _), mut pts) in series {
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let color = precision_color(&precision);
            let style = color.stroke_width(2);
            if device == "cpu" {
                chart
                    .draw_series(DashedLineSeries::new(pts.clone(), 6, 4, style))
                    .map_err(plot_err)?;
            } else {
                chart
                    .draw_series(LineSeries::new(pts.clone(), style))
                    .map_err(plot_err)?;
            }
            let shape = devs.iter().position(|d| *d == device).unwrap_or(0);
            chart
                .draw_series(pts.into_iter().map(|p| marker(p, shape, color)))
                .map_err(plot_err)?;
        }
        legend(&right, &precisions(&rows), &devs, true, &[])?;
        root.present().map_err(plot_err)?;
    }
    write(path, &svg)
}

/// Axis numbers without trailing noise: 0.1, 2.5, 40, 1000.
fn fmt_num(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn short(adapter: &str) -> String {
    adapter
        .split(['(', ','])
        .next()
        .unwrap_or(adapter)
        .trim()
        .to_string()
}

/// The roofline: each device's measured bandwidth slope and arithmetic peaks (gray lines),
/// and every row as a point at (intensity, throughput), colored by precision, marked by
/// device, log-log.
pub fn roofline_svg(report: &SuiteReport, path: &Path) -> Result<()> {
    let rows = ok_rows(report);
    // One roof per device and arithmetic: f32 (and f16, int8 where measured).
    let mut peaks: Vec<(String, f64, f64)> = vec![(
        "CPU f32".into(),
        report.cpu.bandwidth_gbps,
        report.cpu.f32_gflops,
    )];
    for a in &report.adapters {
        let c = &a.ceilings;
        let name = format!("{} {}", short(&a.name), a.backend);
        peaks.push((format!("{name} f32"), c.bandwidth_gbps, c.f32_gflops));
        if let Some(p) = c.f16_gflops {
            peaks.push((format!("{name} f16"), c.bandwidth_gbps, p));
        }
        if let Some(p) = c.int8_gops {
            peaks.push((format!("{name} int8"), c.bandwidth_gbps, p));
        }
    }
    let (x0, x1) = range(rows.iter().map(|r| r.intensity).chain([0.1, 1000.0]));
    let (y0, y1) = range(
        rows.iter()
            .map(|r| r.gflops)
            .chain(peaks.iter().map(|p| p.2))
            .chain(peaks.iter().map(|p| p.1 * 0.1)),
    );
    // Drawn into memory, then written atomically.
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, CHART).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let (left, right) = root.split_horizontally(CHART.0 - LEGEND_W);
        let mut chart = ChartBuilder::on(&left)
            .caption(
                "Roofline: measured ceilings and every row",
                ("sans-serif", 22),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_labels(12)
            .y_labels(12)
            .x_label_formatter(&|v| fmt_num(*v))
            .y_label_formatter(&|v| fmt_num(*v))
            .x_desc("arithmetic intensity, FLOP per byte of compulsory traffic, log scale")
            .y_desc("throughput, GFLOP/s (GOP/s for int8), log scale")
            .draw()
            .map_err(plot_err)?;
        let mut roofs = Vec::new();
        for (i, (name, bw, top)) in peaks.iter().enumerate() {
            let color = BLACK.mix(if i == 0 {
                0.35
            } else {
                0.95 - 0.2 * ((i - 1) % 3) as f64
            });
            let knee = top / bw;
            let pts = vec![
                (x0, bw * x0),
                (knee.clamp(x0, x1), (bw * knee).min(*top)),
                (x1, *top),
            ];
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                .map_err(plot_err)?;
            roofs.push((format!("{name}: {bw:.1} GB/s, {top:.0} G/s"), color));
        }
        let devs = devices(&rows);
        chart
            .draw_series(rows.iter().map(|r| {
                let shape = devs.iter().position(|d| *d == r.device()).unwrap_or(0);
                marker(
                    (r.intensity, r.gflops),
                    shape,
                    precision_color(&r.precision),
                )
            }))
            .map_err(plot_err)?;
        legend(&right, &precisions(&rows), &devs, false, &roofs)?;
        root.present().map_err(plot_err)?;
    }
    write(path, &svg)
}

/// The measured ceilings of every device: peaks, and the bandwidth of each memory level
/// (working sets it holds), as held to (the higher of before and after).
pub fn ceilings_table(report: &SuiteReport) -> String {
    let mut devices: Vec<(String, Ceilings)> = report
        .adapters
        .iter()
        .map(|a| {
            (
                format!("{} ({}, {})", a.name, a.backend, a.driver),
                a.ceilings.clone(),
            )
        })
        .collect();
    devices.push(("CPU".into(), report.cpu.clone()));
    ceilings_rows(&devices)
}

/// One row of ceilings per (device name, ceilings).
pub fn ceilings_rows(devices: &[(String, Ceilings)]) -> String {
    let mut cells = vec![[
        "device",
        "f32 GFLOP/s",
        "f16 GFLOP/s",
        "int8 GOP/s",
        "bandwidth GB/s per level (holds up to)",
        "how",
    ]
    .map(String::from)
    .to_vec()];
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    let size = |b: Option<u64>| match b {
        None => "any".to_string(),
        Some(b) if b < 1 << 20 => format!("{} KiB", b >> 10),
        Some(b) => format!("{} MiB", b >> 20),
    };
    for (name, c) in devices {
        let levels: Vec<String> = c
            .levels
            .iter()
            .map(|l| format!("{} {:.1} ({})", l.name, l.gbps, size(l.fits_bytes)))
            .collect();
        cells.push(vec![
            name.clone(),
            format!("{:.1}", c.f32_gflops),
            opt(c.f16_gflops),
            opt(c.int8_gops),
            levels.join("; "),
            c.method.clone(),
        ]);
    }
    render(&cells)
}

/// A Markdown summary: ceilings, the rows, the charts (written beside it).
pub fn markdown(report: &SuiteReport, charts: &[(&str, &str)]) -> String {
    let mut md = String::from("# wgpu-lab bench\n\n## Measured ceilings\n\n");
    md += &ceilings_table(report);
    let disturbed = report.disturbed();
    if disturbed.is_empty() {
        md += "\nCeilings measured before and after each device's rows agreed within the noise; \
               rows are held to the higher of the two.\n";
    } else {
        md += "\n**Disturbed sweep**: these ceilings moved by more than the noise between the two \
               measurements, so the machine's load changed; rows are held to the higher one.\n\n";
        for d in disturbed {
            let _ = writeln!(md, "- {d}");
        }
    }
    md += "\n## Side by side: the best kernel of each precision, per device\n\n";
    md += &side_by_side(&report.rows);
    md += "\n## Rows\n\n";
    md += &rows_table(&report.rows);
    for (title, file) in charts {
        let _ = write!(md, "\n## {title}\n\n![{title}]({file})\n");
    }
    if !report.model.is_empty() {
        md += "\n## all-MiniLM-L6-v2\n\n";
        md += &crate::bench::table::infer_table(&report.model);
    }
    for l in &report.llm_prune {
        let _ = write!(
            md,
            "\n## {} pruned on {}\n\nThe CPU twin over {} text tokens against the dense f32 \
             twin; calibration {} tokens.\n\n",
            l.model, l.adapter, l.text_tokens, l.calibration_tokens
        );
        md += &crate::bench::table::llm_prune_table(&l.rows);
    }
    for e in &report.encoder_prune {
        let _ = write!(md, "\n## {} pruned on {}\n\n", e.model, e.adapter);
        md += &crate::bench::table::infer_prune_table(&e.rows);
    }
    md
}

/// One line per (problem, precision), one column group per device (each adapter and the
/// CPU): the fastest passing kernel there, its GFLOP/s and its fraction of that device's
/// roofline. `-` where the device has no passing row (skipped, failed or not run).
pub fn side_by_side(rows: &[SuiteRow]) -> String {
    let ok: Vec<&SuiteRow> = rows
        .iter()
        .filter(|r| r.skipped.is_none() && r.passed && r.gflops.is_finite())
        .collect();
    let mut devices: Vec<String> = Vec::new();
    let mut keys: Vec<(usize, usize, usize, String)> = Vec::new();
    for r in rows {
        if !devices.contains(&r.device()) {
            devices.push(r.device());
        }
        let key = (r.m, r.n, r.k, r.label());
        if r.precision != "all" && !keys.contains(&key) {
            keys.push(key);
        }
    }
    let mut header = vec!["m x n x k".to_string(), "precision".to_string()];
    for d in &devices {
        header.push(format!("{d}: kernel"));
        header.push("GFLOP/s".into());
        header.push("of roofline".into());
    }
    let mut cells = vec![header];
    for (m, n, k, precision) in &keys {
        let mut line = vec![format!("{m}x{n}x{k}"), precision.clone()];
        for d in &devices {
            let best = ok
                .iter()
                .filter(|r| {
                    r.device() == *d && (r.m, r.n, r.k) == (*m, *n, *k) && r.label() == *precision
                })
                .max_by(|a, b| a.gflops.total_cmp(&b.gflops));
            match best {
                Some(r) => line.extend([
                    r.kernel.clone(),
                    format!("{:.2}", r.gflops),
                    format!("{:.1}%", 100.0 * r.fraction_of_roofline),
                ]),
                None => line.extend(["-".to_string(), "-".into(), "-".into()]),
            }
        }
        cells.push(line);
    }
    render(&cells)
}

/// The rows as an aligned table (with a `vs dense` column when the sweep has sparse rows).
pub fn rows_table(rows: &[SuiteRow]) -> String {
    let sparse = rows.iter().any(|r| r.prune.is_some());
    let mut header = vec![[
        "device",
        "precision",
        "kernel",
        "m x n x k",
        "ms",
        "GFLOP/s",
        "GB/s",
        "FLOP/B",
        "level",
        "roofline",
        "of roofline",
        "vs CPU",
        "rel err",
        "pass",
    ]
    .map(String::from)
    .to_vec()];
    if sparse {
        header[0].insert(12, "vs dense".into());
    }
    let mut cells = header;
    for r in rows {
        let shape = format!("{}x{}x{}", r.m, r.n, r.k);
        if let Some(why) = &r.skipped {
            cells.push(note_row(
                vec![r.device(), r.label(), r.kernel.clone(), shape],
                &format!("skipped: {why}"),
            ));
            continue;
        }
        let mut line = vec![
            r.device(),
            r.label(),
            r.kernel.clone(),
            shape,
            format!("{:.3}", r.gpu_ms_median),
            format!("{:.2}", r.gflops),
            r.gbps.map_or("-".into(), |v| format!("{v:.2}")),
            format!("{:.1}", r.intensity),
            r.memory_level.clone(),
            format!("{:.1}", r.roofline_gflops),
            format!("{:.1}%", 100.0 * r.fraction_of_roofline),
            r.speedup_vs_cpu.map_or("-".into(), |v| format!("{v:.2}x")),
            format!("{:.1e}", r.rel_err),
            if r.passed { "ok" } else { "FAIL" }.into(),
        ];
        if sparse {
            let vs = r
                .speedup_vs_dense
                .map_or("-".into(), |v| format!("{v:.2}x"));
            line.insert(12, vs);
        }
        cells.push(line);
    }
    render(&cells)
}

/// Writes `text` to `path`, atomically (`crate::atomic`).
pub fn write(path: &Path, text: &str) -> Result<()> {
    crate::atomic::write(path, text).map_err(io(path))
}
