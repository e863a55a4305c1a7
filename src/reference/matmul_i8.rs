//! CPU twin of `kernels::matmul_i8`: exact integer dot products of the int8 operands,
//! scaled in f64.

use crate::error::{LabError, Result};
use crate::formats::int8::Int8Rows;

/// C[r][c] = (sum_k aq[r][k] * wq[c][k]) * sa[r] * sw[c], in exact integers then f64.
pub fn matmul_i8_f64(a: &Int8Rows, w: &Int8Rows) -> Result<Vec<f64>> {
    if a.k != w.k {
        return Err(LabError::Shape(format!(
            "int8: activations k = {}, weights k = {}",
            a.k, w.k
        )));
    }
    let unpack = |x: &Int8Rows| -> Vec<i32> {
        (0..x.rows)
            .flat_map(|r| (0..x.k).map(move |i| x.q(r, i) as i32))
            .collect()
    };
    let (aq, wq) = (unpack(a), unpack(w));
    let k = a.k;
    let mut c = Vec::with_capacity(a.rows * w.rows);
    for r in 0..a.rows {
        let ar = &aq[r * k..(r + 1) * k];
        for col in 0..w.rows {
            let wr = &wq[col * k..(col + 1) * k];
            // |q| <= 127, so each product fits in i32 and the sum in i64 for any k.
            let dot: i64 = ar.iter().zip(wr).map(|(x, y)| (x * y) as i64).sum();
            c.push(dot as f64 * a.scales[r] as f64 * w.scales[col] as f64);
        }
    }
    Ok(c)
}
