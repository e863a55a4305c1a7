//! GGUF files (the container llama.cpp and the tools built on it exchange weights in):
//! a reader for versions 2 and 3 and a writer for version 3.
//!
//! ```text
//! "GGUF" | u32 version | u64 tensor_count | u64 kv_count
//! kv_count x  (string key, u32 value_type, value)
//! tensor_count x (string name, u32 n_dims, u64 dims[n_dims], u32 ggml_type, u64 offset)
//! zero padding to `general.alignment` (default 32)
//! tensor data, each tensor at data_start + offset (offsets aligned)
//! ```
//! Strings are a u64 byte length and UTF-8 bytes; all integers little-endian. `dims[0]`
//! is the row length (ggml's ne0, the fastest-varying axis), so a matrix stored row-major
//! as rows x cols has dims = [cols, rows].
//!
//! Every length and offset read from a file is checked against the file's size before it
//! is used, so a corrupt or truncated file is an error, never a huge allocation or panic.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::formats::weights::WeightFormat;

/// The GGUF magic, "GGUF".
pub const MAGIC: [u8; 4] = *b"GGUF";
/// Default data alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// Why a GGUF file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// I/O failure on the file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not GGUF or is damaged.
    #[error("{path}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// No tensor of that name.
    #[error("{path}: no tensor named {name:?}; tensors: {available}")]
    NoTensor {
        /// The file.
        path: PathBuf,
        /// The name asked for.
        name: String,
        /// Some of the names present.
        available: String,
    },
    /// A tensor type this project cannot decode.
    #[error("tensor {name:?} has ggml type {ggml_type} ({type_name}); supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1")]
    UnsupportedType {
        /// Tensor name.
        name: String,
        /// ggml type id.
        ggml_type: u32,
        /// Its name, if known.
        type_name: &'static str,
    },
}

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Unsigned integer (u8, u16, u32, u64).
    U64(u64),
    /// Signed integer (i8, i16, i32, i64).
    I64(i64),
    /// Float (f32, f64).
    F64(f64),
    /// Boolean.
    Bool(bool),
    /// UTF-8 string.
    Str(String),
    /// Array of values (of one type in the file).
    Array(Vec<Value>),
}

impl Value {
    /// Short human-readable form (arrays summarised).
    pub fn display(&self) -> String {
        match self {
            Value::U64(v) => v.to_string(),
            Value::I64(v) => v.to_string(),
            Value::F64(v) => v.to_string(),
            Value::Bool(v) => v.to_string(),
            Value::Str(s) if s.chars().count() > 60 => {
                format!("{:?}...", s.chars().take(60).collect::<String>())
            }
            Value::Str(s) => format!("{s:?}"),
            Value::Array(a) => {
                let head: Vec<String> = a.iter().take(4).map(|v| v.display()).collect();
                let more = if a.len() > 4 { ", ..." } else { "" };
                format!("[{}{more}] ({} items)", head.join(", "), a.len())
            }
        }
    }
}

/// ggml type ids used here (ggml.h `enum ggml_type`).
pub mod ggml_type {
    /// 32-bit float.
    pub const F32: u32 = 0;
    /// IEEE half.
    pub const F16: u32 = 1;
    /// Q4_0.
    pub const Q4_0: u32 = 2;
    /// Q4_1.
    pub const Q4_1: u32 = 3;
    /// Q5_0.
    pub const Q5_0: u32 = 6;
    /// Q8_0.
    pub const Q8_0: u32 = 8;
    /// Q4_K.
    pub const Q4_K: u32 = 12;
    /// Q6_K.
    pub const Q6_K: u32 = 14;
    /// bfloat16.
    pub const BF16: u32 = 30;

    /// Name of a ggml type id (for messages), "unknown" when not a ggml type.
    pub fn name(t: u32) -> &'static str {
        const NAMES: [&str; 31] = [
            "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K",
            "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S",
            "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M",
            "BF16",
        ];
        NAMES.get(t as usize).copied().unwrap_or("unknown")
    }
}

/// The storage format of a ggml type id, when this project supports it.
pub fn format_of(t: u32) -> Option<WeightFormat> {
    match t {
        ggml_type::F32 => Some(WeightFormat::F32),
        ggml_type::F16 => Some(WeightFormat::F16),
        ggml_type::BF16 => Some(WeightFormat::Bf16),
        ggml_type::Q8_0 => Some(WeightFormat::Q8_0),
        ggml_type::Q4_0 => Some(WeightFormat::Q4_0),
        ggml_type::Q4_1 => Some(WeightFormat::Q4_1),
        ggml_type::Q5_0 => Some(WeightFormat::Q5_0),
        ggml_type::Q4_K => Some(WeightFormat::Q4K),
        ggml_type::Q6_K => Some(WeightFormat::Q6K),
        _ => None,
    }
}

/// The ggml type id of a storage format.
pub fn type_of(f: WeightFormat) -> u32 {
    match f {
        WeightFormat::F32 => ggml_type::F32,
        WeightFormat::F16 => ggml_type::F16,
        WeightFormat::Bf16 => ggml_type::BF16,
        WeightFormat::Q8_0 => ggml_type::Q8_0,
        WeightFormat::Q4_0 => ggml_type::Q4_0,
        WeightFormat::Q4_1 => ggml_type::Q4_1,
        WeightFormat::Q5_0 => ggml_type::Q5_0,
        WeightFormat::Q4K => ggml_type::Q4_K,
        WeightFormat::Q6K => ggml_type::Q6_K,
    }
}

/// One tensor's header entry.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// Tensor name.
    pub name: String,
    /// Dimensions, fastest-varying first (dims[0] = row length).
    pub dims: Vec<u64>,
    /// ggml type id.
    pub ggml_type: u32,
    /// Offset of the data from the start of the data section.
    pub offset: u64,
    /// Bytes of data (from the type and dims), when the type is supported.
    pub bytes: Option<u64>,
}

impl TensorInfo {
    /// Number of values.
    pub fn len(&self) -> u64 {
        self.dims.iter().product()
    }

    /// True when the tensor holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (rows, row length): a tensor of any rank as a matrix of dims[0]-long rows.
    pub fn rows_cols(&self) -> (usize, usize) {
        let cols = self.dims.first().copied().unwrap_or(1) as usize;
        let rows = self.dims.iter().skip(1).product::<u64>() as usize;
        (rows, cols)
    }
}

/// A parsed GGUF header: metadata and tensor directory (data is read on demand).
#[derive(Debug, Clone)]
pub struct Gguf {
    /// The file.
    pub path: PathBuf,
    /// Format version (2 or 3).
    pub version: u32,
    /// Metadata in file order.
    pub metadata: Vec<(String, Value)>,
    /// Tensors in file order.
    pub tensors: Vec<TensorInfo>,
    /// Absolute offset of the data section.
    pub data_start: u64,
    /// Data alignment.
    pub alignment: u64,
}

struct Cursor<'a> {
    path: &'a Path,
    r: std::io::BufReader<File>,
    pos: u64,
    len: u64,
}

impl Cursor<'_> {
    fn corrupt(&self, message: impl Into<String>) -> GgufError {
        GgufError::Corrupt {
            path: self.path.to_path_buf(),
            message: format!("{} (at byte {})", message.into(), self.pos),
        }
    }

    fn bytes(&mut self, n: u64) -> Result<Vec<u8>, GgufError> {
        if n > self.len.saturating_sub(self.pos) {
            return Err(self.corrupt(format!(
                "needs {n} more bytes but the file ends at {}",
                self.len
            )));
        }
        let mut buf = vec![0u8; n as usize];
        self.r
            .read_exact(&mut buf)
            .map_err(|source| GgufError::Io {
                path: self.path.to_path_buf(),
                source,
            })?;
        self.pos += n;
        Ok(buf)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], GgufError> {
        let b = self.bytes(N as u64)?;
        let mut a = [0u8; N];
        a.copy_from_slice(&b);
        Ok(a)
    }

    fn u32(&mut self) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn string(&mut self) -> Result<String, GgufError> {
        let n = self.u64()?;
        let b = self.bytes(n)?;
        String::from_utf8(b).map_err(|_| self.corrupt("string is not UTF-8"))
    }

    fn value(&mut self, ty: u32, depth: u32) -> Result<Value, GgufError> {
        Ok(match ty {
            0 => Value::U64(self.array::<1>()?[0] as u64),
            1 => Value::I64(self.array::<1>()?[0] as i8 as i64),
            2 => Value::U64(u16::from_le_bytes(self.array()?) as u64),
            3 => Value::I64(i16::from_le_bytes(self.array()?) as i64),
            4 => Value::U64(self.u32()? as u64),
            5 => Value::I64(i32::from_le_bytes(self.array()?) as i64),
            6 => Value::F64(f32::from_le_bytes(self.array()?) as f64),
            7 => Value::Bool(self.array::<1>()?[0] != 0),
            8 => Value::Str(self.string()?),
            9 => {
                if depth > 2 {
                    return Err(self.corrupt("arrays nested too deep"));
                }
                let ety = self.u32()?;
                let n = self.u64()?;
                // Every element takes at least one byte: a count past the file's end is corrupt.
                if n > self.len.saturating_sub(self.pos) {
                    return Err(self.corrupt(format!("array of {n} items overruns the file")));
                }
                let mut items = Vec::with_capacity(n.min(1 << 20) as usize);
                for _ in 0..n {
                    items.push(self.value(ety, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64()?),
            11 => Value::I64(i64::from_le_bytes(self.array()?)),
            12 => Value::F64(f64::from_le_bytes(self.array()?)),
            t => return Err(self.corrupt(format!("unknown metadata value type {t}"))),
        })
    }
}

impl Gguf {
    /// Reads and checks a GGUF file's header and tensor directory.
    pub fn open(path: &Path) -> Result<Self, GgufError> {
        let io = |source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut c = Cursor {
            path,
            r: std::io::BufReader::new(file),
            pos: 0,
            len,
        };
        if len < 4 || c.array::<4>()? != MAGIC {
            return Err(c.corrupt("not a GGUF file (bad magic; expected \"GGUF\")"));
        }
        let version = c.u32()?;
        if !(2..=3).contains(&version) {
            return Err(c.corrupt(format!(
                "GGUF version {version} is not supported (2 and 3 are)"
            )));
        }
        let n_tensors = c.u64()?;
        let n_kv = c.u64()?;
        // Each kv takes >= 13 bytes and each tensor entry >= 24: counts past that are corrupt.
        if n_kv.saturating_mul(13) > len || n_tensors.saturating_mul(24) > len {
            return Err(c.corrupt(format!(
                "{n_tensors} tensors / {n_kv} metadata entries cannot fit in {len} bytes"
            )));
        }
        let mut metadata = Vec::with_capacity(n_kv as usize);
        for _ in 0..n_kv {
            let key = c.string()?;
            let ty = c.u32()?;
            let v = c.value(ty, 0)?;
            metadata.push((key, v));
        }
        let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
            Some((_, Value::U64(a))) if *a > 0 && a.is_power_of_two() => *a,
            Some(_) => return Err(c.corrupt("general.alignment is not a power of two")),
            None => DEFAULT_ALIGNMENT,
        };
        let mut tensors = Vec::with_capacity(n_tensors as usize);
        for _ in 0..n_tensors {
            let name = c.string()?;
            let n_dims = c.u32()?;
            if !(1..=4).contains(&n_dims) {
                return Err(c.corrupt(format!("tensor {name:?} has {n_dims} dimensions")));
            }
            let dims = (0..n_dims)
                .map(|_| c.u64())
                .collect::<Result<Vec<_>, _>>()?;
            let ggml_type = c.u32()?;
            let offset = c.u64()?;
            if dims.contains(&0) {
                return Err(c.corrupt(format!("tensor {name:?} has a zero dimension {dims:?}")));
            }
            let bytes = format_of(ggml_type).map(|f| {
                let n: u64 = dims.iter().product();
                let bv = f.block_values() as u64;
                // Only float types (one value per "block" of their size) have partial blocks.
                n / bv * f.bytes_per_block() as u64 + (n % bv) * (f.bytes_per_block() as u64 / bv)
            });
            if let (Some(f), Some(&d0)) = (format_of(ggml_type), dims.first()) {
                if f.is_block_quantized() && d0 % f.block_values() as u64 != 0 {
                    return Err(c.corrupt(format!(
                        "tensor {name:?}: rows of {d0} values are not whole {} blocks of {}",
                        f.name(),
                        f.block_values()
                    )));
                }
            }
            if offset % alignment != 0 {
                return Err(c.corrupt(format!(
                    "tensor {name:?} offset {offset} is not aligned to {alignment}"
                )));
            }
            tensors.push(TensorInfo {
                name,
                dims,
                ggml_type,
                offset,
                bytes,
            });
        }
        let data_start = c.pos.div_ceil(alignment) * alignment;
        for t in &tensors {
            if let Some(b) = t.bytes {
                let end = data_start
                    .checked_add(t.offset)
                    .and_then(|s| s.checked_add(b));
                if end.is_none_or(|e| e > len) {
                    return Err(GgufError::Corrupt {
                        path: path.to_path_buf(),
                        message: format!(
                            "tensor {:?} ({} bytes at offset {}) runs past the end of the file ({len} bytes)",
                            t.name, b, t.offset
                        ),
                    });
                }
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            version,
            metadata,
            tensors,
            data_start,
            alignment,
        })
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Result<&TensorInfo, GgufError> {
        self.tensors
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| GgufError::NoTensor {
                path: self.path.clone(),
                name: name.to_string(),
                available: {
                    let names: Vec<&str> = self
                        .tensors
                        .iter()
                        .take(8)
                        .map(|t| t.name.as_str())
                        .collect();
                    let more = if self.tensors.len() > 8 { ", ..." } else { "" };
                    format!("{}{more}", names.join(", "))
                },
            })
    }

    /// A metadata value by key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Reads a tensor's raw bytes (ggml's layout) and its storage format.
    pub fn read_tensor(&self, name: &str) -> Result<(WeightFormat, Vec<u8>), GgufError> {
        let t = self.tensor(name)?;
        let (format, bytes) = match (format_of(t.ggml_type), t.bytes) {
            (Some(f), Some(b)) => (f, b),
            _ => {
                return Err(GgufError::UnsupportedType {
                    name: t.name.clone(),
                    ggml_type: t.ggml_type,
                    type_name: ggml_type::name(t.ggml_type),
                })
            }
        };
        let io = |source| GgufError::Io {
            path: self.path.clone(),
            source,
        };
        let mut f = File::open(&self.path).map_err(io)?;
        f.seek(SeekFrom::Start(self.data_start + t.offset))
            .map_err(io)?;
        let mut buf = vec![0u8; bytes as usize];
        f.read_exact(&mut buf).map_err(io)?;
        Ok((format, buf))
    }
}

/// A tensor to write: name, dims (dims[0] = row length), format and ggml-layout bytes.
#[derive(Debug, Clone)]
pub struct TensorData {
    /// Tensor name.
    pub name: String,
    /// Dimensions, fastest-varying first.
    pub dims: Vec<u64>,
    /// Storage format.
    pub format: WeightFormat,
    /// The data, ggml's layout.
    pub bytes: Vec<u8>,
}

fn put_string(w: &mut impl Write, s: &str) -> std::io::Result<()> {
    w.write_all(&(s.len() as u64).to_le_bytes())?;
    w.write_all(s.as_bytes())
}

/// The GGUF type id a value is written as: the narrowest of GGUF's usual types that holds
/// it exactly (u32, i32, f32 as llama.cpp writes counts, token types and hyperparameters;
/// 64 bits only when needed), so readers that insist on those types (candle, llama.cpp)
/// read a file written from one they read.
fn type_id(v: &Value) -> u32 {
    match v {
        Value::U64(x) if *x <= u32::MAX as u64 => 4,
        Value::U64(_) => 10,
        Value::I64(x) if i32::try_from(*x).is_ok() => 5,
        Value::I64(_) => 11,
        Value::F64(x) if x.is_nan() || (*x as f32) as f64 == *x => 6,
        Value::F64(_) => 12,
        Value::Bool(_) => 7,
        Value::Str(_) => 8,
        Value::Array(_) => 9,
    }
}

/// One element type for a whole array: the widest its elements need (an empty array is
/// written as u32); elements of different kinds are an error.
fn array_type(items: &[Value]) -> std::io::Result<u32> {
    let kinds = |t: u32| match t {
        4 | 10 => 0,
        5 | 11 => 1,
        6 | 12 => 2,
        t => 3 + t,
    };
    let mut ty = items.first().map_or(4, type_id);
    for v in items {
        let t = type_id(v);
        if kinds(t) != kinds(ty) {
            return Err(std::io::Error::other("array elements of different types"));
        }
        ty = ty.max(t);
    }
    Ok(ty)
}

/// A value's bytes after its type id, as type `ty` (from [`type_id`] or [`array_type`]).
fn put_payload(w: &mut impl Write, ty: u32, v: &Value) -> std::io::Result<()> {
    match (ty, v) {
        (4, Value::U64(x)) => w.write_all(&(*x as u32).to_le_bytes()),
        (10, Value::U64(x)) => w.write_all(&x.to_le_bytes()),
        (5, Value::I64(x)) => w.write_all(&(*x as i32).to_le_bytes()),
        (11, Value::I64(x)) => w.write_all(&x.to_le_bytes()),
        (6, Value::F64(x)) => w.write_all(&(*x as f32).to_le_bytes()),
        (12, Value::F64(x)) => w.write_all(&x.to_le_bytes()),
        (7, Value::Bool(x)) => w.write_all(&[*x as u8]),
        (8, Value::Str(s)) => put_string(w, s),
        (9, Value::Array(items)) => {
            let ety = array_type(items)?;
            w.write_all(&ety.to_le_bytes())?;
            w.write_all(&(items.len() as u64).to_le_bytes())?;
            items.iter().try_for_each(|v| put_payload(w, ety, v))
        }
        _ => Err(std::io::Error::other("value does not fit its GGUF type")),
    }
}

fn put_value(w: &mut impl Write, v: &Value) -> std::io::Result<()> {
    let ty = type_id(v);
    w.write_all(&ty.to_le_bytes())?;
    put_payload(w, ty, v)
}

/// Writes a GGUF v3 file with `metadata` and `tensors` (alignment 32). `general.alignment`
/// is always written, as u32 (the type GGUF readers expect); one in `metadata` is ignored.
pub fn write(
    path: &Path,
    metadata: &[(String, Value)],
    tensors: &[TensorData],
) -> Result<(), GgufError> {
    let io = |source| GgufError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut header = Vec::new();
    header.extend_from_slice(&MAGIC);
    header.extend_from_slice(&3u32.to_le_bytes());
    header.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    let metadata: Vec<&(String, Value)> = metadata
        .iter()
        .filter(|(k, _)| k != "general.alignment")
        .collect();
    header.extend_from_slice(&(metadata.len() as u64 + 1).to_le_bytes());
    put_string(&mut header, "general.alignment").map_err(io)?;
    header.extend_from_slice(&4u32.to_le_bytes());
    header.extend_from_slice(&(DEFAULT_ALIGNMENT as u32).to_le_bytes());
    for (k, v) in metadata {
        put_string(&mut header, k).map_err(io)?;
        put_value(&mut header, v).map_err(io)?;
    }
    let mut offset = 0u64;
    for t in tensors {
        put_string(&mut header, &t.name).map_err(io)?;
        header.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
        for d in &t.dims {
            header.extend_from_slice(&d.to_le_bytes());
        }
        header.extend_from_slice(&type_of(t.format).to_le_bytes());
        header.extend_from_slice(&offset.to_le_bytes());
        offset = (offset + t.bytes.len() as u64).div_ceil(DEFAULT_ALIGNMENT) * DEFAULT_ALIGNMENT;
    }
    let pad = |n: u64| vec![0u8; (n.div_ceil(DEFAULT_ALIGNMENT) * DEFAULT_ALIGNMENT - n) as usize];
    let header_pad = pad(header.len() as u64);
    // Atomically: a reader never sees a half-written file.
    crate::atomic::write_with(path, |w| {
        w.write_all(&header)?;
        w.write_all(&header_pad)?;
        for t in tensors {
            w.write_all(&t.bytes)?;
            w.write_all(&pad(t.bytes.len() as u64))?;
        }
        Ok(())
    })
    .map_err(io)
}
