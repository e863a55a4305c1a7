//! `wgpu-lab bench`: a small sweep end to end (rows, roofline, JSON/CSV/SVG/Markdown), a
//! size over the adapter's limits skipped with the reason while the rest goes on, and
//! unwritable outputs refused before any work.

mod common;

use wgpu_lab::bench::report;
use wgpu_lab::bench::suite::{self, SuiteRequest};
use wgpu_lab::formats::precision::Precision;
use wgpu_lab::gpu::measure::Runs;

use common::{bin, tmp};

#[test]
fn bench_small_sweep_has_rooflines_and_every_output() {
    if common::ctx().is_none() {
        return;
    }
    let (json, csv, svg, dir) = (tmp("b.json"), tmp("b.csv"), tmp("b.svg"), tmp("report"));
    common::run_ok(
        bin()
            .args([
                "bench",
                "--sizes",
                "32,64",
                "--precision",
                "f32,int8,q4_0",
                "--gemv",
            ])
            .args(["--repeat", "1", "--warmup", "0", "--json"])
            .arg(&json)
            .arg("--csv")
            .arg(&csv)
            .arg("--plot")
            .arg(&svg)
            .arg("--report")
            .arg(&dir),
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let a = &v["adapters"][0];
    for key in ["bandwidth_gbps", "f32_gflops", "f16_gflops", "int8_gops"] {
        assert!(a["ceilings"].get(key).is_some(), "ceilings lack {key}");
    }
    assert!(a["ceilings"]["f32_gflops"].as_f64().unwrap() > 0.0);
    assert!(v["cpu"]["f32_gflops"].as_f64().unwrap() > 0.0);
    let rows = v["rows"].as_array().unwrap();
    // 2 GEMM + 2 GEMV problems: a CPU row each, f32/int8/q4_0, plus gemv kernels for m = 1.
    assert!(rows.len() >= 4 * 4, "{} rows", rows.len());
    for r in rows {
        for key in [
            "adapter",
            "precision",
            "kernel",
            "m",
            "n",
            "k",
            "gpu_ms_median",
            "gflops",
            "gbps",
            "intensity",
            "roofline_gflops",
            "fraction_of_roofline",
            "cpu_ms",
            "speedup_vs_cpu",
            "rel_err",
            "passed",
            "tuned",
        ] {
            assert!(r.get(key).is_some(), "missing {key} in {r}");
        }
        assert_eq!(r["passed"], true, "{r}");
        let f = r["fraction_of_roofline"].as_f64().unwrap();
        assert!(f > 0.0 && f.is_finite(), "{r}");
        assert!(!r["memory_level"].as_str().unwrap().is_empty(), "{r}");
    }
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(csv.lines().next().unwrap(), report::CSV_COLUMNS.join(","));
    assert_eq!(csv.lines().count(), rows.len() + 1);
    for f in [
        svg.clone(),
        svg.with_file_name("b-roofline.svg"),
        dir.join("throughput.svg"),
        dir.join("roofline.svg"),
    ] {
        let s = std::fs::read_to_string(&f).unwrap();
        assert!(
            s.starts_with("<svg") && s.contains("GFLOP/s"),
            "{}",
            f.display()
        );
    }
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("Measured ceilings") && md.contains("roofline.svg"));
    // Side by side: a column group per device (the CPU and the adapter), a line per problem
    // and precision, the GEMV lines naming the faster of the adapter's two kernels.
    let side = md
        .split("## Side by side")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a side-by-side section");
    let header = side.lines().find(|l| l.starts_with("| m x n x k")).unwrap();
    assert!(header.contains("cpu: kernel"), "{header}");
    assert_eq!(header.matches(": kernel").count(), 2, "{header}");
    let lines: Vec<&str> = side
        .lines()
        .filter(|l| l.starts_with("| 1x64x64"))
        .collect();
    assert_eq!(lines.len(), 3, "{side}");
    let best_gemv = |precision: &str| -> f64 {
        rows.iter()
            .filter(|r| {
                r["adapter"] != "cpu" && r["precision"] == precision && r["m"] == 1 && r["n"] == 64
            })
            .map(|r| r["gflops"].as_f64().unwrap())
            .fold(0.0, f64::max)
    };
    for line in lines {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let gpu_gflops: f64 = cells[7].parse().unwrap();
        assert!((gpu_gflops - best_gemv(cells[2])).abs() < 0.01, "{line}");
    }
}

#[test]
fn bench_refuses_unwritable_outputs_before_running() {
    let start = std::time::Instant::now();
    let out = common::run_fails(bin().args([
        "bench",
        "--sizes",
        "4096",
        "--json",
        "/proc/wgpu-lab-cannot-write/x.json",
    ]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/proc/wgpu-lab-cannot-write"), "{err}");
    assert!(start.elapsed().as_secs() < 20, "it ran the sweep first");
}

#[test]
fn bench_skips_a_precision_over_the_limit_and_goes_on() {
    let Some(ctx) = common::ctx() else { return };
    // GEMV 1 x 6016 x 6016: 138 MiB of f32 weights (over lavapipe's 128 MiB binding), 19 MiB as q4_0.
    let req = SuiteRequest {
        sizes: vec![6016],
        precisions: Precision::parse_list("f32,q4_0").unwrap(),
        gemv: true,
        model: None,
        runs: Runs {
            warmup: 0,
            repeat: 1,
        },
        tune: Default::default(),
        sparse: None,
    };
    // Only the GEMV problem: drop the 6016^3 GEMM (its f64 reference is minutes of CPU).
    let gemv_only = SuiteRequest {
        sizes: vec![6016],
        ..req
    };
    let mut rows = Vec::new();
    for (_, m, n, k) in suite::problems(&gemv_only).into_iter().filter(|p| p.1 == 1) {
        let mut rng = wgpu_lab::rng::Rng::new(1);
        let a = rng.vec_f32(m * k);
        let w = rng.vec_f32(n * k);
        let preq = wgpu_lab::bench::precision::PrecisionRequest {
            m,
            n,
            k,
            precisions: gemv_only.precisions.clone(),
            kernel: None,
            runs: gemv_only.runs,
            cpu_baseline: false,
            tuned: Default::default(),
            extra: Vec::new(),
        };
        rows.extend(wgpu_lab::bench::precision::run(ctx, &preq, &a, &w).unwrap());
    }
    let limit = ctx.limits().max_storage_buffer_binding_size;
    let f32_rows: Vec<_> = rows.iter().filter(|r| r.precision == "f32").collect();
    if limit < 6016 * 6016 * 4 {
        assert!(f32_rows.iter().all(|r| r
            .skipped
            .as_deref()
            .is_some_and(|s| s.contains("max_storage_buffer_binding_size"))));
    }
    let q4: Vec<_> = rows.iter().filter(|r| r.precision == "q4_0").collect();
    assert!(
        !q4.is_empty() && q4.iter().all(|r| r.skipped.is_none() && r.passed),
        "{:?}",
        q4.iter()
            .map(|r| (&r.kernel, &r.skipped, r.rel_err))
            .collect::<Vec<_>>()
    );
}

/// The bar: on `bench --quick`, no row (GPU or CPU) above 105% of the roofline of
/// the memory level it streams from. A row above it means a ceiling that does not hold.
#[test]
fn bench_quick_no_row_above_its_roofline() {
    if common::ctx().is_none() {
        return;
    }
    let out = common::run_ok(bin().args(["bench", "--quick", "--json", "-"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert!(rows.iter().any(|r| r["adapter"] == "cpu"));
    let mut over = Vec::new();
    for r in rows.iter().filter(|r| r["skipped"].is_null()) {
        let f = r["fraction_of_roofline"].as_f64().unwrap();
        if f > 1.05 {
            over.push(format!(
                "{} {} {} {}x{}x{}: {:.0}% of the {} roofline",
                r["adapter"],
                r["precision"],
                r["kernel"],
                r["m"],
                r["n"],
                r["k"],
                100.0 * f,
                r["memory_level"]
            ));
        }
    }
    assert!(over.is_empty(), "rows above 105%:\n{}", over.join("\n"));
    // Ceilings were measured twice; every level is named with the sizes it holds.
    assert!(v["cpu_after"]["levels"].as_array().unwrap().len() >= 2);
    assert!(
        v["adapters"][0]["ceilings_after"]["f32_gflops"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

#[test]
fn ceiling_copy_and_read_move_the_right_bytes_and_report_a_bandwidth() {
    let Some(ctx) = common::ctx() else { return };
    use wgpu_lab::bench::ceilings::gpu;
    // Both check every word they moved (the copied pattern, the read sums) and fail if any
    // is wrong; odd sizes leave partial workgroups.
    for bytes in [1 << 20, 3 * 4096 + 512] {
        let copy = gpu::gpu_bandwidth(ctx, bytes).unwrap();
        let read = gpu::gpu_read_bandwidth(ctx, bytes).unwrap();
        assert!(copy.is_finite() && copy > 0.0, "{copy}");
        assert!(read.is_finite() && read > 0.0, "{read}");
    }
}

#[test]
fn bench_survives_a_device_lost_mid_sweep_and_keeps_what_it_measured() {
    if common::ctx().is_none() {
        return;
    }
    // A device of its own: this test destroys it.
    let ctx = wgpu_lab::Context::new(&wgpu_lab::AdapterSelector {
        adapter: std::env::var("WGPU_LAB_TEST_ADAPTER").ok(),
        ..Default::default()
    })
    .unwrap();
    let req = SuiteRequest {
        sizes: vec![32, 48],
        precisions: Precision::parse_list("f32,q8_0").unwrap(),
        gemv: false,
        model: None,
        runs: Runs {
            warmup: 0,
            repeat: 1,
        },
        tune: Default::default(),
        sparse: None,
    };
    let ctxs = [ctx];
    let mut problems = 0;
    let mut saved = Vec::new();
    // Lose the device just before the second problem.
    let report = suite::run(
        &ctxs,
        &req,
        &mut |label| {
            if label.contains(" on ") && !label.starts_with("ceilings") {
                problems += 1;
                if problems == 2 {
                    ctxs[0].device.destroy();
                }
            }
        },
        &mut |r| {
            saved.push(r.rows.len());
            Ok(())
        },
    )
    .unwrap();
    // The first problem measured and passed; the second failed with the reason.
    let first: Vec<_> = report
        .rows
        .iter()
        .filter(|r| r.m == 32 && r.adapter != "cpu")
        .collect();
    assert!(
        !first.is_empty() && first.iter().all(|r| r.passed),
        "{first:?}"
    );
    let second: Vec<_> = report
        .rows
        .iter()
        .filter(|r| r.m == 48 && r.adapter != "cpu")
        .collect();
    assert!(
        !second.is_empty() && second.iter().all(|r| !r.passed),
        "{second:?}"
    );
    let why = second[0].skipped.as_deref().unwrap_or("");
    assert!(why.to_lowercase().contains("lost"), "reason: {why}");
    // Results were saved after each problem (the first before the loss), and once more at
    // the end, with every row placed on the final ceilings.
    assert_eq!(saved.len(), 3, "{saved:?}");
    assert!(saved[0] > 0 && saved[1] > saved[0], "{saved:?}");
    // The lost device could not be measured again; the report says so.
    assert!(
        report.adapters[0].ceilings_after.is_none()
            && report.adapters[0].disturbed[0].contains("not measured again"),
        "{:?}",
        report.adapters[0].disturbed
    );
}

/// `bench --sparsity`: every problem gains its pruned rows per precision (compressed, run by
/// the sparse kernels, with `vs dense`), the precision with no sparse kernel a skipped row
/// with the reason, the unstructured pattern a masked-dense row; JSON, CSV and the table
/// carry the sparsity and the method.
#[test]
fn bench_sparsity_adds_pruned_rows_per_precision() {
    if common::ctx().is_none() {
        return;
    }
    let (json, csv) = (tmp("bs.json"), tmp("bs.csv"));
    let out = common::run_ok(
        bin()
            .args([
                "bench",
                "--sizes",
                // Not a multiple of the kernels' tiles; a multiple of q4_0's 32-value blocks.
                "96",
                "--gemv",
                "--precision",
                "f32,int8,q4_0",
            ])
            .args(["--sparsity", "2:4,u50", "--prune", "magnitude"])
            .args(["--repeat", "1", "--warmup", "0", "--json"])
            .arg(&json)
            .arg("--csv")
            .arg(&csv),
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("vs dense") && table.contains("q4_0 2:4 magnitude"),
        "{table}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = v["rows"].as_array().unwrap();
    let find = |precision: &str, sparsity: &str, m: u64| -> Vec<&serde_json::Value> {
        rows.iter()
            .filter(|r| {
                r["adapter"] != "cpu"
                    && r["precision"] == precision
                    && r["sparsity"] == sparsity
                    && r["m"] == m
            })
            .collect()
    };
    for m in [1, 96] {
        for precision in ["f32", "q4_0"] {
            let dense = find(precision, "dense", m);
            let sparse = find(precision, "2:4", m);
            assert!(!dense.is_empty() && sparse.len() == 1, "{precision} m={m}");
            let s = sparse[0];
            assert!(s["passed"] == true && s["prune"] == "magnitude", "{s}");
            assert!(s["kernel"].as_str().unwrap().contains("sparse"), "{s}");
            let sb = s["weight_bytes"].as_u64().unwrap();
            assert!(sb > 0, "{s}");
            for d in &dense {
                let db = d["weight_bytes"].as_u64().unwrap();
                assert!(sb < db, "{precision} m={m}: 2:4 {sb} bytes, dense {db}");
            }
            let vs = s["speedup_vs_dense"].as_f64().unwrap();
            assert!(vs.is_finite() && vs > 0.0, "{s}");
            let u = find(precision, "u50", m);
            assert!(u.len() == 1 && u[0]["passed"] == true, "{u:?}");
        }
        let int8 = find("int8", "2:4", m);
        assert!(
            int8.len() == 1
                && int8[0]["skipped"]
                    .as_str()
                    .is_some_and(|s| s.contains("no sparse kernel")),
            "{int8:?}"
        );
    }
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert!(csv.lines().any(|l| l.contains(",2:4,magnitude,")), "{csv}");
}
