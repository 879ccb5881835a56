//! rdeploy's OpenVINO backend: `to_backend` converts the ONNX file to OpenVINO IR (`.xml` +
//! `.bin`) with OpenVINO's own `ovc` converter, and the wrapper runs it through OpenVINO's C
//! library, loaded at run time with the [`openvino`] crate.
//!
//! ```no_run
//! use rdeploy_core::Registry;
//! let mut registry = Registry::new();
//! registry.install(&rdeploy_backend_openvino::BACKEND)?;
//! println!("{}", registry.get("openvino")?.check_env_line()); // openvino: 2026.4.1 ... or None (reason)
//! # Ok::<(), rdeploy_core::Error>(())
//! ```
//!
//! Loading ([`locate`]): `RDEPLOY_OPENVINO_LIB`, else the `openvino` pip package of the active
//! Python environment, else an archive install or system folders. The version is probed before
//! the `openvino` crate loads the library, so a too-old or broken library is an error naming the
//! file, never a panic.
//!
//! Precision: OpenVINO's CPU plugin infers in bf16 on CPUs with AVX-512 BF16 / AMX, and `ovc`
//! compresses weights to fp16, by default. rdeploy is f32 end to end unless the deploy config
//! asks otherwise (`backend_config.precision = 'fp16'`, or `inference_precision`); the precision
//! in effect is reported by [`Wrapper::settings`] (shown by `rdeploy bench`) and `check-env`.
//!
//! Concurrency: the compiled model hands out one infer request per concurrent caller (a pool that
//! grows to the number of callers), so `forward` from many threads is safe and runs in parallel
//! as far as the compiled model's streams allow.

#![deny(unsafe_op_in_unsafe_fn)]

mod convert;
mod limits;
pub mod locate;
mod profile;
mod settings;

use openvino::{
    CompiledModel, Core, DeviceType, ElementType, InferRequest, PropertyKey, RwPropertyKey, Shape,
};
use rdeploy_core::{
    BackendDescriptor, BackendManager, DType, DeployConfig, Device, Dim, Error, Result, Signature,
    Tensor, TensorInfo, Wrapper,
};
use settings::{ModelFormat, Settings};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// The backend's registered name (MMDeploy's `Backend.OPENVINO`).
pub const NAME: &str = "openvino";

/// The descriptor the CLI (or any registry) installs.
pub const BACKEND: BackendDescriptor = BackendDescriptor {
    name: NAME,
    aliases: &["ov"],
    create: || Arc::new(OpenVinoBackend),
};

/// The OpenVINO backend manager.
#[derive(Debug, Default, Clone, Copy)]
pub struct OpenVinoBackend;

/// The loaded library: where it came from, its version, the devices it sees.
#[derive(Debug)]
struct Runtime {
    found: locate::Found,
    devices: Vec<String>,
    /// The CPU plugin's own default inference precision (bf16 on CPUs with bf16 units).
    cpu_default_precision: Option<String>,
}

static RUNTIME: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();

fn runtime() -> std::result::Result<&'static Runtime, String> {
    RUNTIME
        .get_or_init(|| {
            let found = locate::locate()?;
            let probe = rdeploy_core::guard::catch_engine_panic(NAME, "loading", || {
                openvino_sys::library::load_from(found.path.clone()).map_err(|e| {
                    Error::backend(NAME, format!("cannot load {}: {e}", found.path.display()))
                })?;
                let core = Core::new().map_err(|e| ov_err("creating the runtime", e))?;
                let devices = core
                    .available_devices()
                    .map_err(|e| ov_err("listing devices", e))?
                    .iter()
                    .map(|d| d.as_ref().to_string())
                    .collect::<Vec<_>>();
                let cpu_default_precision = core
                    .get_property(
                        &DeviceType::CPU,
                        &PropertyKey::Rw(RwPropertyKey::HintInferencePrecision),
                    )
                    .ok();
                Ok((devices, cpu_default_precision))
            });
            let (devices, cpu_default_precision) = probe.map_err(|e| e.to_string())?;
            tracing::debug!(
                "OpenVINO {} from {} ({}), devices {devices:?}",
                found.build,
                found.path.display(),
                found.source
            );
            Ok(Runtime {
                found,
                devices,
                cpu_default_precision,
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn loaded() -> Result<&'static Runtime> {
    runtime().map_err(|reason| Error::BackendUnavailable {
        backend: NAME.into(),
        reason,
    })
}

fn ov_err(what: &str, e: impl Into<rdeploy_core::BoxError>) -> Error {
    Error::engine(NAME, what, e)
}

/// OpenVINO's device name for an rdeploy device: `cpu` → `CPU`, `gpu:1` → `GPU.1`, `npu` → `NPU`.
///
/// # Errors
/// [`Error::Device`] for kinds OpenVINO does not have, or devices this machine lacks.
fn ov_device(device: &Device) -> Result<String> {
    device.ensure_supported(NAME, &["cpu", "gpu", "npu"])?;
    let base = device.kind().to_ascii_uppercase();
    let name = match device.index() {
        Some(i) if !device.is_cpu() => format!("{base}.{i}"),
        _ => base.clone(),
    };
    let rt = loaded()?;
    let present = rt
        .devices
        .iter()
        .any(|d| *d == name || (device.index().is_none() && d.starts_with(&format!("{base}."))));
    if !present {
        return Err(Error::Device {
            device: device.to_string(),
            msg: format!(
                "OpenVINO {} on this machine has no {name} device (it has {}); install the device's driver or use --device cpu",
                rt.found.version,
                rt.devices.join(", ")
            ),
        });
    }
    Ok(name)
}

fn dtype_of(t: ElementType) -> Option<DType> {
    Some(match t {
        ElementType::F32 => DType::F32,
        ElementType::F16 => DType::F16,
        ElementType::F64 => DType::F64,
        ElementType::I8 => DType::I8,
        ElementType::I16 => DType::I16,
        ElementType::I32 => DType::I32,
        ElementType::I64 => DType::I64,
        ElementType::U8 => DType::U8,
        ElementType::U16 => DType::U16,
        ElementType::U32 => DType::U32,
        ElementType::U64 => DType::U64,
        ElementType::Boolean => DType::Bool,
        ElementType::Bf16 => DType::BF16,
        // OpenVINO's f8e4m3 is OCP/ONNX E4M3FN (NaN, no infinities); the C API and the
        // binding spell f8e5m2 `F8E5M3`.
        ElementType::F8E4M3 => DType::F8E4M3FN,
        ElementType::F8E5M3 => DType::F8E5M2,
        ElementType::F8E8M0 => DType::F8E8M0,
        ElementType::U4 => DType::U4,
        ElementType::I4 => DType::I4,
        ElementType::F4E2M1 => DType::F4E2M1,
        // Packed four per byte, the first element in the lowest bits, as ONNX packs UINT2.
        ElementType::U2 => DType::U2,
        // Strings: OpenVINO's C API can fill a string tensor but has no call to read one, and
        // the binding hides the tensor handle; float8 FNUZ variants and int2: OpenVINO has none.
        _ => return None,
    })
}

/// The signature of one port of a model read by OpenVINO (dynamic dims are unnamed).
fn port_info(node: &openvino::Node, what: &str) -> Result<TensorInfo> {
    let name = node
        .get_name()
        .map_err(|e| ov_err(&format!("reading the name of a model {what}"), e))?;
    let et = node
        .get_element_type()
        .map_err(|e| ov_err(&format!("reading the type of {what} '{name}'"), e))?;
    let dtype = dtype_of(et).ok_or_else(|| {
        Error::backend(
            NAME,
            format!("{what} '{name}' has element type {et}, which rdeploy cannot exchange with OpenVINO (its C API cannot read string tensors back)"),
        )
    })?;
    let ps = node
        .get_partial_shape()
        .map_err(|e| ov_err(&format!("reading the shape of {what} '{name}'"), e))?;
    let shape = if ps.get_rank().is_dynamic() {
        None
    } else {
        Some(
            ps.get_dimensions()
                .iter()
                .map(|d| {
                    if d.is_dynamic() {
                        Dim::Symbolic(String::new())
                    } else {
                        Dim::Fixed(d.get_min().max(0) as u64)
                    }
                })
                .collect(),
        )
    };
    Ok(TensorInfo { name, dtype, shape })
}

/// Reads a model file (`.xml` with its `.bin`, or `.onnx`) into `core`.
fn read_model(core: &mut Core, files: &[PathBuf]) -> Result<(openvino::Model, PathBuf)> {
    let by_ext = |ext: &str| {
        files
            .iter()
            .find(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext)))
    };
    let (model, weights) = match (by_ext("xml"), by_ext("onnx")) {
        (Some(xml), _) => {
            let bin = by_ext("bin")
                .cloned()
                .unwrap_or_else(|| xml.with_extension("bin"));
            if !bin.is_file() {
                return Err(Error::model(
                    xml,
                    format!(
                        "its weights file {} is missing; deploy again to regenerate both",
                        bin.display()
                    ),
                ));
            }
            (xml.clone(), Some(bin))
        }
        (None, Some(onnx)) => (onnx.clone(), None),
        (None, None) => {
            return Err(Error::backend(
                NAME,
                format!("expected an OpenVINO IR .xml/.bin pair or an .onnx file, got {files:?}"),
            ));
        }
    };
    let path_str = |p: &Path| {
        p.to_str().map(str::to_string).ok_or_else(|| {
            Error::model(
                p,
                "OpenVINO's C API needs a UTF-8 path; rename the file or folder",
            )
        })
    };
    let m = path_str(&model)?;
    let w = weights.as_deref().map(path_str).transpose()?;
    let read = core
        .read_model_from_file(&m, w.as_deref().unwrap_or(""))
        .map_err(|e| {
            // Checked on failure only, so a model that reads pays nothing.
            let why = if weights.is_none() {
                unreadable_ports_hint(&model)
            } else {
                String::new()
            };
            Error::model(&model, format!("OpenVINO cannot read it: {e}{why}"))
        })?;
    Ok((read, model))
}

/// For an ONNX model OpenVINO failed to read or convert, the inputs and outputs whose element
/// types its ONNX frontend does not read, as ` (input 'x' is i2: ...; use onnxruntime ...)`;
/// empty when there are none. The frontend's own message is a bare "Unsupported type".
pub(crate) fn unreadable_ports_hint(onnx: &Path) -> String {
    let ports = onnx_ports_openvino_cannot_read(onnx);
    if ports.is_empty() {
        String::new()
    } else {
        format!(" ({}; use onnxruntime for this model)", ports.join("; "))
    }
}

/// The inputs and outputs of an ONNX model whose element types OpenVINO's ONNX frontend does
/// not read, each with the reason: int2 and the float8 FNUZ variants have no OpenVINO element
/// type; uint2 has one (`u2`, which rdeploy exchanges with OpenVINO IR models) but the ONNX
/// frontend reads no UINT2 (OpenVINO 2026.4).
fn onnx_ports_openvino_cannot_read(onnx: &Path) -> Vec<String> {
    let Ok((_, info)) = rdeploy_core::onnx::inspect_file(onnx) else {
        return Vec::new();
    };
    let inputs = info.inputs.iter().map(|t| ("input", t));
    let outputs = info.outputs.iter().map(|t| ("output", t));
    inputs
        .chain(outputs)
        .filter_map(|(what, t)| {
            let why = match t.dtype {
                DType::I2 | DType::F8E4M3FNUZ | DType::F8E5M2FNUZ => {
                    "OpenVINO has no such element type"
                }
                DType::U2 => "OpenVINO's ONNX frontend does not read uint2",
                _ => return None,
            };
            Some(format!("{what} '{}' is {}: {why}", t.name, t.dtype))
        })
        .collect()
}

fn model_signature(model: &openvino::Model) -> Result<(Vec<TensorInfo>, Vec<TensorInfo>)> {
    let n_in = model
        .get_inputs_len()
        .map_err(|e| ov_err("counting inputs", e))?;
    let n_out = model
        .get_outputs_len()
        .map_err(|e| ov_err("counting outputs", e))?;
    let inputs = (0..n_in)
        .map(|i| {
            let node = model
                .get_input_by_index(i)
                .map_err(|e| ov_err("reading an input", e))?;
            port_info(&node, "input")
        })
        .collect::<Result<Vec<_>>>()?;
    let outputs = (0..n_out)
        .map(|i| {
            let node = model
                .get_output_by_index(i)
                .map_err(|e| ov_err("reading an output", e))?;
            port_info(&node, "output")
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((inputs, outputs))
}

/// A model compiled for a device with the config's properties, and the settings in effect.
struct Compiled {
    core: Core,
    compiled: CompiledModel,
    inputs: Vec<TensorInfo>,
    outputs: Vec<TensorInfo>,
    in_effect: Vec<(String, String)>,
}

fn compile(files: &[PathBuf], device: &Device, s: &Settings) -> Result<Compiled> {
    let dev_name = ov_device(device)?;
    rdeploy_core::guard::catch_engine_panic(NAME, "compiling the model", || {
        let mut core = Core::new().map_err(|e| ov_err("creating the runtime", e))?;
        let (model, path) = read_model(&mut core, files)?;
        let (inputs, outputs) = model_signature(&model)?;
        let dev = DeviceType::from(dev_name.as_str());
        // OpenVINO checks property names only when compiling; check them here to name the key.
        let supported = core
            .get_property(&dev, &PropertyKey::SupportedProperties)
            .unwrap_or_default();
        for (k, v) in s.properties() {
            if !supported.is_empty() && !supported.split([' ', ',']).any(|p| p == k) {
                return Err(Error::config_key(
                    s.key_for(&k),
                    format!(
                        "OpenVINO's {dev_name} plugin has no property '{k}' (it has: {})",
                        supported
                            .split([' ', ','])
                            .filter(|p| !p.is_empty())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            core.set_property(&dev, &RwPropertyKey::Other(k.clone().into()), &v)
                .map_err(|e| {
                    Error::config_key(
                        s.key_for(&k),
                        format!("OpenVINO's {dev_name} plugin refuses {k}={v}: {e}"),
                    )
                })?;
        }
        let compiled = core.compile_model(&model, dev).map_err(|e| {
            Error::model(
                &path,
                format!("OpenVINO cannot compile it for {dev_name}: {e}"),
            )
        })?;
        let mut in_effect = vec![("device".to_string(), dev_name.clone())];
        for (label, key) in [
            ("inference_precision", "INFERENCE_PRECISION_HINT"),
            ("performance_hint", "PERFORMANCE_HINT"),
            ("num_streams", "NUM_STREAMS"),
            ("inference_num_threads", "INFERENCE_NUM_THREADS"),
            ("optimal_infer_requests", "OPTIMAL_NUMBER_OF_INFER_REQUESTS"),
        ] {
            if let Ok(v) = compiled.get_property(&PropertyKey::Other(key.into())) {
                in_effect.push((label.to_string(), v.into_owned()));
            }
        }
        Ok(Compiled {
            core,
            compiled,
            inputs,
            outputs,
            in_effect,
        })
    })
}

impl BackendManager for OpenVinoBackend {
    fn name(&self) -> &str {
        NAME
    }

    fn check(&self) -> rdeploy_core::Availability {
        runtime().map(|r| r.found.version.clone())
    }

    fn check_env_line(&self) -> String {
        match runtime() {
            Ok(r) => format!(
                "{NAME}:\t{} (from {}: {}; devices: {}; CPU default precision {}, rdeploy uses f32 unless the config asks)",
                r.found.version,
                r.found.source,
                r.found.path.display(),
                r.devices.join(", "),
                r.cpu_default_precision.as_deref().unwrap_or("unknown"),
            ),
            Err(reason) => format!("{NAME}:\tNone ({reason})"),
        }
    }

    fn custom_ops(&self) -> Vec<String> {
        // Implemented by OpenVINO's own ONNX importer (checked against rdeploy's numpy
        // references in crates/rdeploy/tests/custom_ops.rs; MMCVRoIAlignRotated without
        // clockwise=1).
        vec![
            "mmdeploy::MMCVRoIAlignRotated".into(),
            "mmdeploy::NMSRotated".into(),
        ]
    }

    fn device_kinds(&self) -> &[&str] {
        &["cpu", "gpu", "npu"]
    }

    fn to_backend(
        &self,
        ir_files: &[PathBuf],
        deploy_cfg: &DeployConfig,
        work_dir: &Path,
        device: &Device,
    ) -> Result<Vec<PathBuf>> {
        let rt = loaded()?;
        ov_device(device)?;
        let onnx = rdeploy_core::single_file(NAME, "openvino's to_backend", ir_files)?;
        let s = Settings::from_config(deploy_cfg)?;
        let wide = limits::int64_arithmetic(&rdeploy_core::onnx::load(onnx)?);
        if !wide.is_empty() {
            tracing::warn!(
                "{} does 64-bit integer arithmetic ({}{}); OpenVINO's CPU plugin computes int64 in int32, so values beyond +-2^31 wrap without an error. Use onnxruntime or tract if such values occur (docs/backends/openvino.md)",
                onnx.display(),
                wide.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
                if wide.len() > 3 {
                    format!(" and {} more", wide.len() - 3)
                } else {
                    String::new()
                }
            );
        }
        let files = match s.model_format {
            ModelFormat::Onnx => vec![onnx.to_path_buf()],
            ModelFormat::Ir => {
                let ovc =
                    locate::ovc(&rt.found.path).map_err(|reason| Error::backend(NAME, reason))?;
                convert::onnx_to_ir(&ovc, onnx, deploy_cfg, &s, work_dir)?
            }
        };
        // Compiling once validates the result for the device now rather than at first use.
        compile(&files, device, &s)?;
        Ok(files)
    }

    fn build_wrapper(
        &self,
        backend_files: &[PathBuf],
        device: &Device,
        input_names: &[String],
        output_names: &[String],
        deploy_cfg: &DeployConfig,
    ) -> Result<Box<dyn Wrapper>> {
        loaded()?;
        let s = Settings::from_config(deploy_cfg)?;
        let mut c = compile(backend_files, device, &s)?;
        // OpenVINO's ONNX frontend drops graph inputs nothing uses (CastLike's `like`, a
        // Reduce's empty `axes`): callers still pass them, so they stay in the signature, from
        // the ONNX file, and are not bound.
        let unused = dropped_inputs(backend_files, &c.inputs, input_names)?;
        let known: Vec<TensorInfo> = c.inputs.iter().chain(&unused).cloned().collect();
        let sig = rdeploy_core::select_signature(
            NAME,
            &known,
            &c.outputs,
            input_names,
            output_names,
            device,
        )?;
        let unused: Vec<String> = unused.into_iter().map(|t| t.name).collect();
        // OpenVINO may list inputs in another order than the model (its frontend orders them
        // by use); inputs are bound by name, so the signature takes the model's order.
        let mut sig = sig;
        sig.inputs.sort_by_key(|t| {
            input_names
                .iter()
                .position(|n| n == &t.name)
                .unwrap_or(usize::MAX)
        });
        let first = c
            .compiled
            .create_infer_request()
            .map_err(|e| ov_err("creating an infer request", e))?;
        let by_ext = |ext: &str| {
            backend_files
                .iter()
                .find(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext)))
                .cloned()
        };
        Ok(Box::new(OpenVinoWrapper {
            sig,
            files: backend_files.to_vec(),
            device: device.clone(),
            settings: s.clone(),
            unused,
            source: ProfileSource {
                model: by_ext("xml").or_else(|| by_ext("onnx")).unwrap_or_default(),
                weights: by_ext("bin"),
                device: ov_device(device)?,
                properties: s.properties(),
            },
            in_effect: c.in_effect,
            requests: Mutex::new(vec![first]),
            compiled: Mutex::new(c.compiled),
            _core: Mutex::new(c.core),
        }))
    }
}

/// A model compiled by OpenVINO, with a pool of infer requests.
pub struct OpenVinoWrapper {
    sig: Signature,
    /// What it was compiled from: a call with empty tensors runs on a compile of its own.
    files: Vec<PathBuf>,
    device: Device,
    settings: Settings,
    /// Inputs of the ONNX model that OpenVINO dropped as unused: accepted, not bound.
    unused: Vec<String>,
    /// What it was compiled from, for a profiling compile.
    source: ProfileSource,
    in_effect: Vec<(String, String)>,
    // Drop order matters: requests, then the compiled model, then the core.
    requests: Mutex<Vec<InferRequest>>,
    compiled: Mutex<CompiledModel>,
    // Never used after compiling; kept alive for the compiled model (and Mutex'd for Sync).
    _core: Mutex<Core>,
}

/// The inputs among `wanted` that an ONNX model declares but OpenVINO's reading of it dropped,
/// with their ONNX types (empty for an IR or when none is missing).
///
/// # Errors
/// Reading the ONNX file.
fn dropped_inputs(
    files: &[PathBuf],
    have: &[TensorInfo],
    wanted: &[String],
) -> Result<Vec<TensorInfo>> {
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|n| !have.iter().any(|t| &t.name == *n))
        .collect();
    let onnx = files.iter().find(|p| {
        p.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
    });
    let (Some(onnx), false) = (onnx, missing.is_empty()) else {
        return Ok(Vec::new());
    };
    let (_, info) = rdeploy_core::onnx::inspect_file(onnx)?;
    Ok(info
        .inputs
        .into_iter()
        .filter(|t| missing.contains(&&t.name))
        .collect())
}

/// The model files, device and properties a wrapper was compiled with.
struct ProfileSource {
    model: PathBuf,
    weights: Option<PathBuf>,
    device: String,
    properties: Vec<(String, String)>,
}

/// An infer request taken from the pool; goes back on drop.
struct Lease<'a> {
    pool: &'a Mutex<Vec<InferRequest>>,
    req: Option<InferRequest>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(r) = self.req.take() {
            self.pool
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(r);
        }
    }
}

impl OpenVinoWrapper {
    fn lease(&self) -> Result<Lease<'_>> {
        let pooled = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let req = match pooled {
            Some(r) => r,
            None => self
                .compiled
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .create_infer_request()
                .map_err(|e| ov_err("creating an infer request", e))?,
        };
        Ok(Lease {
            pool: &self.requests,
            req: Some(req),
        })
    }
}

fn run(req: &mut InferRequest, w: &OpenVinoWrapper, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
    for (t, spec) in inputs.iter().zip(w.inputs()) {
        if w.unused.contains(&spec.name) {
            continue;
        }
        let dims: Vec<i64> = t.shape().iter().map(|&d| d as i64).collect();
        let mut ov = req
            .get_tensor(&spec.name)
            .map_err(|e| ov_err(&format!("binding input '{}'", spec.name), e))?;
        // OpenVINO's C API has no rank-0 shape (ov_shape_create refuses rank 0), so a scalar
        // input's shape is neither read nor set: the request's tensor for a scalar input is
        // already a scalar, and its byte size is checked below.
        let current = if dims.is_empty() {
            None
        } else {
            Some(
                ov.get_shape()
                    .map_err(|e| ov_err(&format!("binding input '{}'", spec.name), e))?,
            )
        };
        if current.is_some_and(|c| c.get_dimensions() != dims.as_slice()) {
            let shape = Shape::new(&dims)
                .map_err(|e| ov_err(&format!("shape of input '{}'", spec.name), e))?;
            // `set_shape` returns a second owner of the same tensor handle: forget it, or the
            // handle would be freed twice.
            std::mem::forget(ov.set_shape(&shape).map_err(|e| {
                ov_err(
                    &format!("input '{}' cannot take shape {:?}", spec.name, t.shape()),
                    e,
                )
            })?);
        }
        let dst = ov
            .get_raw_data_mut()
            .map_err(|e| ov_err(&format!("binding input '{}'", spec.name), e))?;
        let src = t.to_packed_bytes()?;
        if dst.len() != src.len() {
            return Err(Error::backend(
                NAME,
                format!(
                    "input '{}' holds {} bytes, OpenVINO expects {}",
                    spec.name,
                    src.len(),
                    dst.len()
                ),
            ));
        }
        dst.copy_from_slice(&src);
    }
    req.infer().map_err(|e| ov_err("inference failed", e))?;
    w.outputs()
        .iter()
        .map(|spec| {
            let ov = req
                .get_tensor(&spec.name)
                .map_err(|e| ov_err(&format!("reading output '{}'", spec.name), e))?;
            let read = |e| ov_err(&format!("reading output '{}'", spec.name), e);
            let et = ov.get_element_type().map_err(read)?;
            let dtype = dtype_of(et).ok_or_else(|| {
                Error::backend(
                    NAME,
                    format!(
                        "output '{}' has element type {et}, which rdeploy cannot exchange with OpenVINO (its C API cannot read string tensors back)",
                        spec.name
                    ),
                )
            })?;
            // A scalar output: the C API cannot give a rank-0 shape; one element, no shape.
            let shape: Vec<usize> = match ov.get_shape() {
                Ok(s) => s
                    .get_dimensions()
                    .iter()
                    .map(|&d| d.max(0) as usize)
                    .collect(),
                Err(e) => {
                    if ov.get_size().map_err(read)? == 1 {
                        Vec::new()
                    } else {
                        return Err(read(e));
                    }
                }
            };
            // An empty output (NMS that keeps nothing) has no buffer: the binding's
            // get_raw_data would build a slice from a null pointer (a panic that aborts).
            if shape.contains(&0) {
                return Ok(Tensor::zeros(dtype, &shape));
            }
            Tensor::from_packed_bytes(dtype, &shape, ov.get_raw_data().map_err(read)?)
        })
        .collect()
}

impl Wrapper for OpenVinoWrapper {
    fn backend(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.sig
    }

    fn settings(&self) -> Vec<(String, String)> {
        self.in_effect.clone()
    }

    /// OpenVINO's per-layer counters (`PERF_COUNT`) of a compile like this wrapper's.
    fn profile(&self, inputs: Vec<Tensor>, runs: usize) -> Result<Vec<rdeploy_core::OpTime>> {
        let src = &self.source;
        // By name, without the inputs OpenVINO dropped.
        let named: Vec<(String, Tensor)> = self
            .inputs()
            .iter()
            .map(|s| s.name.clone())
            .zip(inputs)
            .filter(|(n, _)| !self.unused.contains(n))
            .collect();
        rdeploy_core::guard::catch_engine_panic(NAME, "profiling", || {
            profile::profile(
                &src.model,
                src.weights.as_deref(),
                &src.device,
                &src.properties,
                &named,
                runs,
            )
        })
    }

    fn execute(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        // An input with a 0-sized dim: OpenVINO's CPU plugin runs some ops on empty tensors
        // (reductions over an empty axis) and fails on others (convolutions); a failure is
        // reported as the input's.
        let empty = inputs
            .iter()
            .zip(self.inputs())
            .find(|(t, spec)| t.shape().contains(&0) && !self.unused.contains(&spec.name))
            .map(|(t, spec)| (spec.name.clone(), t.shape().to_vec()));
        if let Some((name, shape)) = empty {
            // On a compile of its own: a CPU-plugin failure on empty tensors leaves the
            // compiled model failing every later call, whatever the shapes.
            let result = rdeploy_core::guard::catch_engine_panic(NAME, "inference", || {
                let mut c = compile(&self.files, &self.device, &self.settings)?;
                let mut req = c
                    .compiled
                    .create_infer_request()
                    .map_err(|e| ov_err("creating an infer request", e))?;
                run(&mut req, self, &inputs)
            });
            return result.map_err(|e| Error::InputMismatch {
                name,
                expected: format!(
                    "no 0-sized dim here: OpenVINO's CPU plugin cannot run this model on empty tensors (tract and onnxruntime can; it said: {})",
                    e.report()
                ),
                got: format!("shape {shape:?}"),
            });
        }
        let mut lease = self.lease()?;
        let Some(req) = lease.req.as_mut() else {
            return Err(Error::backend(NAME, "no infer request"));
        };
        let result =
            rdeploy_core::guard::catch_engine_panic(NAME, "inference", || run(req, self, &inputs));
        if result.is_err() {
            // A request that failed may keep the failed call's shapes or state (a zero batch
            // leaves it failing on every later call): drop it; the next call makes a fresh one.
            lease.req = None;
        }
        result
    }
}
