//! `.npy` matrices in and out: C-order float32/float64, rank 2, with clear errors.

use std::fs::File;
use std::io::{BufReader, BufWriter};
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
    let file = File::open(path).map_err(|source| LabError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let npy = npyz::NpyFile::new(BufReader::new(file))
        .map_err(|e| npy_err(path, format!("not a valid .npy file: {e}")))?;
    if npy.order() != npyz::Order::C {
        return Err(npy_err(
            path,
            "array is in Fortran order; save it C-ordered (np.ascontiguousarray)",
        ));
    }
    let shape = npy.shape().to_vec();
    if shape.len() != 2 {
        return Err(npy_err(
            path,
            format!(
                "expected a 2-D matrix, got a {}-D array of shape {shape:?}",
                shape.len()
            ),
        ));
    }
    let (rows, cols) = (shape[0] as usize, shape[1] as usize);
    if rows == 0 || cols == 0 {
        return Err(npy_err(
            path,
            format!("matrix has a zero dimension: {shape:?}"),
        ));
    }
    let dtype = npy.dtype();
    let descr = dtype.descr();
    let size = match &dtype {
        npyz::DType::Plain(ts) if ts.type_char() == npyz::TypeChar::Float => ts.size_field(),
        _ => 0,
    };
    let truncated = |e: std::io::Error| {
        npy_err(
            path,
            format!("body is truncated or unreadable (expected {rows}x{cols} values): {e}"),
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
    if data.len() != rows * cols {
        return Err(npy_err(
            path,
            format!(
                "body holds {} values, header says {rows}x{cols}",
                data.len()
            ),
        ));
    }
    Ok(Matrix { rows, cols, data })
}

/// Writes a row-major f32 matrix as a 2-D float32 `.npy` file.
pub fn write_matrix(path: &Path, m: &Matrix) -> Result<()> {
    let io_err = |source| LabError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::create(path).map_err(io_err)?;
    let mut w = npyz::WriteOptions::<f32>::new()
        .default_dtype()
        .shape(&[m.rows as u64, m.cols as u64])
        .writer(BufWriter::new(file))
        .begin_nd()
        .map_err(io_err)?;
    w.extend(m.data.iter().copied()).map_err(io_err)?;
    w.finish().map_err(io_err)?;
    Ok(())
}
