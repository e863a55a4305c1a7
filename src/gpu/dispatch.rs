//! Dispatch geometry: fold a linear workgroup count into a 2-D grid within the limits.

use crate::error::{LabError, Result};

/// Splits `count` workgroups into `(x, y)` with `x <= max_per_dim`, `x * y >= count`.
///
/// Kernels recover the linear index as `wid.x + wid.y * nwg.x` and return when it is
/// `>= count` (see `shaders/shared/dispatch.wgsl`).
pub fn grid(count: u64, max_per_dim: u32) -> Result<(u32, u32)> {
    let max = max_per_dim.max(1) as u64;
    if count <= max {
        return Ok((count.max(1) as u32, 1));
    }
    let y = count.div_ceil(max);
    if y > max {
        return Err(LabError::OverLimit {
            what: format!("a dispatch of {count} workgroups"),
            asked: count,
            limit_name: "max_compute_workgroups_per_dimension squared",
            limit: max * max,
        });
    }
    // Balance x so fewer workgroups are wasted past the end.
    let x = count.div_ceil(y);
    Ok((x as u32, y as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_counts_stay_one_dimensional() {
        assert_eq!(grid(1, 65535).unwrap(), (1, 1));
        assert_eq!(grid(65535, 65535).unwrap(), (65535, 1));
    }

    #[test]
    fn large_counts_fold_into_y_and_cover_everything() {
        for count in [65536u64, 100_000, 1 << 20, 65535 * 65535] {
            let (x, y) = grid(count, 65535).unwrap();
            assert!(x <= 65535 && y <= 65535);
            assert!(x as u64 * y as u64 >= count);
            assert!((x as u64) * (y as u64 - 1) < count, "a whole row is wasted");
        }
    }

    #[test]
    fn impossible_counts_are_refused() {
        assert!(grid(65535 * 65535 + 1, 65535).is_err());
    }
}
