//! A user's WGSL kernel: read, parsed and validated by naga (errors with file:line), its
//! header read, its bindings held to the op's contract, its `override` constants listed,
//! and compiled into a pipeline with the contract's bind group layout.

use std::collections::BTreeMap;
use std::path::Path;

use naga::{AddressSpace, ArraySize, Expression, Literal, ScalarKind, StorageAccess, TypeInner};

use crate::error::{LabError, Result};
use crate::gpu::pipeline::{self, Binding, Checks};
use crate::gpu::Context;
use crate::lab::contract::{BindingContract, Elem, Op, Slot, UNIFORM_BYTES};
use crate::lab::header::{self, Header};

/// A user's kernel, parsed and validated, with the constants its pipeline will get.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// Where it came from (the file's path, or a name), for messages.
    pub path: String,
    /// The WGSL source.
    pub source: String,
    /// Its `// lab:` header.
    pub header: Header,
    /// Its `override` constants, with their defaults where the file gives one.
    pub overrides: BTreeMap<String, Option<f64>>,
    /// Constants set from outside (`--set`, a tuned entry), over the defaults.
    pub set: BTreeMap<String, f64>,
    /// Features its code needs beyond the core (an `f16` type, subgroup operations).
    pub features: wgpu::Features,
    /// naga's runtime checks its pipeline gets: all of them unless the user vouches that
    /// every loop ends ([`Kernel::with_trusted_loops`]), as the built-in kernels do.
    pub checks: Checks,
    module: naga::Module,
}

impl Kernel {
    /// Reads and parses a kernel file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let source = std::fs::read_to_string(path).map_err(|source| LabError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_source(&path.display().to_string(), &source)
    }

    /// Parses `source` (named `path` in messages): its header, then naga's parse and
    /// validation. Errors carry naga's message with `path:line:column`.
    pub fn from_source(path: &str, source: &str) -> Result<Self> {
        let err = |message: String| LabError::Kernel {
            path: path.to_string(),
            message,
        };
        let header = header::parse(source).map_err(|m| err(format!("header {m}")))?;
        // naga's message after `path:line:column: `, then its full report.
        let naga_err = |at: Option<naga::SourceLocation>, message: String, report: String| {
            let at = at
                .map(|l| format!("{path}:{}:{}: ", l.line_number, l.line_position))
                .unwrap_or_default();
            err(format!("{at}{message}\n{report}"))
        };
        let module = naga::front::wgsl::parse_str(source).map_err(|e| {
            naga_err(
                e.location(source),
                e.message().to_string(),
                e.emit_to_string_with_path(source, path),
            )
        })?;
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::all(),
        )
        .validate(&module)
        .map_err(|e| {
            naga_err(
                e.location(source),
                e.as_inner().to_string(),
                e.emit_to_string_with_path(source, path),
            )
        })?;
        let overrides = module
            .overrides
            .iter()
            .filter_map(|(_, o)| {
                let name = o.name.clone()?;
                let default = o.init.and_then(|h| literal(&module.global_expressions[h]));
                Some((name, default))
            })
            .collect();
        let mut features = features_of(&module);
        // WGSL allows f16 only after `enable f16;` (a conversion to f16 leaves no type
        // behind in the module to find).
        let enables_f16 = source.lines().any(|l| {
            let l = l.trim_start();
            l.starts_with("enable") && l.contains("f16")
        });
        if enables_f16 {
            features |= wgpu::Features::SHADER_F16;
        }
        let k = Self {
            path: path.to_string(),
            source: source.to_string(),
            header,
            overrides,
            set: BTreeMap::new(),
            features,
            checks: Checks::All,
            module,
        };
        k.check_header_names()?;
        Ok(k)
    }

    fn err(&self, message: String) -> LabError {
        LabError::Kernel {
            path: self.path.clone(),
            message,
        }
    }

    /// Names in the tile and `tune` lines must be the file's override constants.
    fn check_header_names(&self) -> Result<()> {
        let tile_names = self
            .header
            .tile
            .iter()
            .flat_map(|(r, c)| r.names().chain(c.names()));
        let tune_names = self.header.tune.iter().map(|(n, _)| n.as_str());
        for name in tile_names.chain(tune_names) {
            if !self.overrides.contains_key(name) {
                return Err(self.err(format!(
                    "the header names `{name}`, which is not an `override` constant of the \
                     file (it has: {})",
                    self.override_list()
                )));
            }
        }
        Ok(())
    }

    fn override_list(&self) -> String {
        if self.overrides.is_empty() {
            "none".into()
        } else {
            self.overrides
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        }
    }

    /// The kernel compiled without naga's loop counter when `trusted` (the user vouches that
    /// every loop of it ends), as the built-in kernels are, so that a comparison between
    /// them is like for like; with every check otherwise.
    pub fn with_trusted_loops(mut self, trusted: bool) -> Self {
        self.checks = if trusted {
            Checks::TrustedLoops
        } else {
            Checks::All
        };
        self
    }

    /// The kernel with `constants` set over its defaults; each must be an override constant
    /// of the file.
    pub fn with_constants(mut self, constants: &BTreeMap<String, f64>) -> Result<Self> {
        for (name, &v) in constants {
            if !self.overrides.contains_key(name) {
                return Err(self.err(format!(
                    "`{name}` is not an `override` constant of the file (it has: {})",
                    self.override_list()
                )));
            }
            self.set.insert(name.clone(), v);
        }
        Ok(self)
    }

    /// Every override constant's value: the set one, else the file's default. A constant
    /// with neither is an error naming it.
    pub fn constants(&self) -> Result<BTreeMap<String, f64>> {
        self.overrides
            .iter()
            .map(
                |(name, default)| match self.set.get(name).copied().or(*default) {
                    Some(v) => Ok((name.clone(), v)),
                    None => Err(self.err(format!(
                        "override `{name}` has no default: give it one in the file or set it \
                     with --set {name}=VALUE"
                    ))),
                },
            )
            .collect()
    }

    /// The op: `flag` when given, else the header's op and precision.
    pub fn op(&self, flag: Option<&str>, precision: Option<&str>) -> Result<Op> {
        let op = flag.or(self.header.op.as_deref()).ok_or_else(|| {
            self.err(format!(
                "which op does it implement? Add `// lab: op = NAME` to the file or pass \
                 --op (one of {})",
                Op::NAMES.join(", ")
            ))
        })?;
        Op::parse(op, precision.or(self.header.precision.as_deref()))
    }

    /// The entry point's name (`main` unless the header says otherwise).
    pub fn entry(&self) -> &str {
        self.header.entry.as_deref().unwrap_or("main")
    }

    /// Rows x columns of C one workgroup writes, from the header's `tile` line evaluated
    /// with [`Kernel::constants`].
    pub fn tile(&self) -> Result<(u32, u32)> {
        let (r, c) = self.header.tile.as_ref().ok_or_else(|| {
            self.err(
                "how many outputs does a workgroup write? Add `// lab: tile = ROWS x COLS` \
                 (numbers or override names, e.g. `4 x WG_X*4`)"
                    .into(),
            )
        })?;
        let k = self.constants()?;
        let side = |p: &header::Product| -> Result<u32> {
            let v = p
                .eval(&k)
                .map_err(|m| self.err(format!("tile `{r} x {c}`: {m}")))?;
            u32::try_from(v)
                .ok()
                .filter(|&v| v > 0)
                .ok_or_else(|| self.err(format!("tile `{r} x {c}`: a side of {v} outputs")))
        };
        Ok((side(r)?, side(c)?))
    }

    /// Holds the file to `op`'s contract: a compute entry point, and every binding of
    /// group 0 declared where the contract puts it, with its address space, access and
    /// element type. Errors name the binding and say what the contract wants.
    pub fn check_contract(&self, op: Op) -> Result<()> {
        let entry = self.entry();
        let found = self
            .module
            .entry_points
            .iter()
            .any(|e| e.name == entry && e.stage == naga::ShaderStage::Compute);
        if !found {
            let have: Vec<&str> = self
                .module
                .entry_points
                .iter()
                .map(|e| e.name.as_str())
                .collect();
            return Err(self.err(format!(
                "no compute entry point `{entry}` (the file has: {}); name it in the header \
                 with `// lab: entry = NAME`",
                if have.is_empty() {
                    "none".into()
                } else {
                    have.join(", ")
                }
            )));
        }
        let contract = op.bindings();
        for (_, g) in self.module.global_variables.iter() {
            let Some(rb) = &g.binding else { continue };
            let name = g.name.as_deref().unwrap_or("?");
            let Some(want) = contract.get(rb.binding as usize).filter(|_| rb.group == 0) else {
                return Err(self.err(format!(
                    "`{name}` is bound at @group({}) @binding({}), outside {}'s contract: \
                     group 0, bindings 0..{} ({})",
                    rb.group,
                    rb.binding,
                    op.label(),
                    contract.len() - 1,
                    describe_contract(&contract)
                )));
            };
            self.check_binding(g, want).map_err(|m| {
                self.err(format!(
                    "@binding({}) `{name}`: {m}; {}'s binding {} is `{}`: {} ({})",
                    rb.binding,
                    op.label(),
                    rb.binding,
                    want.name,
                    wgsl_of(want),
                    want.holds
                ))
            })?;
        }
        Ok(())
    }

    fn check_binding(
        &self,
        g: &naga::GlobalVariable,
        want: &BindingContract,
    ) -> std::result::Result<(), String> {
        let types = &self.module.types;
        let inner = &types[g.ty].inner;
        match (want.slot, g.space) {
            (Slot::Uniform(fields), AddressSpace::Uniform) => {
                let TypeInner::Struct { members, span } = inner else {
                    return Err("the uniform must be a struct of u32 fields".into());
                };
                if *span as u64 > UNIFORM_BYTES {
                    return Err(format!(
                        "the struct is {span} bytes, more than the {UNIFORM_BYTES} bound"
                    ));
                }
                for (i, m) in members.iter().enumerate() {
                    let is_u32 = matches!(
                        types[m.ty].inner,
                        TypeInner::Scalar(naga::Scalar {
                            kind: ScalarKind::Uint,
                            width: 4
                        })
                    );
                    let mname = m.name.as_deref().unwrap_or("?");
                    let expected = fields.get(i).copied().unwrap_or("?");
                    if !is_u32 || m.offset != 4 * i as u32 || mname != expected {
                        return Err(format!(
                            "field {i} is `{mname}` at byte {}, the contract has `{expected}: \
                             u32` at byte {} (fields: {})",
                            m.offset,
                            4 * i,
                            fields.join(", ")
                        ));
                    }
                }
                Ok(())
            }
            (Slot::Read(elem), AddressSpace::Storage { access })
            | (Slot::Write(elem), AddressSpace::Storage { access }) => {
                let writes = access.contains(StorageAccess::STORE);
                let wants_write = matches!(want.slot, Slot::Write(_));
                if writes != wants_write {
                    return Err(format!(
                        "declared {}",
                        if writes { "read_write" } else { "read" }
                    ));
                }
                let TypeInner::Array { base, size, .. } = inner else {
                    return Err("not an array".into());
                };
                if !matches!(size, ArraySize::Dynamic) {
                    return Err(
                        "a fixed-size array (the buffer's size varies with the shape)".into(),
                    );
                }
                let scalar = match types[*base].inner {
                    TypeInner::Scalar(s) => s,
                    TypeInner::Vector { scalar, .. } => scalar,
                    _ => return Err("an array of neither scalars nor vectors".into()),
                };
                let ok = match elem {
                    Elem::F32 => scalar.kind == ScalarKind::Float && scalar.width == 4,
                    Elem::U32 => scalar.kind == ScalarKind::Uint && scalar.width == 4,
                };
                if !ok {
                    return Err(format!(
                        "an array of {} elements",
                        types[*base]
                            .name
                            .clone()
                            .unwrap_or_else(|| scalar_name(scalar))
                    ));
                }
                Ok(())
            }
            (_, space) => Err(format!("declared in address space {space:?}")),
        }
    }

    /// Compiles the pipeline for `op` with the kernel's constants: the contract's bind
    /// group layout, the driver's own compiler. Errors are the driver's or wgpu's message.
    pub fn pipeline(&self, ctx: &Context, op: Op) -> Result<wgpu::ComputePipeline> {
        let constants = self.constants()?;
        let constants: Vec<(&str, f64)> = constants.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let bindings: Vec<Binding> = op
            .bindings()
            .iter()
            .map(|b| match b.slot {
                Slot::Uniform(_) => Binding::Uniform,
                Slot::Read(_) => Binding::ReadOnly,
                Slot::Write(_) => Binding::ReadWrite,
            })
            .collect();
        pipeline::compile(
            ctx,
            &self.path,
            &self.source,
            self.entry(),
            &constants,
            &bindings,
            self.checks,
        )
        .map_err(|e| self.err(format!("the driver refused it: {e}")))
    }

    /// Why the adapter cannot run this kernel (a feature its code needs), if so.
    pub fn unsupported(&self, ctx: &Context) -> Option<String> {
        let missing = self.features - ctx.device.features();
        (!missing.is_empty()).then(|| {
            format!(
                "{} lacks {missing:?}, which the kernel's code needs ({})",
                ctx.summary.name,
                if missing.contains(wgpu::Features::SHADER_F16) {
                    "it uses f16"
                } else {
                    "it uses subgroup operations"
                }
            )
        })
    }
}

/// The value of a literal default.
fn literal(e: &Expression) -> Option<f64> {
    match e {
        Expression::Literal(l) => Some(match *l {
            Literal::F64(v) => v,
            Literal::F32(v) => v as f64,
            Literal::U32(v) => v as f64,
            Literal::I32(v) => v as f64,
            Literal::U64(v) => v as f64,
            Literal::I64(v) => v as f64,
            Literal::AbstractInt(v) => v as f64,
            Literal::AbstractFloat(v) => v,
            Literal::Bool(b) => b as u8 as f64,
            _ => return None,
        }),
        _ => None,
    }
}

/// Features the module's code needs: SHADER_F16 for any f16 type, SUBGROUP for any
/// subgroup operation or built-in.
fn features_of(m: &naga::Module) -> wgpu::Features {
    let mut f = wgpu::Features::empty();
    let f16 = m.types.iter().any(|(_, t)| match t.inner {
        TypeInner::Scalar(s) | TypeInner::Vector { scalar: s, .. } => {
            s.kind == ScalarKind::Float && s.width == 2
        }
        _ => false,
    });
    if f16 {
        f |= wgpu::Features::SHADER_F16;
    }
    let functions = m
        .functions
        .iter()
        .map(|(_, f)| f)
        .chain(m.entry_points.iter().map(|e| &e.function));
    let mut subgroup = false;
    for func in functions {
        subgroup |= func.expressions.iter().any(|(_, e)| {
            matches!(
                e,
                Expression::SubgroupBallotResult | Expression::SubgroupOperationResult { .. }
            )
        });
        subgroup |= func.arguments.iter().any(|a| {
            matches!(
                a.binding,
                Some(naga::Binding::BuiltIn(
                    naga::BuiltIn::SubgroupSize
                        | naga::BuiltIn::SubgroupInvocationId
                        | naga::BuiltIn::NumSubgroups
                        | naga::BuiltIn::SubgroupId
                ))
            )
        });
    }
    if subgroup {
        f |= wgpu::Features::SUBGROUP;
    }
    f
}

fn scalar_name(s: naga::Scalar) -> String {
    let k = match s.kind {
        ScalarKind::Float => "f",
        ScalarKind::Uint => "u",
        ScalarKind::Sint => "i",
        _ => "?",
    };
    format!("{k}{}", s.width * 8)
}

fn wgsl_of(b: &BindingContract) -> String {
    match b.slot {
        Slot::Uniform(_) => "var<uniform> (a struct of u32)".into(),
        Slot::Read(e) => format!("var<storage, read> array<{}> (or of vec2/vec4)", e.wgsl()),
        Slot::Write(e) => format!("var<storage, read_write> array<{}>", e.wgsl()),
    }
}

fn describe_contract(c: &[BindingContract]) -> String {
    c.iter()
        .enumerate()
        .map(|(i, b)| format!("{i} {}", b.name))
        .collect::<Vec<_>>()
        .join(", ")
}
