//! CPU twin of `kernels::matmul_i8`: exact integer dot products of the int8 operands per
//! scale group (the row, or each 32-value block), scaled in f64.

use crate::error::{LabError, Result};
use crate::formats::int8::Int8Rows;

/// C[r][c] = sum over groups g of (sum_{k in g} aq[r][k] * wq[c][k]) * sa[r][g] * sw[c][g],
/// exact integers per group, then f64.
pub fn matmul_i8_f64(a: &Int8Rows, w: &Int8Rows) -> Result<Vec<f64>> {
    if a.k != w.k || a.scheme != w.scheme {
        return Err(LabError::Shape(format!(
            "int8: activations k = {} ({:?}), weights k = {} ({:?})",
            a.k, a.scheme, w.k, w.scheme
        )));
    }
    let (g, groups) = (a.group_len(), a.scales_per_row());
    // Every stored value, padding included: zero per row, but a rotated block mixes its
    // padding with real values.
    let unpack = |x: &Int8Rows| -> Vec<i32> {
        (0..x.rows)
            .flat_map(|r| (0..x.kp).map(move |i| x.q(r, i) as i32))
            .collect()
    };
    let (aq, wq) = (unpack(a), unpack(w));
    let k = a.kp;
    let mut c = Vec::with_capacity(a.rows * w.rows);
    for r in 0..a.rows {
        let ar = &aq[r * k..(r + 1) * k];
        for col in 0..w.rows {
            let wr = &wq[col * k..(col + 1) * k];
            // |q| <= 127, so each product fits in i32 and the sum in i64 for any k.
            let mut v = 0f64;
            for b in 0..groups {
                let span = b * g..(b + 1) * g;
                let dot: i64 = ar[span.clone()]
                    .iter()
                    .zip(&wr[span])
                    .map(|(x, y)| (x * y) as i64)
                    .sum();
                v += dot as f64
                    * a.scales[r * groups + b] as f64
                    * w.scales[col * groups + b] as f64;
            }
            c.push(v);
        }
    }
    Ok(c)
}
