//! The backend contract: what every inference engine provides to rdeploy.

use crate::{DType, DeployConfig, Device, Error, Result, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// One dimension of a tensor signature.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Dim {
    /// A fixed size.
    Fixed(u64),
    /// A symbolic size (`batch`, `height`); an empty name means unknown and unnamed.
    Symbolic(String),
}

impl Dim {
    /// The fixed size, if fixed.
    pub fn fixed(&self) -> Option<u64> {
        match self {
            Dim::Fixed(n) => Some(*n),
            Dim::Symbolic(_) => None,
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Symbolic(s) if s.is_empty() => f.write_str("?"),
            Dim::Symbolic(s) => f.write_str(s),
        }
    }
}

/// The name, dtype and shape of a model input or output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorInfo {
    /// The tensor's name in the model.
    pub name: String,
    /// The element type.
    pub dtype: DType,
    /// The dimensions, or `None` when the model does not say (unknown rank).
    pub shape: Option<Vec<Dim>>,
}

impl TensorInfo {
    /// The shape written as `[batch, 3, 224, 224]`, or `[unknown rank]`.
    pub fn shape_string(&self) -> String {
        match &self.shape {
            Some(dims) => format_dims(dims),
            None => "[unknown rank]".into(),
        }
    }

    /// A concrete shape for this signature: symbolic dims take the value `overrides` gives for
    /// their name, else 1.
    pub fn concrete_shape(&self, overrides: &HashMap<String, u64>) -> Vec<usize> {
        self.shape
            .iter()
            .flatten()
            .map(|d| match d {
                Dim::Fixed(n) => *n as usize,
                Dim::Symbolic(s) => overrides.get(s).copied().unwrap_or(1) as usize,
            })
            .collect()
    }
}

/// `[a, b, c]` for a list of dims.
pub fn format_dims(dims: &[Dim]) -> String {
    let parts: Vec<String> = dims.iter().map(ToString::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// Tensors by name, in a meaningful order (inputs in the order given, outputs in
/// `output_names` order).
pub type NamedTensors = Vec<(String, Tensor)>;

/// Whether a backend can be used here: `Ok(version)` or `Err(reason)`, where the reason says
/// what was looked for where, and how to install it.
pub type Availability = std::result::Result<String, String>;

/// A graph pass a backend asks for on its IR before [`BackendManager::to_backend`], by name
/// (`fp16`), with options; the `rdeploy-onnx` crate runs it, so backends never edit graphs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PassRequest {
    /// The pass's registered name.
    pub name: String,
    /// Pass options (a JSON object; `null` for none).
    #[serde(default)]
    pub options: serde_json::Value,
}

impl PassRequest {
    /// A request with no options.
    pub fn new(name: impl Into<String>) -> PassRequest {
        PassRequest {
            name: name.into(),
            options: serde_json::Value::Null,
        }
    }
}

/// A backend: the engine-specific half of MMDeploy's `BaseBackendManager`.
///
/// Implementations are cheap to construct; the expensive probing happens in [`check`].
///
/// [`check`]: BackendManager::check
pub trait BackendManager: Send + Sync {
    /// The registered name (`tract`, `onnxruntime`), as written in `backend_config.type`.
    fn name(&self) -> &str;

    /// Whether the engine can be used here, with its version, or the reason it cannot.
    fn check(&self) -> Availability;

    /// Whether the engine can be used here.
    fn is_available(&self) -> bool {
        self.check().is_ok()
    }

    /// The engine's version, when available.
    fn version(&self) -> Option<String> {
        self.check().ok()
    }

    /// The `check-env` line: `name:\tversion` or `name:\tNone (reason)`.
    fn check_env_line(&self) -> String {
        match self.check() {
            Ok(v) => format!("{}:\t{v}", self.name()),
            Err(reason) => format!("{}:\tNone ({reason})", self.name()),
        }
    }

    /// The ONNX custom ops (`domain::op_type`, e.g. `mmdeploy::grid_sampler`) this backend runs
    /// with no external library: kernels it registers, or ops its importer has itself (what
    /// MMDeploy's `check_env` reports as `custom ops: Available`). None by default.
    fn custom_ops(&self) -> Vec<String> {
        Vec::new()
    }

    /// The device kinds this backend runs on (`cpu`, `cuda`...).
    fn device_kinds(&self) -> &[&str] {
        &["cpu"]
    }

    /// The graph passes this backend needs on the IR for `deploy_cfg`, in order (MMDeploy's
    /// per-backend rewrites; ONNX Runtime's `precision='fp16'` asks for `fp16`). The deploy
    /// pipeline runs them and hands the result to [`to_backend`](BackendManager::to_backend).
    /// None by default.
    ///
    /// # Errors
    /// [`Error::Config`] for a config value the backend does not support.
    fn ir_passes(&self, deploy_cfg: &DeployConfig) -> Result<Vec<PassRequest>> {
        let _ = deploy_cfg;
        Ok(Vec::new())
    }

    /// Converts IR files (ONNX) into the backend's own files in `work_dir`, returning their
    /// paths in the order [`build_wrapper`](BackendManager::build_wrapper) takes them.
    ///
    /// # Errors
    /// [`Error::BackendUnavailable`] when the engine is missing; [`Error::Backend`] when it
    /// fails to convert; [`Error::Device`] for an unsupported device.
    fn to_backend(
        &self,
        ir_files: &[PathBuf],
        deploy_cfg: &DeployConfig,
        work_dir: &Path,
        device: &Device,
    ) -> Result<Vec<PathBuf>>;

    /// Loads backend files into a runnable wrapper.
    ///
    /// `input_names` and `output_names` may be empty, meaning "as the model has them".
    ///
    /// # Errors
    /// As for [`to_backend`](BackendManager::to_backend), plus [`Error::Model`] for a file the
    /// engine cannot load.
    fn build_wrapper(
        &self,
        backend_files: &[PathBuf],
        device: &Device,
        input_names: &[String],
        output_names: &[String],
        deploy_cfg: &DeployConfig,
    ) -> Result<Box<dyn Wrapper>>;

    /// Fails with [`Error::BackendUnavailable`] unless the backend is available.
    ///
    /// # Errors
    /// When [`check`](BackendManager::check) gives a reason.
    fn ensure_available(&self) -> Result<String> {
        self.check().map_err(|reason| Error::BackendUnavailable {
            backend: self.name().to_string(),
            reason,
        })
    }
}

/// What a loaded model serves: its inputs and outputs (in the order `execute` takes and
/// returns them) and the device it runs on. One value shared by every backend's wrapper, built
/// by [`select_signature`] (like ort's `Session { inputs, outputs }`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The inputs, in the order [`Wrapper::execute`] takes them.
    pub inputs: Vec<TensorInfo>,
    /// The outputs, in the order [`Wrapper::execute`] returns them.
    pub outputs: Vec<TensorInfo>,
    /// The device the model actually runs on.
    pub device: Device,
}

/// One node's time in a profiled call ([`Wrapper::profile`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OpTime {
    /// The node's name as the engine reports it.
    pub node: String,
    /// Its operator type as the engine reports it (`Conv`, OpenVINO's `Convolution`, tract's
    /// `OptMatMul`...).
    pub op_type: String,
    /// Mean time per call, in milliseconds.
    pub ms: f64,
}

/// A loaded model ready to run: MMDeploy's `BaseWrapper`.
///
/// Wrappers are immutable and shareable across threads; per-call state lives in the call.
pub trait Wrapper: Send + Sync {
    /// The backend's name (used to name timings and errors).
    fn backend(&self) -> &str;

    /// The inputs, outputs and device this wrapper serves.
    fn signature(&self) -> &Signature;

    /// The device the model actually runs on.
    fn device(&self) -> &Device {
        &self.signature().device
    }

    /// The input signature, in the order [`execute`](Wrapper::execute) takes inputs.
    fn inputs(&self) -> &[TensorInfo] {
        &self.signature().inputs
    }

    /// The output signature; its order is the output order.
    fn outputs(&self) -> &[TensorInfo] {
        &self.signature().outputs
    }

    /// The engine call alone: inputs in [`inputs`](Wrapper::inputs) order, already validated;
    /// outputs in [`outputs`](Wrapper::outputs) order. This is what timings measure.
    ///
    /// # Errors
    /// [`Error::Backend`] when the engine fails.
    fn execute(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>>;

    /// The engine settings in effect, as `(name, value)` pairs for reports (`rdeploy bench`):
    /// the precision the engine actually computes in, threads, streams. Empty by default.
    fn settings(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// [`execute`](Wrapper::execute), also returning the engine's own time of the call when
    /// the wrapper measures it apart from its transport (a backend hosted in a worker process:
    /// the time of the Python `forward`, without the transfer). `None` by default: `execute`
    /// is the engine call.
    ///
    /// # Errors
    /// As for `execute`.
    fn execute_timed(
        &self,
        inputs: Vec<Tensor>,
    ) -> Result<(Vec<Tensor>, Option<std::time::Duration>)> {
        self.execute(inputs).map(|o| (o, None))
    }

    /// Per-operator times from the engine's own profiler: `runs` calls of
    /// [`execute`](Wrapper::execute) on `inputs` (ordered like it), each node's mean time per
    /// call. Nodes are the engine's own after its graph optimisations (ONNX Runtime's fused
    /// kernels, OpenVINO's executed layers, tract's optimised plan), so names and op types are
    /// the engine's, and the sum is the time inside operators (without the engine's
    /// scheduling between them).
    ///
    /// # Errors
    /// [`Error::Backend`] when the backend has no per-operator profile (the default) or the
    /// engine fails.
    fn profile(&self, inputs: Vec<Tensor>, runs: usize) -> Result<Vec<OpTime>> {
        let _ = (inputs, runs);
        Err(Error::backend(
            self.backend(),
            "has no per-operator profile in rdeploy (tract, onnxruntime and openvino have one)",
        ))
    }

    /// The output names, in output order.
    fn output_names(&self) -> Vec<&str> {
        self.outputs().iter().map(|o| o.name.as_str()).collect()
    }

    /// Validates named inputs, runs [`execute`](Wrapper::execute) (timed when timing is on),
    /// and names the outputs.
    ///
    /// # Errors
    /// [`Error::InputMismatch`] for an unknown, missing, mistyped or misshaped input; any error
    /// of `execute`.
    fn forward(&self, inputs: NamedTensors) -> Result<NamedTensors> {
        let ordered = validate_inputs(self.inputs(), inputs)?;
        let outputs = crate::timing::time(self.backend(), || self.execute(ordered))?;
        let specs = self.outputs();
        if outputs.len() != specs.len() {
            return Err(Error::backend(
                self.backend(),
                format!(
                    "engine returned {} outputs, the model declares {}",
                    outputs.len(),
                    specs.len()
                ),
            ));
        }
        Ok(specs.iter().map(|s| s.name.clone()).zip(outputs).collect())
    }
}

/// A model's inputs and outputs as a backend without its own signature finds them: from the
/// `.onnx` among `files`, else from the work dir's manifest (`deploy.json`) in the folder of
/// the first file. Used by backends written in Python whose wrapper declares none.
///
/// # Errors
/// [`Error::Model`] for an unreadable ONNX file; [`Error::Backend`] when neither is there.
pub fn signature_from_files(
    backend: &str,
    files: &[PathBuf],
) -> Result<(Vec<TensorInfo>, Vec<TensorInfo>)> {
    if let Some(onnx) = files
        .iter()
        .find(|f| f.extension().is_some_and(|e| e == "onnx"))
    {
        let (_, info) = crate::onnx::inspect_file(onnx)?;
        return Ok((info.inputs, info.outputs));
    }
    #[derive(Deserialize)]
    struct Io {
        inputs: Vec<TensorInfo>,
        outputs: Vec<TensorInfo>,
    }
    if let Some(dir) = files.first().and_then(|f| f.parent())
        && let Ok(text) = std::fs::read_to_string(dir.join("deploy.json"))
        && let Ok(io) = serde_json::from_str::<Io>(&text)
    {
        return Ok((io.inputs, io.outputs));
    }
    Err(Error::backend(
        backend,
        "cannot tell the model's inputs and outputs: give the Python wrapper `inputs` and `outputs` attributes, lists of (name, dtype, shape)",
    ))
}

/// The files a backend's `to_backend` written in another language returned, as paths: relative
/// ones as the caller meant them (from the current dir) when such a file exists, else inside
/// `work_dir`. Every one must be a file.
///
/// # Errors
/// [`Error::Backend`] when the list is empty or names something that is not a file.
pub fn resolve_backend_files(
    backend: &str,
    work_dir: &Path,
    files: Vec<String>,
) -> Result<Vec<PathBuf>> {
    if files.is_empty() {
        return Err(Error::backend(
            backend,
            "the Python backend's to_backend returned no files; return the list of backend files it wrote",
        ));
    }
    files
        .into_iter()
        .map(|f| {
            let p = PathBuf::from(f);
            let p = if p.is_absolute() {
                p
            } else if p.exists() {
                std::path::absolute(&p).map_err(|e| Error::io("cannot resolve", p, e))?
            } else {
                work_dir.join(p)
            };
            if !p.is_file() {
                return Err(Error::backend(
                    backend,
                    format!(
                        "the Python backend's to_backend returned {}, which is not a file it wrote",
                        p.display()
                    ),
                ));
            }
            Ok(p)
        })
        .collect()
}

/// Checks what a wrapper written in another language returned against the outputs it serves,
/// like inputs are checked: dtype, rank, fixed dims.
///
/// # Errors
/// [`Error::Backend`] naming the output and what differs.
pub fn validate_outputs(backend: &str, specs: &[TensorInfo], outputs: &[Tensor]) -> Result<()> {
    let broken = |what: String| Error::Backend {
        backend: backend.to_string(),
        msg: "the outputs break the model's signature".into(),
        source: Some(Box::new(WrongOutput(what))),
    };
    if outputs.len() != specs.len() {
        return Err(broken(format!(
            "the wrapper returned {} outputs, the model declares {}",
            outputs.len(),
            specs.len()
        )));
    }
    for (spec, t) in specs.iter().zip(outputs) {
        let wrong = |what: String| broken(format!("wrong output '{}': {what}", spec.name));
        if t.dtype() != spec.dtype {
            return Err(wrong(format!(
                "dtype {}, the model declares {}",
                t.dtype(),
                spec.dtype
            )));
        }
        if let Some(dims) = &spec.shape {
            let fits = dims.len() == t.shape().len()
                && dims
                    .iter()
                    .zip(t.shape())
                    .all(|(d, &n)| d.fixed().is_none_or(|f| f as usize == n));
            if !fits {
                return Err(wrong(format!(
                    "shape {:?}, the model declares {}",
                    t.shape(),
                    spec.shape_string()
                )));
            }
        }
    }
    Ok(())
}

/// The one backend file of a single-file backend (an `.onnx`), or an error naming the call.
///
/// # Errors
/// [`Error::Backend`] when `files` does not hold exactly one path.
pub fn single_file<'a>(backend: &str, what: &str, files: &'a [PathBuf]) -> Result<&'a Path> {
    match files {
        [one] => Ok(one),
        _ => Err(Error::backend(
            backend,
            format!("{what} takes exactly one .onnx file, got {}", files.len()),
        )),
    }
}

/// The signature a wrapper serves: the model's inputs (checking that every name in
/// `input_names` is one of them) and the outputs named in `output_names`, in that order (all
/// outputs when empty), as `build_wrapper` receives them, on `device`.
///
/// # Errors
/// [`Error::Backend`] naming an input or output the model does not have.
pub fn select_signature(
    backend: &str,
    inputs: &[TensorInfo],
    outputs: &[TensorInfo],
    input_names: &[String],
    output_names: &[String],
    device: &Device,
) -> Result<Signature> {
    let names = |v: &[TensorInfo]| {
        v.iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(n) = input_names
        .iter()
        .find(|n| !inputs.iter().any(|i| &i.name == *n))
    {
        return Err(Error::backend(
            backend,
            format!(
                "the model has no input named '{n}' (it has {})",
                names(inputs)
            ),
        ));
    }
    let selected = if output_names.is_empty() {
        outputs.to_vec()
    } else {
        output_names
            .iter()
            .map(|n| {
                outputs
                    .iter()
                    .find(|o| &o.name == n)
                    .cloned()
                    .ok_or_else(|| {
                        Error::backend(
                            backend,
                            format!(
                                "the model has no output named '{n}' (it has {})",
                                names(outputs)
                            ),
                        )
                    })
            })
            .collect::<Result<_>>()?
    };
    Ok(Signature {
        inputs: inputs.to_vec(),
        outputs: selected,
        device: device.clone(),
    })
}

/// The cause of an [`Error::Backend`] from [`validate_outputs`]: outputs that break the
/// model's signature (a wrapper bug, not an engine failure). Find it with `downcast_ref` on
/// the error's source.
#[derive(Debug)]
pub struct WrongOutput(pub String);

impl std::fmt::Display for WrongOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WrongOutput {}

/// Checks named inputs against a signature and returns them in signature order.
///
/// Checks, in order: every name is known, none is given twice, none is missing, dtypes match,
/// ranks match, fixed dims match, and a symbolic dim has one size across all inputs.
///
/// # Errors
/// [`Error::InputMismatch`] naming the input and what was expected.
pub fn validate_inputs(specs: &[TensorInfo], inputs: NamedTensors) -> Result<Vec<Tensor>> {
    let known = || {
        specs
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut slots: Vec<Option<Tensor>> = specs.iter().map(|_| None).collect();
    for (name, t) in inputs {
        let Some(i) = specs.iter().position(|s| s.name == name) else {
            return Err(Error::InputMismatch {
                expected: format!("one of the model's inputs ({})", known()),
                got: "a tensor for an input the model does not have".into(),
                name,
            });
        };
        if slots[i].is_some() {
            return Err(Error::InputMismatch {
                name,
                expected: "one tensor".into(),
                got: "two tensors with that name".into(),
            });
        }
        slots[i] = Some(t);
    }
    let mut bound: HashMap<&str, (usize, &str)> = HashMap::new();
    let mut out = Vec::with_capacity(specs.len());
    for (spec, slot) in specs.iter().zip(slots) {
        let Some(t) = slot else {
            return Err(Error::InputMismatch {
                name: spec.name.clone(),
                expected: format!("a {} tensor of shape {}", spec.dtype, spec.shape_string()),
                got: "nothing (the input is missing)".into(),
            });
        };
        if t.dtype() != spec.dtype {
            return Err(Error::InputMismatch {
                name: spec.name.clone(),
                expected: format!("dtype {}", spec.dtype),
                got: format!("dtype {}", t.dtype()),
            });
        }
        if let Some(dims) = &spec.shape {
            let shape_err = || Error::InputMismatch {
                name: spec.name.clone(),
                expected: format!("shape {}", spec.shape_string()),
                got: format!("shape {:?}", t.shape()),
            };
            if dims.len() != t.shape().len() {
                return Err(shape_err());
            }
            for (d, &n) in dims.iter().zip(t.shape()) {
                match d {
                    Dim::Fixed(f) if *f as usize != n => return Err(shape_err()),
                    Dim::Symbolic(s) if !s.is_empty() => match bound.get(s.as_str()) {
                        Some(&(prev, who)) if prev != n => {
                            return Err(Error::InputMismatch {
                                name: spec.name.clone(),
                                expected: format!(
                                    "dim '{s}' = {prev}, as input '{who}' has it (shape {})",
                                    spec.shape_string()
                                ),
                                got: format!("shape {:?}", t.shape()),
                            });
                        }
                        _ => {
                            bound.insert(s, (n, &spec.name));
                        }
                    },
                    _ => {}
                }
            }
        }
        out.push(t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, dtype: DType, dims: &[Dim]) -> TensorInfo {
        TensorInfo {
            name: name.into(),
            dtype,
            shape: Some(dims.to_vec()),
        }
    }
    fn sym(s: &str) -> Dim {
        Dim::Symbolic(s.into())
    }

    fn specs() -> Vec<TensorInfo> {
        vec![
            spec("image", DType::F32, &[sym("batch"), Dim::Fixed(3)]),
            spec("scale", DType::F32, &[sym("batch")]),
        ]
    }

    #[test]
    fn reorders_to_signature_order() {
        let a = Tensor::zeros(DType::F32, &[2, 3]);
        let b = Tensor::zeros(DType::F32, &[2]);
        let out = validate_inputs(
            &specs(),
            vec![("scale".into(), b.clone()), ("image".into(), a.clone())],
        )
        .unwrap();
        assert_eq!(out, vec![a, b]);
    }

    fn err(inputs: NamedTensors) -> String {
        validate_inputs(&specs(), inputs).unwrap_err().to_string()
    }

    #[test]
    fn each_mismatch_names_the_input() {
        let img = || ("image".to_string(), Tensor::zeros(DType::F32, &[2, 3]));
        let e = err(vec![
            img(),
            ("nope".into(), Tensor::zeros(DType::F32, &[2])),
        ]);
        assert!(e.contains("'nope'") && e.contains("image, scale"), "{e}");
        let e = err(vec![img()]);
        assert!(e.contains("'scale'") && e.contains("missing"), "{e}");
        let e = err(vec![img(), img()]);
        assert!(e.contains("'image'") && e.contains("two tensors"), "{e}");
        let e = err(vec![
            img(),
            ("scale".into(), Tensor::zeros(DType::I64, &[2])),
        ]);
        assert!(
            e.contains("'scale'") && e.contains("dtype f32") && e.contains("i64"),
            "{e}"
        );
        let e = err(vec![
            img(),
            ("scale".into(), Tensor::zeros(DType::F32, &[2, 1])),
        ]);
        assert!(e.contains("'scale'") && e.contains("[batch]"), "{e}");
        let e = err(vec![("image".into(), Tensor::zeros(DType::F32, &[2, 4]))]);
        assert!(
            e.contains("'image'") && e.contains("[batch, 3]") && e.contains("[2, 4]"),
            "{e}"
        );
        let e = err(vec![
            img(),
            ("scale".into(), Tensor::zeros(DType::F32, &[5])),
        ]);
        assert!(e.contains("'batch' = 2") && e.contains("'image'"), "{e}");
    }

    #[test]
    fn signature_selection_checks_and_orders_names() {
        let outs = vec![spec("a", DType::F32, &[]), spec("b", DType::I64, &[])];
        let cpu = Device::cpu();
        let sig = select_signature(
            "x",
            &specs(),
            &outs,
            &["scale".into()],
            &["b".into(), "a".into()],
            &cpu,
        )
        .unwrap();
        assert_eq!(sig.inputs.len(), 2);
        assert_eq!(
            sig.outputs
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>(),
            ["b", "a"]
        );
        let e = select_signature("x", &specs(), &outs, &["nope".into()], &[], &cpu)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no input named 'nope'") && e.contains("image, scale"),
            "{e}"
        );
        let e = select_signature("x", &specs(), &outs, &[], &["c".into()], &cpu)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no output named 'c'") && e.contains("a, b"),
            "{e}"
        );
        let files = vec![PathBuf::from("a.onnx"), PathBuf::from("b.onnx")];
        assert!(
            single_file("x", "build", &files)
                .unwrap_err()
                .to_string()
                .contains("got 2")
        );
        assert_eq!(
            single_file("x", "build", &files[..1]).unwrap(),
            Path::new("a.onnx")
        );
    }

    #[test]
    fn concrete_shapes_fill_symbols() {
        let s = &specs()[0];
        assert_eq!(s.concrete_shape(&HashMap::new()), vec![1, 3]);
        assert_eq!(
            s.concrete_shape(&HashMap::from([("batch".into(), 4)])),
            vec![4, 3]
        );
        assert_eq!(s.shape_string(), "[batch, 3]");
    }
}
