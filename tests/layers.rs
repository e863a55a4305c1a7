//! The house has no circle: every module of the library names only modules of its own
//! layer or below (gpu and formats at the bottom, then kernels and reference, model, bench).
//! Read from the sources, so a new `use crate::bench` in a kernel fails here on any machine.

use std::path::Path;

/// Layer of each top-level module of `src/`; a module may use its own layer and below.
/// Same-layer use is allowed (kernels and reference, gpu and formats, are siblings).
fn layer(module: &str) -> Option<u32> {
    Some(match module {
        // Root re-exports (`crate::Result`) count as the module they come from.
        "error" | "rng" | "stats" | "npy" | "shaders" | "atomic" | "Result" | "LabError" => 0,
        "gpu" | "formats" | "convert" | "Context" | "AdapterSelector" => 1,
        "kernels" | "reference" | "compare" | "prune" => 2,
        "model" => 3,
        "bench" | "lab" => 4,
        // Fuzz entry points: every parser of outside data, from formats up to bench.
        "fuzzing" => 5,
        _ => return None,
    })
}

fn rs_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `crate::NAME` references in `text`, comments included (a doc link upward is a smell too).
fn crate_refs(text: &str) -> Vec<String> {
    let mut refs = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        refs.push(name);
    }
    refs
}

#[test]
fn layers_only_look_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rs_files(&src, &mut files);
    let mut bad = Vec::new();
    let mut checked = 0;
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let top = top.trim_end_matches(".rs");
        let Some(own) = layer(top) else {
            // lib.rs (the root) and main.rs/cli (the binary, on top of everything).
            assert!(
                ["lib", "main", "cli"].contains(&top),
                "{} is a top-level module with no layer: add it to layer()",
                rel.display()
            );
            continue;
        };
        let text = std::fs::read_to_string(f).unwrap();
        for name in crate_refs(&text) {
            let Some(theirs) = layer(&name) else {
                bad.push(format!("{}: crate::{name} has no layer", rel.display()));
                continue;
            };
            checked += 1;
            if theirs > own {
                bad.push(format!(
                    "{} (layer {own}) uses crate::{name} (layer {theirs})",
                    rel.display()
                ));
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} references found: is the scan broken?"
    );
    assert!(bad.is_empty(), "upward references:\n{}", bad.join("\n"));
}

#[test]
fn the_scan_sees_references() {
    assert_eq!(
        crate_refs("use crate::bench::x; crate::gpu::y"),
        vec!["bench".to_string(), "gpu".to_string()]
    );
}
