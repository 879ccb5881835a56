//! rdeploy as an NVIDIA Triton Inference Server backend: `libtriton_rdeploy.so` serves rdeploy
//! work dirs on every rdeploy engine (tract, ONNX Runtime, OpenVINO, plugins) with Triton's
//! dynamic batching, instance groups, statistics and protocols.
//!
//! Install it as `<backend-directory>/rdeploy/libtriton_rdeploy.so` and give a model
//! `backend: "rdeploy"`:
//!
//! ```text
//! models/cnn/config.pbtxt            models/cnn/1/   <- an rdeploy work dir (deploy.json ...)
//!   backend: "rdeploy"
//!   max_batch_size: 8
//!   input  [{ name: "image", data_type: TYPE_FP32, dims: [3, 32, 32] }]
//!   output [{ name: "probs", data_type: TYPE_FP32, dims: [10] }]
//!   dynamic_batching { max_queue_delay_microseconds: 2000 }
//!   instance_group [{ kind: KIND_CPU, count: 2 }]
//! ```
//!
//! The version folder may instead hold `model.onnx` and the configuration a parameter
//! `deploy_config` (a deploy config beside `config.pbtxt`, or one of rdeploy's base configs
//! such as `configs/_base_/backends/openvino.py`): it is deployed at load ([`model`]).
//!
//! How Triton's calls map to rdeploy: `TRITONBACKEND_ModelInitialize` reads the configuration,
//! opens (or deploys) the work dir and checks the configuration against its signature;
//! `TRITONBACKEND_ModelInstanceInitialize` loads one wrapper per instance (`rdeploy::load`, on
//! the CPU; a GPU instance is refused with the reason); `TRITONBACKEND_ModelInstanceExecute`
//! reads the requests' inputs from host memory, runs them ([`run`]: joined along dim 0 in one
//! engine call when `max_batch_size > 0`), answers each request with its outputs or an error
//! naming the tensor, and reports per-request and per-batch statistics.
//!
//! Design: Triton's C API is declared here by hand ([`ffi`]) and resolved in the server process
//! at run time, so building needs neither Triton's headers nor its library. Every entry point
//! catches panics and turns them into Triton errors; once `ModelInstanceExecute` has taken the
//! requests, every failure is an error response, never a lost request.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod ffi;
pub mod model;
pub mod run;

use ffi::*;
use model::ModelConfig;
use rdeploy::{Device, NamedTensors, Registry, WorkDir, Wrapper};
use run::{RequestError, RequestResult};
use std::ffi::{CStr, CString, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::ptr::null_mut;
use std::sync::{Arc, OnceLock};

/// A failed backend call: Triton's error code and the message.
struct Failure {
    code: TRITONSERVER_Error_Code,
    msg: String,
}

impl Failure {
    fn internal(msg: impl Into<String>) -> Failure {
        Failure {
            code: TRITONSERVER_ERROR_INTERNAL,
            msg: msg.into(),
        }
    }

    fn invalid(msg: impl Into<String>) -> Failure {
        Failure {
            code: TRITONSERVER_ERROR_INVALID_ARG,
            msg: msg.into(),
        }
    }
}

impl From<String> for Failure {
    fn from(msg: String) -> Failure {
        Failure::internal(msg)
    }
}

/// A model version as loaded: shared by its instances.
struct Model {
    name: String,
    version: u64,
    config: ModelConfig,
    work: WorkDir,
}

/// One instance: its own wrapper of the model's work dir.
struct Instance {
    model: Arc<Model>,
    name: String,
    wrapper: Arc<dyn Wrapper>,
}

/// The engines this backend serves: the built-in ones, `RDEPLOY_PLUGIN_PATH`'s plugins and the
/// Python environment's backends (`rdeploy.backends` entry points, in worker processes).
fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut r = rdeploy::builtin_registry();
        rdeploy::install_plugins(&mut r, &[]);
        rdeploy::install_python_backends(&mut r);
        r
    })
}

/// Triton's clock for statistics: `std::chrono::steady_clock`, which is `CLOCK_MONOTONIC`.
fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// A C string from Triton, copied (empty for null).
///
/// # Safety
/// `p` is null or a nul-terminated string valid for the call.
unsafe fn string(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: non-null and nul-terminated per the caller.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Turns a Triton error into its message, freeing it; `Ok` for null (success).
fn check(api: &Api, err: *mut TRITONSERVER_Error, what: &str) -> Result<(), String> {
    if err.is_null() {
        return Ok(());
    }
    // SAFETY: `err` is a live error object Triton returned; its message is read before the
    // object is freed, once.
    let msg = unsafe { string((api.TRITONSERVER_ErrorMessage)(err)) };
    // SAFETY: as above; the error is not used after this.
    unsafe { (api.TRITONSERVER_ErrorDelete)(err) };
    Err(format!("{what}: {msg}"))
}

/// A new Triton error object (owned by the caller, or by Triton when returned to it).
fn new_error(api: &Api, code: TRITONSERVER_Error_Code, msg: &str) -> *mut TRITONSERVER_Error {
    let msg = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    // SAFETY: ErrorNew copies the nul-terminated message.
    unsafe { (api.TRITONSERVER_ErrorNew)(code, msg.as_ptr()) }
}

/// Writes a line to Triton's log.
fn log(api: &Api, level: TRITONSERVER_LogLevel, msg: &str) {
    // SAFETY: a plain query of the log settings.
    if !unsafe { (api.TRITONSERVER_LogIsEnabled)(level) } {
        return;
    }
    let msg = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    // SAFETY: both strings are nul-terminated and outlive the call, which copies them.
    let err = unsafe {
        (api.TRITONSERVER_LogMessage)(level, c"libtriton_rdeploy".as_ptr(), 0, msg.as_ptr())
    };
    let _ = check(api, err, "logging");
}

/// Runs an entry point: panics and failures become Triton errors (null is success).
fn entry(
    what: &str,
    f: impl FnOnce(&'static Api) -> Result<(), Failure>,
) -> *mut TRITONSERVER_Error {
    let api = match ffi::api() {
        Ok(api) => api,
        Err(e) => {
            // Without the API no error object can be made, and returning success would be a lie.
            eprintln!("libtriton_rdeploy: {what}: {e}");
            std::process::abort();
        }
    };
    let failure = match catch_unwind(AssertUnwindSafe(|| f(api))) {
        Ok(Ok(())) => return null_mut(),
        Ok(Err(failure)) => failure,
        Err(panic) => Failure::internal(format!(
            "internal error in the rdeploy backend ({}); please report this as a bug",
            panic_message(&panic)
        )),
    };
    new_error(
        api,
        failure.code,
        &format!("rdeploy: {what}: {}", failure.msg),
    )
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown cause".into())
}

/// Called once when Triton loads the backend: checks the API version and sets up the engines.
///
/// # Safety
/// Called by Triton with a valid backend.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TRITONBACKEND_Initialize(
    backend: *mut TRITONBACKEND_Backend,
) -> *mut TRITONSERVER_Error {
    entry("initializing", |api| {
        let (mut major, mut minor) = (0u32, 0u32);
        // SAFETY: two valid out-pointers.
        check(
            api,
            unsafe { (api.TRITONBACKEND_ApiVersion)(&mut major, &mut minor) },
            "TRITONBACKEND_ApiVersion",
        )?;
        if major != TRITONBACKEND_API_VERSION_MAJOR || minor < TRITONBACKEND_API_VERSION_MINOR {
            return Err(Failure {
                code: TRITONSERVER_ERROR_UNSUPPORTED,
                msg: format!(
                    "this Triton's backend API is {major}.{minor}; libtriton_rdeploy.so needs \
                     {TRITONBACKEND_API_VERSION_MAJOR}.{TRITONBACKEND_API_VERSION_MINOR} or a \
                     later {TRITONBACKEND_API_VERSION_MAJOR}.x (Triton 2.44 or newer)"
                ),
            });
        }
        let mut name = std::ptr::null();
        // SAFETY: a valid backend and out-pointer; the name is owned by Triton.
        check(
            api,
            unsafe { (api.TRITONBACKEND_BackendName)(backend, &mut name) },
            "TRITONBACKEND_BackendName",
        )?;
        // SAFETY: Triton's nul-terminated name.
        let name = unsafe { string(name) };
        // Engine panics are caught and answered as errors; the hook would print each one.
        rdeploy::guard::quiet_engine_panics();
        let engines: Vec<String> = rdeploy::check_env(registry())
            .into_iter()
            .map(|s| s.line.replace('\t', " "))
            .collect();
        log(
            api,
            TRITONSERVER_LOG_INFO,
            &format!(
                "backend '{name}': rdeploy {} (API {major}.{minor}); engines: {}",
                rdeploy::VERSION,
                engines.join("; ")
            ),
        );
        Ok(())
    })
}

/// Asks Triton for CPU instances when a configuration names no instance group.
///
/// # Safety
/// Called by Triton with valid arguments.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TRITONBACKEND_GetBackendAttribute(
    _backend: *mut TRITONBACKEND_Backend,
    attributes: *mut TRITONBACKEND_BackendAttribute,
) -> *mut TRITONSERVER_Error {
    entry("backend attributes", |api| {
        // SAFETY: Triton's attribute object; no device ids are passed.
        check(
            api,
            unsafe {
                (api.TRITONBACKEND_BackendAttributeAddPreferredInstanceGroup)(
                    attributes,
                    TRITONSERVER_INSTANCEGROUPKIND_CPU,
                    0,
                    std::ptr::null(),
                    0,
                )
            },
            "TRITONBACKEND_BackendAttributeAddPreferredInstanceGroup",
        )?;
        Ok(())
    })
}

/// Loads a model version: reads its configuration, opens or deploys its work dir and checks
/// the two agree.
///
/// # Safety
/// Called by Triton with a valid model.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TRITONBACKEND_ModelInitialize(
    model: *mut TRITONBACKEND_Model,
) -> *mut TRITONSERVER_Error {
    entry("loading a model", |api| {
        // SAFETY: Triton's model, valid during this call.
        let m = unsafe { model_init(api, model) }?;
        let state = Box::into_raw(Box::new(Arc::new(m)));
        // SAFETY: the state pointer stays valid until ModelFinalize frees it.
        let r = check(
            api,
            unsafe { (api.TRITONBACKEND_ModelSetState)(model, state.cast::<c_void>()) },
            "TRITONBACKEND_ModelSetState",
        );
        if r.is_err() {
            // SAFETY: Triton did not take the state; it is ours to free, once.
            drop(unsafe { Box::from_raw(state) });
        }
        Ok(r?)
    })
}

/// # Safety
/// `model` is Triton's, valid during the call.
unsafe fn model_init(api: &Api, model: *mut TRITONBACKEND_Model) -> Result<Model, Failure> {
    let mut name = std::ptr::null();
    let mut version = 0u64;
    let mut artifact = 0u32;
    let mut location = std::ptr::null();
    let mut message = null_mut();
    // SAFETY: valid out-pointers; strings are Triton's, read before returning.
    let (name, location) = unsafe {
        check(
            api,
            (api.TRITONBACKEND_ModelName)(model, &mut name),
            "TRITONBACKEND_ModelName",
        )?;
        check(
            api,
            (api.TRITONBACKEND_ModelVersion)(model, &mut version),
            "TRITONBACKEND_ModelVersion",
        )?;
        check(
            api,
            (api.TRITONBACKEND_ModelRepository)(model, &mut artifact, &mut location),
            "TRITONBACKEND_ModelRepository",
        )?;
        check(
            api,
            (api.TRITONBACKEND_ModelConfig)(model, 1, &mut message),
            "TRITONBACKEND_ModelConfig",
        )?;
        (string(name), PathBuf::from(string(location)))
    };
    // SAFETY: `message` is the configuration Triton handed over; it is freed once below.
    let json = unsafe { message_json(api, message) };
    // SAFETY: as above.
    let _ = check(
        api,
        unsafe { (api.TRITONSERVER_MessageDelete)(message) },
        "TRITONSERVER_MessageDelete",
    );
    let json = json?;
    if artifact != TRITONBACKEND_ARTIFACT_FILESYSTEM {
        return Err(Failure {
            code: TRITONSERVER_ERROR_UNSUPPORTED,
            msg: format!("model '{name}': the repository is not a local folder"),
        });
    }
    let config: serde_json::Value = serde_json::from_str(&json)
        .map_err(|e| Failure::internal(format!("model '{name}': configuration JSON: {e}")))?;
    let config = ModelConfig::from_json(&config)
        .map_err(|e| Failure::invalid(format!("model '{name}': {e}")))?;
    let work = model::work_dir(registry(), &location, version, &config)
        .map_err(|e| Failure::invalid(format!("model '{name}' version {version}: {e}")))?;
    model::check_signature(&config, &work)
        .map_err(|e| Failure::invalid(format!("model '{name}' version {version}: {e}")))?;
    let m = &work.manifest;
    let describe = |v: &[rdeploy::TensorInfo]| {
        v.iter()
            .map(|t| format!("{} {} {}", t.name, t.dtype, t.shape_string()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    log(
        api,
        TRITONSERVER_LOG_INFO,
        &format!(
            "model '{name}' version {version}: {} work dir {}{} (inputs {}; outputs {}; \
             max_batch_size {})",
            m.backend,
            work.path.display(),
            if work.reused { ", reused" } else { "" },
            describe(&m.inputs),
            describe(&m.outputs),
            config.max_batch_size
        ),
    );
    Ok(Model {
        name,
        version,
        config,
        work,
    })
}

/// # Safety
/// `message` is a live Triton message.
unsafe fn message_json(api: &Api, message: *mut TRITONSERVER_Message) -> Result<String, Failure> {
    let mut base = std::ptr::null();
    let mut size = 0usize;
    // SAFETY: valid out-pointers; the text is owned by the message and copied out.
    unsafe {
        check(
            api,
            (api.TRITONSERVER_MessageSerializeToJson)(message, &mut base, &mut size),
            "TRITONSERVER_MessageSerializeToJson",
        )?;
        if base.is_null() {
            return Ok(String::new());
        }
        let bytes = std::slice::from_raw_parts(base.cast::<u8>(), size);
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }
}

/// Frees a model's state.
///
/// # Safety
/// Called by Triton with a valid model.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TRITONBACKEND_ModelFinalize(
    model: *mut TRITONBACKEND_Model,
) -> *mut TRITONSERVER_Error {
    entry("unloading a model", |api| {
        let mut state = null_mut();
        // SAFETY: a valid model and out-pointer.
        check(
            api,
            unsafe { (api.TRITONBACKEND_ModelState)(model, &mut state) },
            "TRITONBACKEND_ModelState",
        )?;
        if !state.is_null() {
            // SAFETY: set by ModelInitialize from Box::into_raw; Triton calls this once.
            drop(unsafe { Box::from_raw(state.cast::<Arc<Model>>()) });
        }
        Ok(())
    })
}

/// Loads one instance: a wrapper of the model's work dir on the instance's device.
///
/// # Safety
/// Called by Triton with a valid instance.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TRITONBACKEND_ModelInstanceInitialize(
    instance: *mut TRITONBACKEND_ModelInstance,
) -> *mut TRITONSERVER_Error {
    entry("loading a model instance", |api| {
        // SAFETY: Triton's instance, valid during this call.
        let state = Box::into_raw(Box::new(unsafe { instance_init(api, instance) }?));
        // SAFETY: the state pointer stays valid until ModelInstanceFinalize frees it.
        let r = check(
            api,
            unsafe { (api.TRITONBACKEND_ModelInstanceSetState)(instance, state.cast::<c_void>()) },
            "TRITONBACKEND_ModelInstanceSetState",
        );
        if r.is_err() {
            // SAFETY: Triton did not take the state; it is ours to free, once.
            drop(unsafe { Box::from_raw(state) });
        }
        Ok(r?)
    })
}

/// # Safety
/// `instance` is Triton's, valid during the call.
unsafe fn instance_init(
    api: &Api,
    instance: *mut TRITONBACKEND_ModelInstance,
) -> Result<Instance, Failure> {
    let mut name = std::ptr::null();
    let mut kind = TRITONSERVER_INSTANCEGROUPKIND_AUTO;
    let mut device_id = 0i32;
    let mut model = null_mut();
    let mut state = null_mut();
    // SAFETY: valid out-pointers; the model state was set by ModelInitialize and outlives its
    // instances.
    let (name, model) = unsafe {
        check(
            api,
            (api.TRITONBACKEND_ModelInstanceName)(instance, &mut name),
            "TRITONBACKEND_ModelInstanceName",
        )?;
        check(
            api,
            (api.TRITONBACKEND_ModelInstanceKind)(instance, &mut kind),
            "TRITONBACKEND_ModelInstanceKind",
        )?;
        check(
            api,
            (api.TRITONBACKEND_ModelInstanceDeviceId)(instance, &mut device_id),
            "TRITONBACKEND_ModelInstanceDeviceId",
        )?;
        check(
            api,
            (api.TRITONBACKEND_ModelInstanceModel)(instance, &mut model),
            "TRITONBACKEND_ModelInstanceModel",
        )?;
        check(
            api,
            (api.TRITONBACKEND_ModelState)(model, &mut state),
            "TRITONBACKEND_ModelState",
        )?;
        if state.is_null() {
            return Err(Failure::internal("the model has no rdeploy state"));
        }
        (string(name), Arc::clone(&*state.cast::<Arc<Model>>()))
    };
    let device = match kind {
        TRITONSERVER_INSTANCEGROUPKIND_CPU => Device::cpu(),
        TRITONSERVER_INSTANCEGROUPKIND_GPU => {
            return Err(Failure {
                code: TRITONSERVER_ERROR_UNSUPPORTED,
                msg: format!(
                    "instance '{name}' of model '{}' is KIND_GPU (device {device_id}), but the \
                     rdeploy backend runs its engines on the CPU only here ({} work dir); use \
                     instance_group [{{ kind: KIND_CPU }}]",
                    model.name, model.work.manifest.backend
                ),
            });
        }
        other => {
            return Err(Failure {
                code: TRITONSERVER_ERROR_UNSUPPORTED,
                msg: format!(
                    "instance '{name}' of model '{}' has instance group kind {other}; the \
                     rdeploy backend supports KIND_CPU",
                    model.name
                ),
            });
        }
    };
    let wrapper = rdeploy::load(&model.work, registry(), Some(&device)).map_err(|e| {
        Failure::internal(format!(
            "instance '{name}' of model '{}' version {}: {}",
            model.name,
            model.version,
            e.report()
        ))
    })?;
    log(
        api,
        TRITONSERVER_LOG_INFO,
        &format!(
            "instance '{name}': {} on {device}",
            wrapper.backend(),
            device = wrapper.device()
        ),
    );
    Ok(Instance {
        model,
        name,
        wrapper,
    })
}

/// Frees an instance's state.
///
/// # Safety
/// Called by Triton with a valid instance.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TRITONBACKEND_ModelInstanceFinalize(
    instance: *mut TRITONBACKEND_ModelInstance,
) -> *mut TRITONSERVER_Error {
    entry("unloading a model instance", |api| {
        let mut state = null_mut();
        // SAFETY: a valid instance and out-pointer.
        check(
            api,
            unsafe { (api.TRITONBACKEND_ModelInstanceState)(instance, &mut state) },
            "TRITONBACKEND_ModelInstanceState",
        )?;
        if !state.is_null() {
            // SAFETY: set by ModelInstanceInitialize from Box::into_raw; Triton calls this once.
            drop(unsafe { Box::from_raw(state.cast::<Instance>()) });
        }
        Ok(())
    })
}

/// Runs a batch of requests on an instance and answers each one.
///
/// # Safety
/// Called by Triton with a valid instance and `request_count` valid requests.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TRITONBACKEND_ModelInstanceExecute(
    instance: *mut TRITONBACKEND_ModelInstance,
    requests: *mut *mut TRITONBACKEND_Request,
    request_count: u32,
) -> *mut TRITONSERVER_Error {
    entry("executing", |api| {
        let exec_start_ns = now_ns();
        let mut state = null_mut();
        // SAFETY: a valid instance and out-pointer.
        check(
            api,
            unsafe { (api.TRITONBACKEND_ModelInstanceState)(instance, &mut state) },
            "TRITONBACKEND_ModelInstanceState",
        )?;
        if state.is_null() || (requests.is_null() && request_count > 0) {
            return Err(Failure::internal("no instance state or requests"));
        }
        // SAFETY: set by ModelInstanceInitialize; Triton does not finalize an instance while
        // it executes.
        let inst = unsafe { &*state.cast::<Instance>() };
        let requests: Vec<*mut TRITONBACKEND_Request> = if request_count == 0 {
            Vec::new()
        } else {
            // SAFETY: Triton passes `request_count` request pointers; they are copied out
            // because the array is Triton's again after this call.
            unsafe { std::slice::from_raw_parts(requests, request_count as usize) }.to_vec()
        };
        // From here the requests are ours: every one is answered and released, and this call
        // returns success whatever happens to them.
        // SAFETY: the instance and the requests are valid until released below.
        unsafe { execute(api, instance, inst, &requests, exec_start_ns) };
        Ok(())
    })
}

/// Answers and releases every request.
///
/// # Safety
/// `instance` and `requests` are Triton's and valid; the requests are owned by this call.
unsafe fn execute(
    api: &Api,
    instance: *mut TRITONBACKEND_ModelInstance,
    inst: &Instance,
    requests: &[*mut TRITONBACKEND_Request],
    exec_start_ns: u64,
) {
    let responses: Vec<*mut TRITONBACKEND_Response> = requests
        .iter()
        .map(|&request| {
            let mut response = null_mut();
            // SAFETY: a valid request and out-pointer.
            let err = unsafe { (api.TRITONBACKEND_ResponseNew)(&mut response, request) };
            match check(api, err, "TRITONBACKEND_ResponseNew") {
                Ok(()) => response,
                Err(e) => {
                    log(api, TRITONSERVER_LOG_ERROR, &format!("{}: {e}", inst.name));
                    null_mut()
                }
            }
        })
        .collect();
    let ran = catch_unwind(AssertUnwindSafe(|| {
        let inputs: Vec<RequestResult> = requests
            .iter()
            // SAFETY: valid requests, read before they are released.
            .map(|&r| unsafe { read_inputs(api, r) })
            .collect();
        run::run(
            inst.wrapper.as_ref(),
            inst.model.config.batching(),
            inputs,
            now_ns,
        )
    }));
    let executed = ran.unwrap_or_else(|panic| {
        let msg = format!(
            "internal error in the rdeploy backend ({}); please report this as a bug",
            panic_message(&panic)
        );
        let now = now_ns();
        run::Executed {
            results: requests
                .iter()
                .map(|_| Err(RequestError::Failed(msg.clone())))
                .collect(),
            compute_start_ns: now,
            compute_end_ns: now,
            batch_size: 0,
            engine_calls: 0,
        }
    });
    // Outputs go into the responses first; statistics are reported before anything is sent,
    // so that a client holding its response sees them counted.
    let errors: Vec<Option<(TRITONSERVER_Error_Code, String)>> = requests
        .iter()
        .zip(&responses)
        .zip(executed.results)
        .map(|((&request, &response), result)| {
            if response.is_null() {
                return Some((TRITONSERVER_ERROR_INTERNAL, "no response object".into()));
            }
            match result {
                Ok(outputs) => catch_unwind(AssertUnwindSafe(|| {
                    // SAFETY: a valid request and its response, not yet sent.
                    unsafe { write_outputs(api, request, response, outputs) }
                }))
                .unwrap_or_else(|panic| Err(panic_message(&panic)))
                .err()
                .map(|e| (TRITONSERVER_ERROR_INTERNAL, e)),
                Err(RequestError::Invalid(e)) => Some((TRITONSERVER_ERROR_INVALID_ARG, e)),
                Err(RequestError::Failed(e)) => Some((TRITONSERVER_ERROR_INTERNAL, e)),
            }
        })
        .collect();
    let exec_end_ns = now_ns();
    let report = |err: *mut TRITONSERVER_Error, what: &str| {
        if let Err(e) = check(api, err, what) {
            log(api, TRITONSERVER_LOG_ERROR, &format!("{}: {e}", inst.name));
        }
    };
    for (&request, error) in requests.iter().zip(&errors) {
        // SAFETY: a valid instance and request, not yet released.
        let err = unsafe {
            (api.TRITONBACKEND_ModelInstanceReportStatistics)(
                instance,
                request,
                error.is_none(),
                exec_start_ns,
                executed.compute_start_ns,
                executed.compute_end_ns,
                exec_end_ns,
            )
        };
        report(err, "TRITONBACKEND_ModelInstanceReportStatistics");
    }
    if executed.batch_size > 0 {
        // SAFETY: a valid instance.
        let err = unsafe {
            (api.TRITONBACKEND_ModelInstanceReportBatchStatistics)(
                instance,
                executed.batch_size,
                exec_start_ns,
                executed.compute_start_ns,
                executed.compute_end_ns,
                exec_end_ns,
            )
        };
        report(err, "TRITONBACKEND_ModelInstanceReportBatchStatistics");
    }
    for ((&request, &response), error) in requests.iter().zip(&responses).zip(errors) {
        if !response.is_null() {
            let error = match error {
                None => null_mut(),
                Some((code, msg)) => new_error(api, code, &format!("rdeploy: {msg}")),
            };
            // SAFETY: the response is sent once and not touched after; the error stays ours.
            let err = unsafe {
                (api.TRITONBACKEND_ResponseSend)(
                    response,
                    TRITONSERVER_RESPONSE_COMPLETE_FINAL,
                    error,
                )
            };
            if !error.is_null() {
                // SAFETY: our error object, freed once after Triton copied it.
                unsafe { (api.TRITONSERVER_ErrorDelete)(error) };
            }
            report(err, "TRITONBACKEND_ResponseSend");
        }
        // SAFETY: a valid request, released once and not used after.
        let err = unsafe {
            (api.TRITONBACKEND_RequestRelease)(request, TRITONSERVER_REQUEST_RELEASE_ALL)
        };
        report(err, "TRITONBACKEND_RequestRelease");
    }
}

/// A request's inputs as tensors, read from host memory.
///
/// # Safety
/// `request` is a valid Triton request.
unsafe fn read_inputs(api: &Api, request: *mut TRITONBACKEND_Request) -> RequestResult {
    let failed = |e: String| RequestError::Failed(e);
    let mut count = 0u32;
    // SAFETY: a valid request and out-pointer.
    check(
        api,
        unsafe { (api.TRITONBACKEND_RequestInputCount)(request, &mut count) },
        "TRITONBACKEND_RequestInputCount",
    )
    .map_err(failed)?;
    let mut named: NamedTensors = Vec::with_capacity(count as usize);
    for index in 0..count {
        let mut input = null_mut();
        let mut name = std::ptr::null();
        let mut datatype = 0;
        let mut shape = std::ptr::null();
        let mut dims = 0u32;
        let mut byte_size = 0u64;
        let mut buffers = 0u32;
        // SAFETY: valid out-pointers; name and shape are owned by the input, which lives as
        // long as the request, and are copied here.
        let (name, shape) = unsafe {
            check(
                api,
                (api.TRITONBACKEND_RequestInputByIndex)(request, index, &mut input),
                "TRITONBACKEND_RequestInputByIndex",
            )
            .map_err(failed)?;
            check(
                api,
                (api.TRITONBACKEND_InputProperties)(
                    input,
                    &mut name,
                    &mut datatype,
                    &mut shape,
                    &mut dims,
                    &mut byte_size,
                    &mut buffers,
                ),
                "TRITONBACKEND_InputProperties",
            )
            .map_err(failed)?;
            let shape: Vec<i64> = if dims == 0 || shape.is_null() {
                Vec::new()
            } else {
                std::slice::from_raw_parts(shape, dims as usize).to_vec()
            };
            (string(name), shape)
        };
        let buffers = (0..buffers).map(|b| {
            let mut ptr = std::ptr::null();
            let mut len = 0u64;
            let mut memory = TRITONSERVER_MEMORY_CPU;
            let mut memory_id = 0i64;
            // SAFETY: valid out-pointers; the buffer belongs to the input.
            let err = unsafe {
                (api.TRITONBACKEND_InputBuffer)(
                    input,
                    b,
                    &mut ptr,
                    &mut len,
                    &mut memory,
                    &mut memory_id,
                )
            };
            check(api, err, "TRITONBACKEND_InputBuffer")?;
            if memory != TRITONSERVER_MEMORY_CPU && memory != TRITONSERVER_MEMORY_CPU_PINNED {
                return Ok(run::Buffer::Device(memory_id));
            }
            let len = usize::try_from(len).map_err(|_| format!("a buffer of {len} bytes"))?;
            if len == 0 || ptr.is_null() {
                return Ok(run::Buffer::Host(&[]));
            }
            // SAFETY: Triton's host buffer of `len` bytes, valid while the request is (it is
            // copied before the request is released).
            Ok(run::Buffer::Host(unsafe {
                std::slice::from_raw_parts(ptr.cast::<u8>(), len)
            }))
        });
        let t = run::input_tensor(&name, datatype, &shape, byte_size, buffers)?;
        named.push((name, t));
    }
    Ok(named)
}

/// The outputs a request asks for (all when it names none).
///
/// # Safety
/// `request` is a valid Triton request.
unsafe fn requested_outputs(
    api: &Api,
    request: *mut TRITONBACKEND_Request,
) -> Result<Vec<String>, String> {
    let mut count = 0u32;
    // SAFETY: a valid request and out-pointer.
    check(
        api,
        unsafe { (api.TRITONBACKEND_RequestOutputCount)(request, &mut count) },
        "TRITONBACKEND_RequestOutputCount",
    )?;
    (0..count)
        .map(|i| {
            let mut name = std::ptr::null();
            // SAFETY: a valid request, index in range and out-pointer; the name is copied.
            unsafe {
                check(
                    api,
                    (api.TRITONBACKEND_RequestOutputName)(request, i, &mut name),
                    "TRITONBACKEND_RequestOutputName",
                )?;
                Ok(string(name))
            }
        })
        .collect()
}

/// Puts the requested outputs into the response.
///
/// # Safety
/// `request` and `response` are valid; the response is not sent yet.
unsafe fn write_outputs(
    api: &Api,
    request: *mut TRITONBACKEND_Request,
    response: *mut TRITONBACKEND_Response,
    outputs: NamedTensors,
) -> Result<(), String> {
    // SAFETY: per the caller.
    let requested = unsafe { requested_outputs(api, request) }?;
    for (name, t) in outputs {
        if !requested.is_empty() && !requested.contains(&name) {
            continue;
        }
        let shape: Vec<i64> = t.shape().iter().map(|&d| d as i64).collect();
        let cname = CString::new(name.as_str())
            .map_err(|_| format!("output '{name}': a name with a nul byte"))?;
        let bytes = rdeploy_serving::datatype::tensor_to_wire(&format!("output '{name}'"), &t)?;
        let mut output = null_mut();
        let mut buffer = null_mut();
        let mut memory = TRITONSERVER_MEMORY_CPU;
        let mut memory_id = 0i64;
        // SAFETY: valid response, name, shape and out-pointers; Triton copies name and shape.
        unsafe {
            check(
                api,
                (api.TRITONBACKEND_ResponseOutput)(
                    response,
                    &mut output,
                    cname.as_ptr(),
                    model::code_of_dtype(t.dtype()),
                    shape.as_ptr(),
                    shape.len() as u32,
                ),
                &format!("output '{name}'"),
            )?;
            check(
                api,
                (api.TRITONBACKEND_OutputBuffer)(
                    output,
                    &mut buffer,
                    bytes.len() as u64,
                    &mut memory,
                    &mut memory_id,
                ),
                &format!("output '{name}': a buffer of {} bytes", bytes.len()),
            )?;
        }
        if memory != TRITONSERVER_MEMORY_CPU && memory != TRITONSERVER_MEMORY_CPU_PINNED {
            return Err(format!(
                "output '{name}': Triton gave a GPU buffer (device {memory_id}); the rdeploy \
                 backend writes outputs to CPU memory only"
            ));
        }
        if !bytes.is_empty() {
            if buffer.is_null() {
                return Err(format!("output '{name}': Triton gave no buffer"));
            }
            // SAFETY: Triton's host buffer of bytes.len() bytes, distinct from the tensor.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), buffer.cast::<u8>(), bytes.len())
            };
        }
    }
    Ok(())
}
