//! One problem of an op, as the contract lays it out: random inputs (never zeros), the
//! buffers each binding gets, the uniform for a kernel's tile, and the float64 twin's answer
//! with the precision's tolerance.

use crate::compare::{
    TOL_F32_REL_FROBENIUS, TOL_I8_KERNEL_REL_FROBENIUS, TOL_WQ_KERNEL_REL_FROBENIUS,
};
use crate::error::{LabError, Result};
use crate::formats::int8::{quantize_rows_with, Int8Scheme};
use crate::formats::weights::{WeightFormat, Weights};
use crate::kernels::matmul::{Layout, Shape};
use crate::lab::contract::Op;
use crate::reference::matmul::matmul_f64;
use crate::reference::matmul_i8::matmul_i8_f64;
use crate::reference::matmul_wq::matmul_wq_f64;

/// The inputs and the expected output of one op at one shape.
#[derive(Debug, Clone)]
pub struct Problem {
    /// The op.
    pub op: Op,
    /// Rows of C.
    pub m: usize,
    /// Columns of C.
    pub n: usize,
    /// The inner dimension asked for.
    pub k: usize,
    /// The inner dimension as stored (k padded with zeros to [`Op::k_align`]).
    pub kp: usize,
    /// A as drawn, m x k.
    pub a: Vec<f32>,
    /// B as drawn: k x n for `matmul_nn`, n x k otherwise.
    pub b: Vec<f32>,
    /// The read-only buffers, bindings 1.. in contract order, as 32-bit words.
    pub inputs: Vec<Vec<u32>>,
    /// The f64 twin's C, m x n.
    pub want: Vec<f64>,
    /// The tolerance on the relative Frobenius error, with the precision's reasoning in
    /// [`crate::compare`].
    pub tolerance: f64,
    /// Bytes of the weight operand as stored.
    pub weight_bytes: u64,
    /// Bytes of the activation operand as stored.
    pub act_bytes: u64,
}

fn pad_rows(x: &[f32], rows: usize, k: usize, ld: usize) -> Vec<f32> {
    let mut out = vec![0f32; rows * ld];
    for r in 0..rows {
        out[r * ld..r * ld + k].copy_from_slice(&x[r * k..(r + 1) * k]);
    }
    out
}

fn words(x: &[f32]) -> Vec<u32> {
    bytemuck::cast_slice(x).to_vec()
}

impl Problem {
    /// Draws A (m x k) and B from `seed`, uniform in [-1, 1), lays them out for `op` and
    /// computes the twin's C in f64.
    pub fn new(op: Op, m: usize, n: usize, k: usize, seed: u64) -> Result<Self> {
        let shape = Shape::new(m, n, k)?;
        let mut rng = crate::rng::Rng::new(seed);
        let a = rng.vec_f32(m * k);
        let b = rng.vec_f32(n * k);
        let kp = k.div_ceil(op.k_align()) * op.k_align();
        let mut p = match (op, op.f32_layout()) {
            (_, Some(layout)) => {
                let want = matmul_f64(layout, shape, &a, &b)?;
                let ap = pad_rows(&a, m, k, kp);
                let bp = match layout {
                    Layout::Nn => pad_rows(&b, k, n, n.div_ceil(4) * 4),
                    Layout::Nt => pad_rows(&b, n, k, kp),
                };
                Self {
                    op,
                    a: Vec::new(),
                    b: Vec::new(),
                    m,
                    n,
                    k,
                    kp,
                    weight_bytes: (bp.len() * 4) as u64,
                    act_bytes: (ap.len() * 4) as u64,
                    inputs: vec![words(&ap), words(&bp)],
                    want,
                    tolerance: TOL_F32_REL_FROBENIUS,
                }
            }
            (Op::MatmulNt { precision }, None) => {
                let wp = pad_rows(&b, n, k, kp);
                let weights = Weights::encode(precision, n, kp, &wp)?;
                let ap = pad_rows(&a, m, k, kp);
                let want = matmul_wq_f64(&ap, m, kp, &weights)?;
                let (w, s) = weights.gpu_words();
                Self {
                    op,
                    a: Vec::new(),
                    b: Vec::new(),
                    m,
                    n,
                    k,
                    kp,
                    weight_bytes: weights.bytes.len() as u64,
                    act_bytes: (ap.len() * 4) as u64,
                    inputs: vec![words(&ap), w, s],
                    want,
                    tolerance: TOL_WQ_KERNEL_REL_FROBENIUS,
                }
            }
            (_, None) => {
                let aq = quantize_rows_with(&a, m, k, Int8Scheme::PerRow)?;
                let wq = quantize_rows_with(&b, n, k, Int8Scheme::PerRow)?;
                if aq.kp != kp || wq.kp != kp {
                    return Err(LabError::Shape(format!(
                        "int8 rows padded to {} and {}, the contract says {kp}",
                        aq.kp, wq.kp
                    )));
                }
                let want = matmul_i8_f64(&aq, &wq)?;
                Self {
                    op,
                    a: Vec::new(),
                    b: Vec::new(),
                    m,
                    n,
                    k,
                    kp,
                    weight_bytes: (wq.words.len() * 4 + wq.scales.len() * 4) as u64,
                    act_bytes: (aq.words.len() * 4 + aq.scales.len() * 4) as u64,
                    inputs: vec![
                        aq.words.clone(),
                        words(&aq.scales),
                        wq.words.clone(),
                        words(&wq.scales),
                    ],
                    want,
                    tolerance: TOL_I8_KERNEL_REL_FROBENIUS,
                }
            }
        };
        p.a = a;
        p.b = b;
        Ok(p)
    }

    /// The uniform's eight words for a kernel writing `tile` (rows x columns of C) per
    /// workgroup, and the number of workgroups.
    pub fn uniform(&self, tile: (u32, u32)) -> ([u32; 8], u64) {
        let tiles_n = self.n.div_ceil(tile.1 as usize) as u64;
        let tiles = self.m.div_ceil(tile.0 as usize) as u64 * tiles_n;
        let (m, n, k, kp) = (self.m as u32, self.n as u32, self.k as u32, self.kp as u32);
        let (tn, t) = (tiles_n as u32, tiles.min(u32::MAX as u64) as u32);
        let u = match self.op {
            Op::MatmulNn => [m, n, k, tn, t, kp, self.n.div_ceil(4) as u32 * 4, 0],
            Op::MatmulNt {
                precision: WeightFormat::F32,
            } => [m, n, k, tn, t, kp, kp, 0],
            Op::MatmulNt { .. } => [m, n, kp, kp / 32, tn, t, n, 0],
            Op::MatmulI8 => [m, n, k, kp, tn, t, 0, 0],
        };
        (u, tiles)
    }

    /// 2 m n k.
    pub fn flops(&self) -> f64 {
        2.0 * self.m as f64 * self.n as f64 * self.k as f64
    }
}
