//! CPU twins of `kernels::matmul`: the float64 truth and the fast f32 baseline.
//!
//! Same argument order as the GPU kernels: (layout, shape, A, B), A is m x k, B is
//! k x n for `nn` or n x k for `nt`, C is m x n, all row-major.

use crate::error::Result;
use crate::kernels::matmul::{Layout, Shape};

/// C = A * B (or A * B^T) accumulated in f64: the reference every kernel is compared with.
///
/// Rows are split across the available cores; each row is summed in a fixed order, so the
/// result does not depend on the thread count.
pub fn matmul_f64(layout: Layout, shape: Shape, a: &[f32], b: &[f32]) -> Result<Vec<f64>> {
    shape.check(a.len(), b.len())?;
    let Shape { m, n, k } = shape;
    // B as k x n in f64, whatever its layout, so the inner loop runs along contiguous memory.
    let mut bt = vec![0f64; k * n];
    for kk in 0..k {
        for j in 0..n {
            bt[kk * n + j] = match layout {
                Layout::Nn => b[kk * n + j],
                Layout::Nt => b[j * k + kk],
            } as f64;
        }
    }
    let mut c = vec![0f64; m * n];
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let rows_per = m.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for (t, c_rows) in c.chunks_mut(rows_per * n).enumerate() {
            let bt = &bt;
            s.spawn(move || {
                for (r, crow) in c_rows.chunks_mut(n).enumerate() {
                    let i = t * rows_per + r;
                    for kk in 0..k {
                        let av = a[i * k + kk] as f64;
                        let brow = &bt[kk * n..(kk + 1) * n];
                        for (cv, bv) in crow.iter_mut().zip(brow) {
                            *cv += av * bv;
                        }
                    }
                }
            });
        }
    });
    Ok(c)
}

/// C = A * B (or A * B^T) in f32 with the `gemm` crate on every core: the CPU baseline
/// that GPU timings are compared with.
pub fn matmul_cpu_fast(layout: Layout, shape: Shape, a: &[f32], b: &[f32]) -> Result<Vec<f32>> {
    shape.check(a.len(), b.len())?;
    Ok(gemm_any(layout, shape, a, b, 0.0, 1.0))
}

/// The `gemm` crate's product on every core; `zero` and `one` of the element type, which
/// must be one `gemm` implements (f32, f64, f16: it panics on others, an invariant of the
/// callers here). The caller has checked the shape.
pub fn gemm_any<T: Copy + 'static>(
    layout: Layout,
    shape: Shape,
    a: &[T],
    b: &[T],
    zero: T,
    one: T,
) -> Vec<T> {
    let Shape { m, n, k } = shape;
    assert!(
        a.len() >= m * k && b.len() >= n * k,
        "shape checked by the caller"
    );
    let mut c = vec![zero; m * n];
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    // Strides in elements: (column stride, row stride) of each operand.
    let (b_cs, b_rs) = match layout {
        Layout::Nn => (1isize, n as isize),
        Layout::Nt => (k as isize, 1isize),
    };
    // SAFETY: the pointers cover m*n, m*k and k*n elements (asserted above) and the strides
    // describe exactly those row-major buffers; dst does not alias the inputs.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            b_cs,
            b_rs,
            zero,
            one,
            false,
            false,
            false,
            if threads > 1 {
                gemm::Parallelism::Rayon(threads)
            } else {
                gemm::Parallelism::None
            },
        );
    }
    c
}
