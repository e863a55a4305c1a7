//! The library's error type: one variant per failure a user can act on.

use std::path::PathBuf;

/// Everything that can go wrong in wgpu-lab, each with enough context to act on.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// No adapter at all: the machine has no GPU driver and no software rasteriser.
    #[error(
        "no GPU adapter found{backend_note}.\n\
         To run without a GPU install a software adapter:\n  \
         Debian/Ubuntu: sudo apt-get install mesa-vulkan-drivers   (Vulkan lavapipe)\n  \
         Fedora:        sudo dnf install mesa-vulkan-drivers\n  \
         Windows:       WARP ships with Windows (use --backend dx12 --fallback)\n\
         then check with `wgpu-lab adapters`."
    )]
    NoAdapter {
        /// Which backend filter was in force, if any, as text for the message.
        backend_note: String,
    },

    /// `--adapter` or `--backend` matched nothing; lists what exists.
    #[error("no adapter matches {wanted:?}; available adapters:\n{available}")]
    AdapterNotFound {
        /// What the user asked for.
        wanted: String,
        /// One line per adapter that exists.
        available: String,
    },

    /// An unknown backend name.
    #[error("unknown backend {0:?}: expected one of vulkan, metal, dx12, gl")]
    UnknownBackend(String),

    /// The adapter refused to create a device.
    #[error("could not create a device on {adapter}: {source}")]
    RequestDevice {
        /// Adapter name.
        adapter: String,
        /// wgpu's reason.
        #[source]
        source: wgpu::RequestDeviceError,
    },

    /// A matrix dimension was zero or inconsistent with the data given.
    #[error("invalid shape: {0}")]
    Shape(String),
    /// A combination of options that cannot work, with what to do instead.
    #[error("{0}")]
    InvalidArgument(String),

    /// A problem too large for the adapter even after splitting the work.
    #[error("{what} needs {asked} bytes but the adapter's {limit_name} is {limit} bytes")]
    OverLimit {
        /// What needed the space.
        what: String,
        /// Bytes asked for.
        asked: u64,
        /// The wgpu limit's name.
        limit_name: &'static str,
        /// The limit's value.
        limit: u64,
    },

    /// The kernel or option named does not exist.
    #[error("unknown {kind} {name:?}; expected one of: {expected}")]
    UnknownName {
        /// What kind of thing ("kernel", "layout", "precision").
        kind: &'static str,
        /// What was given.
        name: String,
        /// The valid names.
        expected: String,
    },

    /// wgpu reported a validation or out-of-memory error inside an error scope.
    #[error("wgpu error during {during}: {source}")]
    Wgpu {
        /// The operation that failed.
        during: String,
        /// wgpu's error.
        #[source]
        source: wgpu::Error,
    },

    /// A kernel this adapter cannot run, and why (a missing feature or a too-small size).
    #[error("{0}")]
    Unsupported(String),

    /// The adapter lacks a feature this kernel needs.
    #[error("{adapter} lacks {feature}")]
    MissingFeature {
        /// The wgpu feature.
        feature: &'static str,
        /// The adapter's name.
        adapter: String,
    },

    /// The device was lost (driver reset, hang, out of memory).
    #[error("the GPU device was lost: {0}")]
    DeviceLost(String),

    /// The GPU did not finish within the time allowed.
    #[error("the GPU did not finish {during} within {seconds} s (hung or far too slow)")]
    Timeout {
        /// The operation waited on.
        during: String,
        /// Seconds waited.
        seconds: u64,
    },

    /// Mapping a buffer for read-back failed.
    #[error("reading results back from the GPU failed: {0}")]
    Readback(String),

    /// A shader failed to assemble from its sources (missing import).
    #[error("shader {shader}: {message}")]
    Shader {
        /// Shader stem.
        shader: String,
        /// What went wrong.
        message: String,
    },

    /// A user's kernel file (the kernel lab) that does not parse, does not validate, or
    /// breaks its op's contract; `message` names the line or the binding.
    #[error("{path}: {message}")]
    Kernel {
        /// The file.
        path: String,
        /// What is wrong, with the line or binding.
        message: String,
    },

    /// A `.npy` file is unreadable or of an unsupported kind.
    #[error("{path}: {message}")]
    Npy {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// A model folder or file that is missing pieces or holds the wrong shapes.
    #[error("{path}: {message}")]
    Model {
        /// The folder or file.
        path: PathBuf,
        /// What is missing or wrong, and how to fix it.
        message: String,
    },

    /// A CPU baseline library (llama.cpp/ggml, candle) refused or failed an operation.
    #[error("CPU baseline {library}: {message}")]
    CpuBaseline {
        /// The library.
        library: &'static str,
        /// Its error.
        message: String,
    },

    /// Plain I/O on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Result alias used across the library.
pub type Result<T, E = LabError> = std::result::Result<T, E>;
