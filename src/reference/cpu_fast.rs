//! wgpu-lab's own multi-threaded W8A8 CPU path (int8 and int8rot): activations quantized in
//! the weights' scheme like the GPU's, exact i32 dot products per scale group. It is the
//! CPU baseline of the int8 precisions because no Rust crate multiplies int8 weights by
//! int8 activations with these scale schemes (`reference::cpu_baseline` has the others).

use crate::error::Result;
use crate::formats::int8::{quantize_rows_with, Int8Rows};

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |t| t.get())
}

/// Splits the n output columns across the cores; `f(col0, col1, out)` fills columns
/// col0..col1 of every row into `out` (m x (col1 - col0), row-major).
fn par_cols(m: usize, n: usize, f: &(dyn Fn(usize, usize, &mut [f32]) + Sync)) -> Vec<f32> {
    let t = threads().min(n).max(1);
    let per = n.div_ceil(t);
    let parts: Vec<(usize, Vec<f32>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(per)
            .map(|c0| {
                let c1 = (c0 + per).min(n);
                s.spawn(move || {
                    let mut out = vec![0f32; m * (c1 - c0)];
                    f(c0, c1, &mut out);
                    (c0, out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a CPU worker panicked"))
            .collect()
    });
    let mut c = vec![0f32; m * n];
    for (c0, part) in parts {
        let w = part.len() / m;
        for r in 0..m {
            c[r * n + c0..r * n + c0 + w].copy_from_slice(&part[r * w..(r + 1) * w]);
        }
    }
    c
}

fn i8_cols(aq: &Int8Rows, wq: &Int8Rows, c0: usize, c1: usize, out: &mut [f32]) {
    let width = c1 - c0;
    let (g, groups) = (aq.group_len(), aq.scales_per_row());
    let unpack = |x: &Int8Rows, r: usize| -> Vec<i8> {
        bytemuck::cast_slice::<u32, i8>(&x.words[r * x.kp / 4..(r + 1) * x.kp / 4]).to_vec()
    };
    let arows: Vec<Vec<i8>> = (0..aq.rows).map(|r| unpack(aq, r)).collect();
    for col in c0..c1 {
        let wr = unpack(wq, col);
        for (r, ar) in arows.iter().enumerate() {
            let mut v = 0f32;
            for (b, (xa, xw)) in ar.chunks_exact(g).zip(wr.chunks_exact(g)).enumerate() {
                let dot: i32 = xa.iter().zip(xw).map(|(x, y)| *x as i32 * *y as i32).sum();
                v += dot as f32 * (aq.scales[r * groups + b] * wq.scales[col * groups + b]);
            }
            out[r * width + col - c0] = v;
        }
    }
}

/// W8A8 on the CPU: activations quantized in the weights' scheme like the GPU's, exact i32
/// dot products per scale group.
pub fn matmul_i8_cpu(a: &[f32], m: usize, k: usize, wq: &Int8Rows) -> Result<Vec<f32>> {
    let aq = quantize_rows_with(a, m, k, wq.scheme)?;
    Ok(par_cols(m, wq.rows, &|c0, c1, out| {
        i8_cols(&aq, wq, c0, c1, out)
    }))
}
