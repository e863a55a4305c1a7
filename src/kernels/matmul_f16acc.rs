//! f16 x f16 matmul with f16 accumulation (the f16acc precision, nt layout): needs
//! SHADER_F16. Two kernels: `matmul_regblock`'s nt entry point with the element type f16
//! (operands, accumulators and arithmetic), B read through `regblock_b_f16acc`; and
//! `matmul_f16acc_tiled`, the same arithmetic as a workgroup tile.

use std::sync::Arc;

use half::f16;

use crate::error::{LabError, Result};
use crate::gpu::pipeline::{self as gpu_pipeline, Binding, PipelineSpec};
use crate::gpu::timing::{self, GpuTimer, TimingSource};
use crate::gpu::{buffers, dispatch, Context};
use crate::kernels::matmul::MatmulParams;
use crate::kernels::matmul_wq::{TiledKernel, WqKernel, WqVariant};
use crate::shaders::Define;

const BINDINGS: [Binding; 4] = [
    Binding::Uniform,
    Binding::ReadOnly,
    Binding::ReadOnly,
    Binding::ReadWrite,
];

/// The pipeline: `matmul_regblock`'s nt entry point with ELEM = f16 (bindings: params, A,
/// W, C, as the f32 kernels).
pub fn spec(kernel: WqKernel) -> PipelineSpec<'static> {
    let mut defines = vec![
        Define::Enable("f16"),
        Define::U32("TM", kernel.tm),
        Define::U32("TN", kernel.tn),
        Define::Alias("ELEM", "f16"),
        Define::Import("regblock_b_f16acc".into()),
    ];
    defines.extend(crate::kernels::matmul::regblock_splices(
        kernel.tm, kernel.tn,
    ));
    PipelineSpec {
        stem: "matmul_regblock",
        defines,
        entry: "main_nt",
        constants: vec![("WG_X", kernel.wg_x as f64)],
        bindings: BINDINGS.to_vec(),
    }
}

/// The tiled pipeline (same bindings as [`spec`]).
pub fn tiled_spec(tile: TiledKernel) -> PipelineSpec<'static> {
    PipelineSpec {
        stem: "matmul_f16acc_tiled",
        defines: vec![
            Define::Enable("f16"),
            Define::U32("BM", tile.bm),
            Define::U32("BN", tile.bn),
            Define::U32("TM", tile.tm),
            Define::U32("TN", tile.tn),
            Define::U32("KV", tile.kv),
        ],
        entry: "main",
        constants: vec![],
        bindings: BINDINGS.to_vec(),
    }
}

/// Rounds rows of `k` values to f16, padding each to `kp` with zeros.
pub fn to_f16_rows(x: &[f32], rows: usize, k: usize, kp: usize) -> Vec<f16> {
    let mut out = vec![f16::ZERO; rows * kp];
    for r in 0..rows {
        for i in 0..k {
            out[r * kp + i] = f16::from_f32(x[r * k + i]);
        }
    }
    out
}

/// An f16-accumulation matmul with both operands on the GPU.
pub struct PreparedMatmulF16Acc {
    /// The kernel: a register block or a workgroup tile.
    pub variant: WqVariant,
    /// Activation rows.
    pub m: usize,
    /// Weight rows.
    pub n: usize,
    /// Inner dimension.
    pub k: usize,
    /// Weight bytes on the GPU.
    pub weight_bytes: u64,
    /// Host time creating the pipeline (None when cached).
    pub pipeline_ms: Option<f64>,
    pipeline: Arc<wgpu::ComputePipeline>,
    bind_group: wgpu::BindGroup,
    c: wgpu::Buffer,
    grid: (u32, u32),
}

impl PreparedMatmulF16Acc {
    /// Rounds A (m x k) and W (n x k) to f16 and uploads them. Fails with the reason when
    /// the device lacks SHADER_F16.
    pub fn new(
        ctx: &Context,
        kernel: WqKernel,
        a: &[f32],
        w: &[f32],
        m: usize,
        n: usize,
        k: usize,
    ) -> Result<Self> {
        Self::with_variant(ctx, WqVariant::Regblock(kernel), a, w, m, n, k)
    }

    /// As [`PreparedMatmulF16Acc::new`] with a register block or a workgroup tile.
    pub fn with_variant(
        ctx: &Context,
        variant: WqVariant,
        a: &[f32],
        w: &[f32],
        m: usize,
        n: usize,
        k: usize,
    ) -> Result<Self> {
        if !ctx.has(wgpu::Features::SHADER_F16) {
            return Err(LabError::MissingFeature {
                feature: "SHADER_F16",
                adapter: ctx.summary.name.clone(),
            });
        }
        if m == 0 || n == 0 || k == 0 || a.len() != m * k || w.len() != n * k {
            return Err(LabError::Shape(format!(
                "f16acc: A has {} values, W {}, for m={m} n={n} k={k}",
                a.len(),
                w.len()
            )));
        }
        let (spec, (bm, bn)) = match variant {
            WqVariant::Regblock(kernel) => (spec(kernel), kernel.block()),
            WqVariant::Tiled(t) => {
                let l = ctx.limits();
                if !t.fits(&l) {
                    return Err(LabError::OverLimit {
                        what: format!("{t:?} f16acc tile (or tm, tn not dividing bm, bn)"),
                        asked: t.workgroup_bytes() as u64,
                        limit_name: "max_compute_workgroup_storage_size",
                        limit: l.max_compute_workgroup_storage_size as u64,
                    });
                }
                (tiled_spec(t), (t.bm, t.bn))
            }
            WqVariant::Scalar { .. } | WqVariant::Sgblock { .. } => {
                return Err(LabError::InvalidArgument(format!(
                    "{} has no f16acc form (it runs f32 or weight formats)",
                    variant.describe()
                )))
            }
            WqVariant::Gemv { .. } | WqVariant::Broadcast { .. } => {
                return Err(LabError::InvalidArgument(
                    "f16acc has no GEMV kernel: use a register block for m = 1".into(),
                ))
            }
        };
        let (pipeline, pipeline_ms) = gpu_pipeline::build(ctx, &spec)?;
        let kp = k.div_ceil(4) * 4;
        let tiles_n = n.div_ceil(bn as usize);
        let tiles = m.div_ceil(bm as usize) * tiles_n;
        let params = MatmulParams {
            m: m as u32,
            n: n as u32,
            k: kp as u32,
            tiles_n: tiles_n as u32,
            tiles: tiles as u32,
            lda: kp as u32,
            ldb: kp as u32,
            _pad: 0,
        };
        let u = buffers::uniform(ctx, "matmul_f16acc.params", &params)?;
        let a_buf = buffers::upload(ctx, "matmul_f16acc.a", &to_f16_rows(a, m, k, kp))?;
        let w16 = to_f16_rows(w, n, k, kp);
        let w_buf = buffers::upload(ctx, "matmul_f16acc.w", &w16)?;
        let c = buffers::storage(ctx, "matmul_f16acc.c", (m * n * 4) as u64)?;
        let bind_group =
            gpu_pipeline::bind_group(ctx, &pipeline, "matmul_f16acc", &[&u, &a_buf, &w_buf, &c])?;
        Ok(Self {
            variant,
            m,
            n,
            k,
            weight_bytes: (w16.len() * 2) as u64,
            pipeline_ms,
            pipeline,
            bind_group,
            c,
            grid: dispatch::grid(
                tiles as u64,
                ctx.limits().max_compute_workgroups_per_dimension,
            )?,
        })
    }
}

impl crate::gpu::measure::GpuOp for PreparedMatmulF16Acc {
    fn poison(&self, ctx: &Context) {
        buffers::poison(ctx, &self.c);
    }

    fn run(&self, ctx: &Context, timer: Option<&GpuTimer>) -> Result<(f64, TimingSource)> {
        timing::time_pass(ctx, timer, "matmul_f16acc", |pass| {
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &self.bind_group, &[]);
            pass.dispatch_workgroups(self.grid.0, self.grid.1, 1);
        })
    }

    fn read(&self, ctx: &Context) -> Result<Vec<f32>> {
        buffers::read(ctx, &self.c, self.m * self.n)
    }
}
