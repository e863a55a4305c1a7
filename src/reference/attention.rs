//! One query's scaled dot-product attention in f64, the step every model twin shares:
//! scores q.k_j / sqrt(d) over keys 0..n, a softmax, the weighted sum of the values.

/// Writes softmax(q.k_j * scale) . v_j over j < n into `out` (d values); `key(j)` and
/// `value(j)` give row j's d values wherever the caller keeps them.
pub fn attend<'a>(
    q: &[f32],
    n: usize,
    scale: f64,
    key: impl Fn(usize) -> &'a [f32],
    value: impl Fn(usize) -> &'a [f32],
    out: &mut [f32],
) {
    let scores: Vec<f64> = (0..n)
        .map(|j| {
            q.iter()
                .zip(key(j))
                .map(|(a, b)| *a as f64 * *b as f64)
                .sum::<f64>()
                * scale
        })
        .collect();
    let max = scores.iter().cloned().fold(f64::MIN, f64::max);
    let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    for (c, o) in out.iter_mut().enumerate() {
        let v: f64 = (0..n).map(|j| e[j] * value(j)[c] as f64).sum();
        *o = (v / sum) as f32;
    }
}
