//! Exporting a Rust backend as a plugin: [`export_plugin!`](crate::export_plugin) writes the C
//! functions of `rdeploy_plugin.h`, each delegating to an [`Exported`] backend with panics
//! caught and returned as errors.

use crate::abi::{
    ExportTensor, FileFn, RdError, RdSession, RdTensor, RdTensorInfo, SignatureFn, TensorFn,
};
use rdeploy_core::{BackendDescriptor, BackendManager, DeployConfig, Device, Dim, Result, Wrapper};
use std::ffi::{CStr, CString, c_char, c_void};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// Writes the plugin functions of `rdeploy_plugin.h` for a backend descriptor (a
/// [`BackendDescriptor`] expression), in a `cdylib` crate:
///
/// ```ignore
/// rdeploy_plugin::export_plugin!(my_backend::BACKEND);
/// ```
///
/// Also defines `rdeploy_plugin_functions()`, the same functions as an
/// [`abi::Functions`](crate::abi::Functions), for tests that load the plugin in-process with
/// [`host::from_functions`](crate::host::from_functions).
#[macro_export]
macro_rules! export_plugin {
    ($descriptor:expr) => {
        fn __rdeploy_plugin() -> &'static $crate::export::Exported {
            static EXPORTED: ::std::sync::OnceLock<$crate::export::Exported> =
                ::std::sync::OnceLock::new();
            EXPORTED.get_or_init(|| $crate::export::Exported::new(&$descriptor))
        }

        /// `rdeploy_plugin_abi_version` (rdeploy_plugin.h).
        #[unsafe(no_mangle)]
        pub extern "C" fn rdeploy_plugin_abi_version() -> u32 {
            $crate::ABI_VERSION
        }

        /// `rdeploy_plugin_name` (rdeploy_plugin.h).
        #[unsafe(no_mangle)]
        pub extern "C" fn rdeploy_plugin_name() -> *const ::std::ffi::c_char {
            __rdeploy_plugin().name()
        }

        /// `rdeploy_plugin_version` (rdeploy_plugin.h).
        #[unsafe(no_mangle)]
        pub extern "C" fn rdeploy_plugin_version() -> *const ::std::ffi::c_char {
            __rdeploy_plugin().version()
        }

        /// `rdeploy_plugin_device_kinds` (rdeploy_plugin.h).
        #[unsafe(no_mangle)]
        pub extern "C" fn rdeploy_plugin_device_kinds() -> *const ::std::ffi::c_char {
            __rdeploy_plugin().device_kinds()
        }

        /// `rdeploy_plugin_is_available` (rdeploy_plugin.h).
        #[unsafe(no_mangle)]
        pub extern "C" fn rdeploy_plugin_is_available() -> *mut $crate::abi::RdError {
            __rdeploy_plugin().is_available()
        }

        /// `rdeploy_plugin_error_message` (rdeploy_plugin.h).
        ///
        /// # Safety
        /// `e` is an error this plugin returned and has not freed.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn rdeploy_plugin_error_message(
            e: *const $crate::abi::RdError,
        ) -> *const ::std::ffi::c_char {
            // SAFETY: forwarded contract.
            unsafe { $crate::export::error_message(e) }
        }

        /// `rdeploy_plugin_error_free` (rdeploy_plugin.h).
        ///
        /// # Safety
        /// `e` is an error this plugin returned, freed once.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn rdeploy_plugin_error_free(e: *mut $crate::abi::RdError) {
            // SAFETY: forwarded contract.
            unsafe { $crate::export::error_free(e) }
        }

        /// `rdeploy_plugin_to_backend` (rdeploy_plugin.h).
        ///
        /// # Safety
        /// As rdeploy_plugin.h says.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn rdeploy_plugin_to_backend(
            ir_file: *const ::std::ffi::c_char,
            config_json: *const ::std::ffi::c_char,
            work_dir: *const ::std::ffi::c_char,
            device: *const ::std::ffi::c_char,
            add_file: $crate::abi::FileFn,
            ctx: *mut ::std::ffi::c_void,
        ) -> *mut $crate::abi::RdError {
            // SAFETY: forwarded contract.
            unsafe {
                __rdeploy_plugin().to_backend(ir_file, config_json, work_dir, device, add_file, ctx)
            }
        }

        /// `rdeploy_plugin_session_create` (rdeploy_plugin.h).
        ///
        /// # Safety
        /// As rdeploy_plugin.h says.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn rdeploy_plugin_session_create(
            files: *const *const ::std::ffi::c_char,
            n_files: usize,
            device: *const ::std::ffi::c_char,
            config_json: *const ::std::ffi::c_char,
            out: *mut *mut $crate::abi::RdSession,
        ) -> *mut $crate::abi::RdError {
            // SAFETY: forwarded contract.
            unsafe { __rdeploy_plugin().session_create(files, n_files, device, config_json, out) }
        }

        /// `rdeploy_plugin_session_destroy` (rdeploy_plugin.h).
        ///
        /// # Safety
        /// `s` came from `rdeploy_plugin_session_create` and is destroyed once.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn rdeploy_plugin_session_destroy(s: *mut $crate::abi::RdSession) {
            // SAFETY: forwarded contract.
            unsafe { $crate::export::session_destroy(s) }
        }

        /// `rdeploy_plugin_session_signature` (rdeploy_plugin.h).
        ///
        /// # Safety
        /// As rdeploy_plugin.h says.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn rdeploy_plugin_session_signature(
            s: *const $crate::abi::RdSession,
            input: $crate::abi::SignatureFn,
            output: $crate::abi::SignatureFn,
            ctx: *mut ::std::ffi::c_void,
        ) -> *mut $crate::abi::RdError {
            // SAFETY: forwarded contract.
            unsafe { $crate::export::session_signature(s, input, output, ctx) }
        }

        /// `rdeploy_plugin_session_run` (rdeploy_plugin.h).
        ///
        /// # Safety
        /// As rdeploy_plugin.h says.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn rdeploy_plugin_session_run(
            s: *mut $crate::abi::RdSession,
            inputs: *const $crate::abi::RdTensor,
            n_inputs: usize,
            emit: $crate::abi::TensorFn,
            ctx: *mut ::std::ffi::c_void,
        ) -> *mut $crate::abi::RdError {
            // SAFETY: forwarded contract.
            unsafe { $crate::export::session_run(s, inputs, n_inputs, emit, ctx) }
        }

        /// The exported functions as a table, for in-process tests.
        pub fn rdeploy_plugin_functions() -> $crate::abi::Functions {
            $crate::abi::Functions {
                name: rdeploy_plugin_name,
                version: rdeploy_plugin_version,
                device_kinds: rdeploy_plugin_device_kinds,
                is_available: rdeploy_plugin_is_available,
                error_message: rdeploy_plugin_error_message,
                error_free: rdeploy_plugin_error_free,
                to_backend: rdeploy_plugin_to_backend,
                session_create: rdeploy_plugin_session_create,
                session_destroy: rdeploy_plugin_session_destroy,
                session_signature: rdeploy_plugin_session_signature,
                session_run: rdeploy_plugin_session_run,
            }
        }
    };
}

/// The error type behind `rdeploy_error*`.
struct PluginError {
    msg: CString,
}

fn error(msg: impl std::fmt::Display) -> *mut RdError {
    let text = msg.to_string().replace('\0', " ");
    let msg = CString::new(text).unwrap_or_default();
    Box::into_raw(Box::new(PluginError { msg })).cast()
}

/// `rdeploy_plugin_error_message`.
///
/// # Safety
/// `e` is null or an error from this module, not yet freed.
pub unsafe fn error_message(e: *const RdError) -> *const c_char {
    if e.is_null() {
        return c"(null error)".as_ptr();
    }
    // SAFETY: per the contract, `e` is a live `PluginError`.
    unsafe { &*e.cast::<PluginError>() }.msg.as_ptr()
}

/// `rdeploy_plugin_error_free`.
///
/// # Safety
/// `e` is null or an error from this module, freed once.
pub unsafe fn error_free(e: *mut RdError) {
    if !e.is_null() {
        // SAFETY: per the contract, `e` came from `Box::into_raw` in `error`.
        drop(unsafe { Box::from_raw(e.cast::<PluginError>()) });
    }
}

/// Runs `f`, turning an error or a panic into an `rdeploy_error*`.
fn boundary(backend: &str, what: &str, f: impl FnOnce() -> Result<()>) -> *mut RdError {
    match rdeploy_core::guard::catch_engine_panic(backend, what, f) {
        Ok(()) => std::ptr::null_mut(),
        Err(e) => error(e),
    }
}

/// # Safety
/// `p` is null or a NUL-terminated string valid for the call.
unsafe fn arg(p: *const c_char, what: &str) -> Result<String> {
    if p.is_null() {
        return Err(rdeploy_core::Error::backend(
            "plugin",
            format!("{what} is null"),
        ));
    }
    // SAFETY: per the contract.
    Ok(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// # Safety
/// As for [`arg`].
unsafe fn config(p: *const c_char) -> Result<DeployConfig> {
    // SAFETY: forwarded.
    let text = unsafe { arg(p, "config_json") }?;
    serde_json::from_str(&text).map(DeployConfig).map_err(|e| {
        rdeploy_core::Error::backend("plugin", format!("config_json is not JSON: {e}"))
    })
}

/// The session type behind `rdeploy_session*`.
struct Session {
    wrapper: Box<dyn Wrapper>,
}

/// A Rust backend behind the plugin functions.
pub struct Exported {
    manager: Arc<dyn BackendManager>,
    name: CString,
    kinds: CString,
    version: OnceLock<CString>,
}

impl Exported {
    /// Wraps the backend a descriptor creates.
    pub fn new(d: &BackendDescriptor) -> Exported {
        // Panics inside the backend become errors; keep them from printing as crashes.
        rdeploy_core::guard::install_panic_hook();
        let manager = (d.create)();
        let kinds = manager.device_kinds().join(",");
        Exported {
            name: CString::new(d.name.replace('\0', "")).unwrap_or_default(),
            kinds: CString::new(kinds.replace('\0', "")).unwrap_or_default(),
            manager,
            version: OnceLock::new(),
        }
    }

    /// `rdeploy_plugin_name`.
    pub fn name(&self) -> *const c_char {
        self.name.as_ptr()
    }

    /// `rdeploy_plugin_device_kinds`.
    pub fn device_kinds(&self) -> *const c_char {
        self.kinds.as_ptr()
    }

    fn label(&self) -> String {
        self.name.to_string_lossy().into_owned()
    }

    /// `rdeploy_plugin_version`: the engine's version when available, else `unknown`.
    pub fn version(&self) -> *const c_char {
        self.version
            .get_or_init(|| {
                let v = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    self.manager.version()
                }))
                .ok()
                .flatten()
                .unwrap_or_else(|| "unknown".into());
                CString::new(v.replace('\0', "")).unwrap_or_default()
            })
            .as_ptr()
    }

    /// `rdeploy_plugin_is_available`.
    pub fn is_available(&self) -> *mut RdError {
        boundary(&self.label(), "checking availability", || {
            self.manager.ensure_available().map(|_| ())
        })
    }

    /// `rdeploy_plugin_to_backend`.
    ///
    /// # Safety
    /// Strings are valid for the call; `add_file` may be called with `ctx`.
    pub unsafe fn to_backend(
        &self,
        ir_file: *const c_char,
        config_json: *const c_char,
        work_dir: *const c_char,
        device: *const c_char,
        add_file: FileFn,
        ctx: *mut c_void,
    ) -> *mut RdError {
        boundary(&self.label(), "converting", || {
            // SAFETY: forwarded contract.
            let (ir, cfg, wd, dev) = unsafe {
                (
                    arg(ir_file, "ir_file")?,
                    config(config_json)?,
                    arg(work_dir, "work_dir")?,
                    arg(device, "device")?,
                )
            };
            let device: Device = dev.parse()?;
            let files = self.manager.to_backend(
                &[PathBuf::from(ir)],
                &cfg,
                std::path::Path::new(&wd),
                &device,
            )?;
            for f in files {
                let c = CString::new(f.to_string_lossy().into_owned()).map_err(|_| {
                    rdeploy_core::Error::backend(self.label(), "a file path contains NUL")
                })?;
                // SAFETY: the host's callback with its ctx, a string valid for the call.
                unsafe { add_file(ctx, c.as_ptr()) };
            }
            Ok(())
        })
    }

    /// `rdeploy_plugin_session_create`.
    ///
    /// # Safety
    /// `files` holds `n_files` strings; strings are valid for the call; `out` is writable.
    pub unsafe fn session_create(
        &self,
        files: *const *const c_char,
        n_files: usize,
        device: *const c_char,
        config_json: *const c_char,
        out: *mut *mut RdSession,
    ) -> *mut RdError {
        boundary(&self.label(), "loading the model", || {
            if out.is_null() || (files.is_null() && n_files > 0) {
                return Err(rdeploy_core::Error::backend(
                    self.label(),
                    "null argument to session_create",
                ));
            }
            let paths = (0..n_files)
                .map(|i| {
                    // SAFETY: `files` holds `n_files` valid strings.
                    unsafe { arg(*files.add(i), "a file").map(PathBuf::from) }
                })
                .collect::<Result<Vec<_>>>()?;
            // SAFETY: forwarded contract.
            let (dev, cfg) = unsafe { (arg(device, "device")?, config(config_json)?) };
            let device: Device = dev.parse()?;
            let wrapper = self
                .manager
                .build_wrapper(&paths, &device, &[], &[], &cfg)?;
            let s = Box::into_raw(Box::new(Session { wrapper }));
            // SAFETY: `out` is writable per the contract.
            unsafe { *out = s.cast() };
            Ok(())
        })
    }
}

/// `rdeploy_plugin_session_destroy`.
///
/// # Safety
/// `s` is null or a session from [`Exported::session_create`], destroyed once.
pub unsafe fn session_destroy(s: *mut RdSession) {
    if !s.is_null() {
        // SAFETY: per the contract; a panic in a backend's Drop is contained.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            drop(unsafe { Box::from_raw(s.cast::<Session>()) })
        }));
    }
}

fn dims_of(shape: &Option<Vec<Dim>>) -> Vec<i64> {
    shape
        .iter()
        .flatten()
        .map(|d| d.fixed().map_or(-1, |n| n as i64))
        .collect()
}

/// `rdeploy_plugin_session_signature`.
///
/// # Safety
/// `s` is a live session; callbacks are the host's, with its ctx.
pub unsafe fn session_signature(
    s: *const RdSession,
    input: SignatureFn,
    output: SignatureFn,
    ctx: *mut c_void,
) -> *mut RdError {
    if s.is_null() {
        return error("null session");
    }
    // SAFETY: a live session per the contract.
    let session = unsafe { &*s.cast::<Session>() };
    let w = &session.wrapper;
    boundary(w.backend(), "reading the signature", || {
        for (list, f) in [(w.inputs(), input), (w.outputs(), output)] {
            for t in list {
                let name = CString::new(t.name.clone()).map_err(|_| {
                    rdeploy_core::Error::backend(w.backend(), "a tensor name contains NUL")
                })?;
                let dims = dims_of(&t.shape);
                let info = RdTensorInfo {
                    name: name.as_ptr(),
                    dtype: t.dtype.onnx_code(),
                    rank: dims.len(),
                    dims: dims.as_ptr(),
                };
                // SAFETY: the host's callback; `info` and its pointers live for the call.
                unsafe { f(ctx, &info) };
            }
        }
        Ok(())
    })
}

/// `rdeploy_plugin_session_run`.
///
/// # Safety
/// `s` is a live session used by one thread; `inputs` holds `n_inputs` valid tensors.
pub unsafe fn session_run(
    s: *mut RdSession,
    inputs: *const RdTensor,
    n_inputs: usize,
    emit: TensorFn,
    ctx: *mut c_void,
) -> *mut RdError {
    if s.is_null() || (inputs.is_null() && n_inputs > 0) {
        return error("null argument to session_run");
    }
    // SAFETY: a live session per the contract.
    let session = unsafe { &*s.cast::<Session>() };
    let w = &session.wrapper;
    boundary(w.backend(), "inference", || {
        let raw: &[RdTensor] = if n_inputs == 0 {
            &[]
        } else {
            // SAFETY: `inputs` holds `n_inputs` tensors.
            unsafe { std::slice::from_raw_parts(inputs, n_inputs) }
        };
        let tensors = raw
            .iter()
            .map(|t| {
                // SAFETY: each tensor's pointers are valid for the call, per the contract.
                unsafe { t.to_tensor() }.map_err(rdeploy_core::Error::Tensor)
            })
            .collect::<Result<Vec<_>>>()?;
        let outs = w.execute(tensors)?;
        for (t, spec) in outs.iter().zip(w.outputs()) {
            let laid_out = ExportTensor::new(&spec.name, t)
                .map_err(|m| rdeploy_core::Error::backend(w.backend(), m))?;
            let out = laid_out.raw();
            // SAFETY: the host's callback; `out` and its pointers live for the call.
            unsafe { emit(ctx, &out) };
        }
        Ok(())
    })
}
