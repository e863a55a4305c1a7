//! Bad input gets a clear, typed error: shapes, files, adapters, limits. Never a panic.

mod common;

use std::io::Write;
use std::path::PathBuf;

use wgpu_lab::gpu::adapters::{parse_backend, AdapterSelector};
use wgpu_lab::kernels::matmul::{Kernel, Layout, MatmulOptions, PreparedMatmul, Shape};
use wgpu_lab::npy::{read_matrix, write_matrix, Matrix};
use wgpu_lab::{Context, LabError};

use common::tmp;

/// Writes a .npy file with a hand-made header (version 1.0) and `body`.
fn raw_npy(name: &str, header: &str, body: &[u8]) -> PathBuf {
    let mut h = header.to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let path = tmp(name);
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(b"\x93NUMPY\x01\x00").unwrap();
    f.write_all(&(h.len() as u16).to_le_bytes()).unwrap();
    f.write_all(h.as_bytes()).unwrap();
    f.write_all(body).unwrap();
    path
}

fn message(r: Result<Matrix, LabError>) -> String {
    r.expect_err("expected an error").to_string()
}

#[test]
fn zero_dimension_is_refused() {
    let e = Shape::new(0, 4, 4).unwrap_err().to_string();
    assert!(e.contains("m=0"), "{e}");
}

#[test]
fn operand_length_mismatch_is_refused() {
    let s = Shape::new(2, 3, 4).unwrap();
    let e = s.check(8, 11).unwrap_err().to_string();
    assert!(e.contains("B has 11 elements") && e.contains("12"), "{e}");
    let e = s.check(7, 12).unwrap_err().to_string();
    assert!(e.contains("A has 7 elements"), "{e}");
}

#[test]
fn npy_round_trip_float32_and_float64() {
    let m = Matrix {
        rows: 2,
        cols: 3,
        data: vec![1.0, -2.5, 3.25, 4.0, 5.5, -6.0],
    };
    let p = tmp("rt.npy");
    write_matrix(&p, &m).unwrap();
    assert_eq!(read_matrix(&p).unwrap(), m);
    let body: Vec<u8> = [1.5f64, 2.0, -3.0, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let p = raw_npy(
        "f8.npy",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }",
        &body,
    );
    assert_eq!(read_matrix(&p).unwrap().data, vec![1.5, 2.0, -3.0, 4.0]);
}

#[test]
fn npy_wrong_dtype_is_refused() {
    let p = raw_npy(
        "i4.npy",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (1, 2), }",
        &[0; 8],
    );
    let e = message(read_matrix(&p));
    assert!(e.contains("<i4") && e.contains("float32"), "{e}");
}

#[test]
fn npy_fortran_order_is_refused() {
    let p = raw_npy(
        "fo.npy",
        "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
        &[0; 16],
    );
    assert!(message(read_matrix(&p)).contains("Fortran"));
}

#[test]
fn npy_wrong_rank_is_refused() {
    let p = raw_npy(
        "r3.npy",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 2), }",
        &[0; 32],
    );
    assert!(message(read_matrix(&p)).contains("3-D"));
    let p = raw_npy(
        "r1.npy",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }",
        &[0; 16],
    );
    assert!(message(read_matrix(&p)).contains("1-D"));
}

#[test]
fn npy_truncated_body_is_refused() {
    let p = raw_npy(
        "tr.npy",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 3), }",
        &[0; 20],
    );
    assert!(message(read_matrix(&p)).contains("truncated"));
}

#[test]
fn npy_garbage_and_missing_files_are_refused() {
    let p = tmp("garbage.npy");
    std::fs::write(&p, b"definitely not numpy").unwrap();
    assert!(message(read_matrix(&p)).contains("not a valid .npy"));
    let e = message(read_matrix(&tmp("does-not-exist.npy")));
    assert!(e.contains("does-not-exist.npy"), "{e}");
}

#[test]
fn unknown_backend_and_kernel_names_are_refused() {
    assert!(matches!(
        parse_backend("cuda"),
        Err(LabError::UnknownBackend(_))
    ));
    let e = Kernel::named("fastest", Layout::Nn)
        .unwrap_err()
        .to_string();
    assert!(e.contains("naive, tiled, regblock"), "{e}");
    assert!(Layout::parse("tn").is_err());
}

#[test]
fn adapter_that_matches_nothing_lists_what_exists() {
    if common::ctx().is_none() {
        return;
    }
    let sel = AdapterSelector {
        adapter: Some("no-such-gpu-anywhere".into()),
        ..Default::default()
    };
    let e = Context::new(&sel)
        .err()
        .expect("must not match")
        .to_string();
    assert!(
        e.contains("no-such-gpu-anywhere") && e.contains("[0]"),
        "{e}"
    );
    let sel = AdapterSelector {
        adapter: Some("999".into()),
        ..Default::default()
    };
    assert!(Context::new(&sel)
        .err()
        .expect("no index 999")
        .to_string()
        .contains("index 999"));
}

#[test]
fn problem_over_the_binding_limit_is_refused_naming_the_limit() {
    let Some(ctx) = common::ctx() else { return };
    // With a 64-byte binding limit not even 4 rows of k = 100 fit.
    let shape = Shape::new(2, 2, 100).unwrap();
    let opts = MatmulOptions {
        max_binding_bytes: Some(64),
        ..Default::default()
    };
    let kernel = Kernel::named("naive", Layout::Nn).unwrap();
    let r = PreparedMatmul::new(
        ctx,
        kernel,
        Layout::Nn,
        shape,
        &[1.0; 200],
        &[1.0; 200],
        opts,
    );
    let e = r.err().expect("must be refused").to_string();
    assert!(
        e.contains("max_storage_buffer_binding_size") && e.contains("64"),
        "{e}"
    );
}

#[test]
fn workgroup_over_the_device_limit_is_refused() {
    let Some(ctx) = common::ctx() else { return };
    let side = 64; // 4096 invocations: over every adapter's limit
    let kernel = Kernel::Naive { wg: side };
    let shape = Shape::new(2, 2, 2).unwrap();
    let r = PreparedMatmul::new(
        ctx,
        kernel,
        Layout::Nn,
        shape,
        &[1.0; 4],
        &[1.0; 4],
        Default::default(),
    );
    let e = r.err().expect("must be refused").to_string();
    assert!(e.contains("max_compute_invocations_per_workgroup"), "{e}");
}
