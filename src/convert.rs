//! File conversions behind `wgpu-lab quantize` and `dequantize`: `.npy` <-> GGUF tensors.

use std::path::Path;

use crate::error::{LabError, Result};
use crate::formats::gguf::{self, Gguf, TensorData, Value};
use crate::formats::quant_search::Quantizer;
use crate::formats::weights::{decode_bytes, encode_bytes_with, WeightFormat, Weights};
use crate::npy;

fn gguf_err(e: gguf::GgufError) -> LabError {
    LabError::Shape(e.to_string())
}

/// Reads a 1-D to 4-D `.npy`, encodes it in `format` (rows along the last axis, as ggml
/// expects) by `quantizer` and writes a GGUF v3 file holding it as tensor `name`. Returns
/// its dims. [`Quantizer::Imatrix`] is refused: a lone tensor has no activations to weigh by.
pub fn quantize_npy(
    input: &Path,
    output: &Path,
    format: WeightFormat,
    quantizer: Quantizer,
    name: &str,
) -> Result<Vec<u64>> {
    if quantizer == Quantizer::Imatrix {
        return Err(LabError::InvalidArgument(
            "quantize: the imatrix quantizer needs a model's activations (embed/infer \
             calibrate one); use reference or rmse for a lone tensor"
                .into(),
        ));
    }
    let (shape, values) = npy::read_array(input, 1..=4)?;
    let row_len = *shape.last().expect("rank >= 1");
    let bytes = encode_bytes_with(format, &values, row_len, quantizer, None)?;
    let dims: Vec<u64> = shape.iter().rev().map(|&d| d as u64).collect();
    let metadata = vec![
        (
            "general.architecture".to_string(),
            Value::Str("wgpu-lab".into()),
        ),
        ("general.name".to_string(), Value::Str(name.to_string())),
    ];
    let tensor = TensorData {
        name: name.to_string(),
        dims: dims.clone(),
        format,
        bytes,
    };
    gguf::write(output, &metadata, &[tensor]).map_err(gguf_err)?;
    Ok(dims)
}

/// Reads tensor `name` from a GGUF file, dequantizes it and writes float32 `.npy` with the
/// tensor's shape (slowest axis first). Returns that shape.
pub fn dequantize_to_npy(input: &Path, name: &str, output: &Path) -> Result<Vec<usize>> {
    let g = Gguf::open(input).map_err(gguf_err)?;
    let (format, bytes) = g.read_tensor(name).map_err(gguf_err)?;
    let info = g.tensor(name).map_err(gguf_err)?;
    let values = decode_bytes(format, &bytes);
    let shape: Vec<usize> = info.dims.iter().rev().map(|&d| d as usize).collect();
    npy::write_array(output, &shape, &values)?;
    Ok(shape)
}

/// Loads a 2-D tensor of a GGUF file as matmul weights (n rows of k values).
pub fn load_weights(path: &Path, name: &str) -> Result<Weights> {
    let g = Gguf::open(path).map_err(gguf_err)?;
    let info = g.tensor(name).map_err(gguf_err)?;
    if info.dims.len() != 2 {
        return Err(LabError::Shape(format!(
            "tensor {name:?} has dims {:?}; a matmul needs a 2-D weight",
            info.dims
        )));
    }
    let (n, k) = info.rows_cols();
    let (format, bytes) = g.read_tensor(name).map_err(gguf_err)?;
    if k % 32 != 0 {
        return Err(LabError::Shape(format!(
            "tensor {name:?}: rows of {k} values; the matmul kernels need whole blocks of 32"
        )));
    }
    Weights::from_bytes(format, n, k, bytes)
}
