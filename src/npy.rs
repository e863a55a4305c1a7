//! `.npy` matrices in and out: C-order float32/float64, rank 2, with clear errors.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use npyz::WriterBuilder;

use crate::error::{LabError, Result};

/// A dense row-major f32 matrix read from or written to `.npy`.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// rows * cols values, row-major.
    pub data: Vec<f32>,
}

fn npy_err(path: &Path, message: impl Into<String>) -> LabError {
    LabError::Npy {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Reads a 2-D, C-order, float32 or float64 `.npy` file (float64 is rounded to f32).
pub fn read_matrix(path: &Path) -> Result<Matrix> {
    let (shape, data) = read_array(path, 2..=2)?;
    Ok(Matrix {
        rows: shape[0],
        cols: shape[1],
        data,
    })
}

/// Refuses a header that claims more bytes than the file holds, before npyz allocates a
/// buffer of that length (a 133-byte file claiming a 4 GiB header made it allocate 4 GiB:
/// found by the `npy` fuzz target, `tests/data/fuzz/npy/`), and headers npyz would take
/// too long to parse. Leaves `file` at its start.
fn check_header_len(path: &Path, file: &mut File) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let io = |source| LabError::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = file.metadata().map_err(io)?.len();
    let mut head = [0u8; 12];
    let n = file.read(&mut head).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    // Magic (6 bytes), version (2), then the header length: 2 bytes in version 1, 4 after.
    if n < 8 || &head[..6] != b"\x93NUMPY" {
        // Not a .npy at all: npyz says so.
        return Ok(());
    }
    let (prefix, claimed) = match (n, head[6]) {
        (10.., 1) => (10u64, u16::from_le_bytes([head[8], head[9]]) as u64),
        (12.., 2..) => (
            12u64,
            u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as u64,
        ),
        // Too short or an unknown version: npyz says what is wrong without allocating.
        _ => return Ok(()),
    };
    if prefix + claimed > len {
        return Err(npy_err(
            path,
            format!(
                "the header claims {claimed} bytes but the file holds {} after its prefix",
                len.saturating_sub(prefix)
            ),
        ));
    }
    if claimed > MAX_HEADER {
        return Err(npy_err(
            path,
            format!("the header is {claimed} bytes; numpy itself reads at most {MAX_HEADER}"),
        ));
    }
    // The header is a flat Python dict: {'descr': ..., 'fortran_order': ..., 'shape': (...)}.
    // npyz's parser backtracks exponentially on deep or unclosed nesting (a 150-byte header
    // of 27 unclosed braces ran for minutes: found by the `npy` fuzz target), so nesting
    // deeper than a structured dtype's list of tuples is refused first.
    let mut header = vec![0u8; claimed as usize];
    file.seek(SeekFrom::Start(prefix)).map_err(io)?;
    file.read_exact(&mut header).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let (mut depth, mut deepest) = (0i64, 0i64);
    for &b in &header {
        match b {
            b'{' | b'(' | b'[' => depth += 1,
            b'}' | b')' | b']' => depth -= 1,
            _ => {}
        }
        deepest = deepest.max(depth);
    }
    if deepest > MAX_NESTING {
        return Err(npy_err(
            path,
            format!(
                "the header nests {deepest} levels deep; a .npy header is a dict of at most \
                 {MAX_NESTING}"
            ),
        ));
    }
    Ok(())
}

/// numpy's own `max_header_size` (numpy >= 1.24 refuses larger headers unless told to).
const MAX_HEADER: u64 = 10_000;

/// The deepest nesting a header needs: the dict, a structured dtype's list, its tuples.
const MAX_NESTING: i64 = 3;

/// Reads a C-order float32/float64 `.npy` array whose rank is in `ranks`; returns its
/// shape and values (float64 rounded to f32).
pub fn read_array(
    path: &Path,
    ranks: std::ops::RangeInclusive<usize>,
) -> Result<(Vec<usize>, Vec<f32>)> {
    let mut file = File::open(path).map_err(|source| LabError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    check_header_len(path, &mut file)?;
    let npy = npyz::NpyFile::new(BufReader::new(file))
        .map_err(|e| npy_err(path, format!("not a valid .npy file: {e}")))?;
    if npy.order() != npyz::Order::C {
        return Err(npy_err(
            path,
            "array is in Fortran order; save it C-ordered (np.ascontiguousarray)",
        ));
    }
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    if !ranks.contains(&shape.len()) {
        let want = if ranks.start() == ranks.end() {
            format!("a {}-D array", ranks.start())
        } else {
            format!("a {}-D to {}-D array", ranks.start(), ranks.end())
        };
        return Err(npy_err(
            path,
            format!(
                "expected {want}, got a {}-D array of shape {shape:?}",
                shape.len()
            ),
        ));
    }
    if shape.contains(&0) {
        return Err(npy_err(
            path,
            format!("array has a zero dimension: {shape:?}"),
        ));
    }
    let dtype = npy.dtype();
    let descr = dtype.descr();
    let size = match &dtype {
        npyz::DType::Plain(ts) if ts.type_char() == npyz::TypeChar::Float => ts.size_field(),
        _ => 0,
    };
    // What the header claims against what the file holds, before reading a value: a
    // hostile shape is refused here, not by an allocation.
    let claimed = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .and_then(|c| c.checked_mul(size.max(1) as usize).map(|b| (c, b)));
    let file_len = std::fs::metadata(path).map_or(u64::MAX, |m| m.len());
    let count = match claimed {
        Some((count, bytes)) if (bytes as u64) <= file_len => count,
        _ => {
            return Err(npy_err(
                path,
                format!("the header's shape {shape:?} needs more bytes than the file's {file_len}"),
            ))
        }
    };
    let truncated = |e: std::io::Error| {
        npy_err(
            path,
            format!("body is truncated or unreadable (expected {count} values): {e}"),
        )
    };
    let data: Vec<f32> = match size {
        4 => npy.into_vec::<f32>().map_err(truncated)?,
        8 => npy
            .into_vec::<f64>()
            .map_err(truncated)?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        _ => {
            return Err(npy_err(
                path,
                format!("dtype {descr} is not supported; use float32 or float64"),
            ))
        }
    };
    if data.len() != count {
        return Err(npy_err(
            path,
            format!("body holds {} values, header says {shape:?}", data.len()),
        ));
    }
    Ok((shape, data))
}

/// Writes a row-major f32 matrix as a 2-D float32 `.npy` file.
pub fn write_matrix(path: &Path, m: &Matrix) -> Result<()> {
    write_array(path, &[m.rows, m.cols], &m.data)
}

/// Writes a C-order float32 `.npy` array of any shape.
pub fn write_array(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    let io_err = |source| LabError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Atomically (`crate::atomic`): a reader never sees a half-written array.
    crate::atomic::write_with(path, |file| {
        let mut w = npyz::WriteOptions::<f32>::new()
            .default_dtype()
            .shape(&shape.iter().map(|&d| d as u64).collect::<Vec<_>>())
            .writer(file)
            .begin_nd()?;
        w.extend(data.iter().copied())?;
        w.finish()
    })
    .map_err(io_err)
}
