//! rdeploy's embedded default backend: [tract](https://github.com/sonos/tract), a pure-Rust
//! ONNX inference engine, compiled into rdeploy and therefore always available.
//!
//! ```no_run
//! use rdeploy_core::{DeployConfig, Device, Registry, Tensor};
//! use std::path::PathBuf;
//!
//! let mut registry = Registry::new();
//! registry.install(&rdeploy_backend_tract::BACKEND)?;
//! let tract = registry.get("tract")?;
//! let files = vec![PathBuf::from("model.onnx")];
//! let wrapper = tract.build_wrapper(&files, &Device::cpu(), &[], &[], &DeployConfig::empty())?;
//! let x = Tensor::zeros(rdeploy_core::DType::F32, &[1, 3, 224, 224]);
//! let outputs = wrapper.forward(vec![("input".into(), x)])?;
//! # Ok::<(), rdeploy_core::Error>(())
//! ```
//!
//! Design: models with symbolic dims (`batch`, `height`) are optimized once with tract's
//! symbolic shapes and run at any size. A model tract cannot type symbolically (unknown dims,
//! or ops that need concrete shapes) falls back to one optimized plan per distinct input shape,
//! built on first use and cached. `to_backend` checks that tract can load and optimize the
//! model, so unsupported operators are reported at deploy time, not at first inference.
//!
//! Threads: tract's matrix products run on a pool of `backend_config.common_config.num_threads`
//! threads (`intra_op_num_threads`, ONNX Runtime's name, is read too; default: every core
//! this process may use), through tract-linalg's multithreaded executor; `1` runs on the
//! calling thread. Pools are shared by wrappers with the same thread count.

mod custom_ops;

use rdeploy_core::{
    BackendDescriptor, BackendManager, DType, DeployConfig, Device, Error, Result, Signature,
    Tensor, TensorInfo, Wrapper,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tract_linalg::multithread::{Executor, multithread_tract_scope};
use tract_onnx::prelude::{
    Datum, Framework, InferenceFact, InferenceModel, InferenceModelExt, IntoRunnable, TValue, TVec,
    TractResult, TypedRunnableModel,
};

/// The backend's registered name.
pub const NAME: &str = "tract";

/// The tract version rdeploy was built with.
pub const TRACT_VERSION: &str = env!("RDEPLOY_TRACT_VERSION");

/// The descriptor the CLI (or any registry) installs.
pub const BACKEND: BackendDescriptor = BackendDescriptor {
    name: NAME,
    aliases: &[],
    create: || Arc::new(TractBackend),
};

/// The tract backend manager.
#[derive(Debug, Default, Clone, Copy)]
pub struct TractBackend;

fn engine_err(context: &str, e: impl Into<rdeploy_core::BoxError>) -> Error {
    // tract errors are anyhow chains: kept as the cause, printed whole on one line.
    Error::engine(NAME, context, e)
}

/// tract's ONNX importer with MMDeploy's and mmcv's custom ops registered.
fn onnx() -> tract_onnx::Onnx {
    let mut o = tract_onnx::onnx();
    custom_ops::register(&mut o.op_register);
    o
}

/// Loads the model into tract, keeping only (and ordering by) the outputs asked for.
fn load_inference_model(path: &Path, output_names: &[String]) -> Result<InferenceModel> {
    let mut model = onnx()
        .model_for_path(path)
        .map_err(|e| engine_err(&format!("cannot load {}", path.display()), e))?;
    if !output_names.is_empty() {
        let outlets = output_names
            .iter()
            .map(|n| {
                model.find_outlet_label(n).ok_or_else(|| {
                    Error::backend(NAME, format!("the model has no output named '{n}'"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        model
            .select_output_outlets(&outlets)
            .map_err(|e| engine_err("cannot select outputs", e))?;
    }
    Ok(model)
}

/// Optimizes and plans a model; tract panics (on malformed models) become errors too.
fn optimize(model: InferenceModel) -> std::result::Result<Arc<TypedRunnableModel>, String> {
    let planned = rdeploy_core::guard::catch_engine_panic(NAME, "optimizing", || {
        let typed = model
            .into_typed()
            .map_err(|e| Error::backend(NAME, format!("{e:#}")))?;
        // Before tract's optimizer, which allocates whole output-sized tables (Resize).
        fits_in_memory(&typed).map_err(|m| Error::backend(NAME, m))?;
        let r: TractResult<_> = typed.into_optimized().and_then(|m| m.into_runnable());
        r.map_err(|e| Error::backend(NAME, format!("{e:#}")))
    });
    planned.map_err(|e| match e {
        Error::Backend { msg, .. } => msg,
        other => other.to_string(),
    })
}

/// Fails when a value of the plan, at its known shape, is larger than the memory available:
/// tract would abort the process allocating it (a `Resize` by 1e9, say).
fn fits_in_memory(model: &tract_onnx::prelude::TypedModel) -> std::result::Result<(), String> {
    let Some(avail) = rdeploy_core::files::memory_available() else {
        return Ok(());
    };
    for node in model.nodes() {
        for o in &node.outputs {
            let Some(dims) = o.fact.shape.as_concrete() else {
                continue;
            };
            let bytes = dims
                .iter()
                .try_fold(o.fact.datum_type.size_of() as u128, |a, d| {
                    a.checked_mul(*d as u128)
                })
                .unwrap_or(u128::MAX);
            if bytes > u128::from(avail) {
                return Err(format!(
                    "node '{}' ({}) would produce a value of shape {:?} ({} bytes), more than the {} bytes of memory available; check the model's sizes and scales, or the input shape",
                    node.name,
                    node.op().name(),
                    dims,
                    bytes,
                    avail
                ));
            }
        }
    }
    Ok(())
}

fn has_unfixed_dims(info: &[TensorInfo]) -> bool {
    info.iter().any(|i| {
        i.shape
            .as_ref()
            .is_none_or(|s| s.iter().any(|d| d.fixed().is_none()))
    })
}

impl BackendManager for TractBackend {
    fn custom_ops(&self) -> Vec<String> {
        custom_ops::names()
    }

    fn name(&self) -> &str {
        NAME
    }

    fn check(&self) -> rdeploy_core::Availability {
        Ok(TRACT_VERSION.to_string())
    }

    fn ir_passes(&self, _deploy_cfg: &DeployConfig) -> Result<Vec<rdeploy_core::PassRequest>> {
        // tract is tested on opset 9 to 18 and lacks Upsample-7/9 and TopK-1: models below
        // opset 10 are upgraded to 13 (rdeploy's adapters keep their meaning). tract runs a
        // BatchNormalization after a Conv as an elementwise Mul and Add: folded into the Conv.
        Ok(vec![
            rdeploy_core::PassRequest {
                name: "opset_upgrade".into(),
                options: serde_json::json!({"below": 10, "target": 13}),
            },
            rdeploy_core::PassRequest {
                name: "fold_batchnorm".into(),
                options: serde_json::json!({}),
            },
        ])
    }

    fn to_backend(
        &self,
        ir_files: &[PathBuf],
        deploy_cfg: &DeployConfig,
        _work_dir: &Path,
        device: &Device,
    ) -> Result<Vec<PathBuf>> {
        device.ensure_supported(NAME, self.device_kinds())?;
        refuse_custom_op_libraries(deploy_cfg)?;
        let path = rdeploy_core::single_file(NAME, "tract's to_backend", ir_files)?;
        let (_, info) = rdeploy_core::onnx::inspect_file(path)?;
        if let Some(o) = info
            .outputs
            .iter()
            .find(|o| info.inputs.iter().any(|i| i.name == o.name))
        {
            // ONNX allows it; tract cannot plan a graph input as an output (its loader leaves
            // the source without a type), so say so instead of tract's internal message.
            return Err(Error::backend(
                NAME,
                format!(
                    "output '{}' of {} is the graph input '{}' itself (no node computes it); tract cannot run such a model: drop that output (it equals the input), or deploy on onnxruntime or openvino",
                    o.name,
                    path.display(),
                    o.name
                ),
            ));
        }
        let model = load_inference_model(path, &[])?;
        // A model whose dims are all fixed must optimize now; one with symbolic dims may still
        // need concrete shapes, which the wrapper handles per call.
        match optimize(model) {
            Ok(_) => {}
            Err(e) if !has_unfixed_dims(&info.inputs) => {
                return Err(engine_err(
                    &format!("tract cannot run {}", path.display()),
                    e,
                ));
            }
            Err(e) => tracing::info!(
                "tract cannot optimize {} with symbolic dims ({e}); it will build one plan per \
                 input shape at run time",
                path.display()
            ),
        }
        Ok(vec![path.to_path_buf()])
    }

    fn build_wrapper(
        &self,
        backend_files: &[PathBuf],
        device: &Device,
        input_names: &[String],
        output_names: &[String],
        deploy_cfg: &DeployConfig,
    ) -> Result<Box<dyn Wrapper>> {
        device.ensure_supported(NAME, self.device_kinds())?;
        let executor = executor(threads(deploy_cfg)?);
        let path = rdeploy_core::single_file(NAME, "tract's build_wrapper", backend_files)?;
        let (_, info) = rdeploy_core::onnx::inspect_file(path)?;
        let sig = rdeploy_core::select_signature(
            NAME,
            &info.inputs,
            &info.outputs,
            input_names,
            output_names,
            device,
        )?;
        for (spec, what) in sig
            .inputs
            .iter()
            .map(|s| (s, "input"))
            .chain(sig.outputs.iter().map(|s| (s, "output")))
        {
            tract_dt(spec.dtype).ok_or_else(|| {
                // OpenVINO reads no ONNX int2/uint2 (see rdeploy-backend-openvino).
                let engines = if spec.dtype.is_2bit() {
                    "onnxruntime"
                } else {
                    "onnxruntime or openvino"
                };
                Error::backend(
                    NAME,
                    format!(
                        "{what} '{}' is {}, which tract cannot hold (tract has no bfloat16, \
                         float8, 4-bit or 2-bit types); use {engines} for this model",
                        spec.name, spec.dtype
                    ),
                )
            })?;
        }
        let model = load_inference_model(path, output_names)?;
        let plan = match optimize(model.clone()) {
            Ok(plan) => Plan::Symbolic(plan),
            Err(e) if has_unfixed_dims(&info.inputs) => {
                tracing::debug!("tract: symbolic optimization failed ({e}); planning per shape");
                Plan::PerShape {
                    model: Box::new(model),
                    cache: Mutex::new(HashMap::new()),
                }
            }
            Err(e) => {
                return Err(engine_err(
                    &format!("tract cannot run {}", path.display()),
                    e,
                ));
            }
        };
        Ok(Box::new(TractWrapper {
            sig,
            plan,
            executor,
        }))
    }
}

enum Plan {
    Symbolic(Arc<TypedRunnableModel>),
    PerShape {
        model: Box<InferenceModel>,
        cache: Mutex<HashMap<Vec<Vec<usize>>, Arc<TypedRunnableModel>>>,
    },
}

/// A model loaded into tract. Immutable; each call runs in its own tract state.
pub struct TractWrapper {
    sig: Signature,
    plan: Plan,
    executor: Executor,
}

/// `backend_config.common_config.num_threads` (or `intra_op_num_threads`), else every core
/// this process may use (`std::thread::available_parallelism`).
///
/// # Errors
/// [`Error::Config`] naming the key for a value that is not a whole number from 1 to 1024.
pub fn threads(deploy_cfg: &DeployConfig) -> Result<usize> {
    for key in ["num_threads", "intra_op_num_threads"] {
        let full = format!("backend_config.common_config.{key}");
        match deploy_cfg.get(&full) {
            None | Some(serde_json::Value::Null) => continue,
            Some(v) => {
                return v
                    .as_u64()
                    .filter(|n| (1..=1024).contains(n))
                    .map(|n| n as usize)
                    .ok_or_else(|| {
                        Error::config_key(
                            full,
                            format!("must be a whole number of threads from 1 to 1024, not {v}"),
                        )
                    });
            }
        }
    }
    Ok(std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// tract cannot load ONNX Runtime custom-op libraries: refused with the reason, rather than
/// failing later on the op they would have provided.
fn refuse_custom_op_libraries(deploy_cfg: &DeployConfig) -> Result<()> {
    match deploy_cfg.get("backend_config.custom_ops") {
        None | Some(serde_json::Value::Null) => Ok(()),
        Some(serde_json::Value::Array(a)) if a.is_empty() => Ok(()),
        Some(_) => Err(Error::config_key(
            "backend_config.custom_ops",
            "tract cannot load custom-op libraries (they are ONNX Runtime's C API); MMDeploy's and mmcv's ops need none on tract (rdeploy runs them itself). Remove the key, or deploy on onnxruntime",
        )),
    }
}

/// The executor for `n` threads: one rayon pool per thread count, shared by every wrapper
/// (a pool per model would multiply idle threads).
fn executor(n: usize) -> Executor {
    if n <= 1 {
        return Executor::SingleThread;
    }
    static POOLS: Mutex<Vec<(usize, Executor)>> = Mutex::new(Vec::new());
    let mut pools = POOLS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, e)) = pools.iter().find(|(k, _)| *k == n) {
        return e.clone();
    }
    let e = Executor::multithread_with_name(n, "rdeploy-tract");
    pools.push((n, e.clone()));
    e
}

fn to_tract(t: Tensor, spec: &TensorInfo) -> Result<TValue> {
    fn plain<T: Datum>(a: tract_onnx::prelude::tract_ndarray::ArrayD<T>) -> Result<TValue> {
        Ok(tract_onnx::prelude::Tensor::from(a).into())
    }
    match t {
        Tensor::F32(a) => plain(a),
        Tensor::F16(a) => plain(a),
        Tensor::F64(a) => plain(a),
        Tensor::I8(a) => plain(a),
        Tensor::I16(a) => plain(a),
        Tensor::I32(a) => plain(a),
        Tensor::I64(a) => plain(a),
        Tensor::U8(a) => plain(a),
        Tensor::U16(a) => plain(a),
        Tensor::U32(a) => plain(a),
        Tensor::U64(a) => plain(a),
        Tensor::Bool(a) => plain(a),
        Tensor::Str(a) => Ok(tract_onnx::prelude::Tensor::from(a).into()),
        other => Err(Error::backend(
            NAME,
            format!(
                "input '{}' is {}, which tract cannot hold",
                spec.name,
                other.dtype()
            ),
        )),
    }
}

/// tract's type for a dtype, if tract has one (it has strings, but no bfloat16, float8, 4-bit
/// or 2-bit types).
fn tract_dt(d: DType) -> Option<tract_onnx::prelude::DatumType> {
    use tract_onnx::prelude::f16;
    Some(match d {
        DType::F32 => f32::datum_type(),
        DType::F16 => f16::datum_type(),
        DType::F64 => f64::datum_type(),
        DType::I8 => i8::datum_type(),
        DType::I16 => i16::datum_type(),
        DType::I32 => i32::datum_type(),
        DType::I64 => i64::datum_type(),
        DType::U8 => u8::datum_type(),
        DType::U16 => u16::datum_type(),
        DType::U32 => u32::datum_type(),
        DType::U64 => u64::datum_type(),
        DType::Bool => bool::datum_type(),
        DType::Str => String::datum_type(),
        DType::BF16
        | DType::F8E4M3FN
        | DType::F8E4M3FNUZ
        | DType::F8E5M2
        | DType::F8E5M2FNUZ
        | DType::F8E8M0
        | DType::U4
        | DType::I4
        | DType::F4E2M1
        | DType::U2
        | DType::I2 => return None,
    })
}

fn from_tract(v: TValue, spec: &TensorInfo) -> Result<Tensor> {
    use tract_onnx::prelude::DatumType as T;
    let t: &tract_onnx::prelude::Tensor = &v;
    fn get<D: Datum + rdeploy_core::Element>(t: &tract_onnx::prelude::Tensor) -> Result<Tensor> {
        let view = t
            .to_plain_array_view::<D>()
            .map_err(|e| engine_err("reading an output", e))?;
        Ok(Tensor::from_array(view.to_owned()))
    }
    match t.datum_type() {
        T::F32 => get::<f32>(t),
        T::F16 => get::<half::f16>(t),
        T::F64 => get::<f64>(t),
        T::I8 => get::<i8>(t),
        T::I16 => get::<i16>(t),
        T::I32 => get::<i32>(t),
        T::I64 => get::<i64>(t),
        T::U8 => get::<u8>(t),
        T::U16 => get::<u16>(t),
        T::U32 => get::<u32>(t),
        T::U64 => get::<u64>(t),
        T::Bool => get::<bool>(t),
        T::String => {
            let view = t
                .to_plain_array_view::<String>()
                .map_err(|e| engine_err("reading an output", e))?;
            Ok(Tensor::from(view.to_owned()))
        }
        other => Err(Error::backend(
            NAME,
            format!(
                "output '{}' has tract type {other:?}, which rdeploy cannot hold",
                spec.name
            ),
        )),
    }
}

impl TractWrapper {
    fn plan_for(&self, inputs: &[Tensor]) -> Result<Arc<TypedRunnableModel>> {
        match &self.plan {
            Plan::Symbolic(p) => Ok(p.clone()),
            Plan::PerShape { model, cache } => {
                let key: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape().to_vec()).collect();
                if let Some(p) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
                    return Ok(p);
                }
                let mut m = (**model).clone();
                for (i, t) in inputs.iter().enumerate() {
                    let dt = tract_dt(t.dtype()).ok_or_else(|| {
                        Error::backend(NAME, format!("tract cannot hold {}", t.dtype()))
                    })?;
                    let fact = InferenceFact::dt_shape(dt, t.shape());
                    m.set_input_fact(i, fact)
                        .map_err(|e| engine_err("setting input shape", e))?;
                }
                let p = optimize(m).map_err(|e| {
                    engine_err(
                        &format!("tract cannot run the model for input shapes {key:?}"),
                        e,
                    )
                })?;
                if let Ok(mut c) = cache.lock() {
                    c.insert(key, p.clone());
                }
                Ok(p)
            }
        }
    }
}

impl Wrapper for TractWrapper {
    fn backend(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.sig
    }

    fn execute(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        let plan = self.plan_for(&inputs)?;
        let values: TVec<TValue> = inputs
            .into_iter()
            .zip(&self.sig.inputs)
            .map(|(t, spec)| to_tract(t, spec))
            .collect::<Result<_>>()?;
        let outs = rdeploy_core::guard::catch_engine_panic(NAME, "inference", || {
            multithread_tract_scope(self.executor.clone(), || plan.run(values))
                .map_err(|e| engine_err("inference failed", e))
        })?;
        outs.into_iter()
            .zip(&self.sig.outputs)
            .map(|(v, spec)| from_tract(v, spec))
            .collect()
    }

    /// Each node of the optimised plan timed around its evaluation (what `tract --profile`
    /// does), over `runs` calls.
    fn profile(&self, inputs: Vec<Tensor>, runs: usize) -> Result<Vec<rdeploy_core::OpTime>> {
        let plan = self.plan_for(&inputs)?;
        let model = plan.model();
        let mut total = vec![std::time::Duration::ZERO; model.nodes().len()];
        let runs = runs.max(1);
        for _ in 0..runs {
            let values: TVec<TValue> = inputs
                .iter()
                .cloned()
                .zip(&self.sig.inputs)
                .map(|(t, spec)| to_tract(t, spec))
                .collect::<Result<_>>()?;
            rdeploy_core::guard::catch_engine_panic(NAME, "profiling", || {
                multithread_tract_scope(self.executor.clone(), || {
                    let mut state = plan.spawn()?;
                    state.run_plan_with_eval(values, |ctx, op_state, node, ins| {
                        let t = std::time::Instant::now();
                        let r = tract_onnx::tract_core::plan::eval(ctx, op_state, node, ins);
                        if let Some(d) = total.get_mut(node.id) {
                            *d += t.elapsed();
                        }
                        r
                    })
                })
                .map_err(|e| engine_err("profiling failed", e))
            })?;
        }
        Ok(model
            .nodes()
            .iter()
            .zip(total)
            .filter(|(n, d)| !d.is_zero() && n.op().name() != "Source")
            .map(|(n, d)| rdeploy_core::OpTime {
                node: n.name.clone(),
                op_type: n.op().name().to_string(),
                ms: d.as_secs_f64() * 1e3 / runs as f64,
            })
            .collect())
    }
}
