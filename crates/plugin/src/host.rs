//! Loading plugins into a registry, and the backend and wrapper that call into them.

use crate::ABI_VERSION;
use crate::abi::{ExportTensor, Functions, RdError, RdSession, RdTensor, RdTensorInfo};
use rdeploy_core::{
    BackendManager, DType, DeployConfig, Device, Dim, Error, Registry, Result, Signature, Tensor,
    TensorInfo, Wrapper,
};
use std::ffi::{CStr, CString, c_char, c_void};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The environment variable listing plugin files or folders (`:`-separated); a folder
/// contributes every `*.so` in it.
pub const ENV_PLUGIN_PATH: &str = "RDEPLOY_PLUGIN_PATH";

/// A loaded plugin library and its functions.
struct Library {
    path: PathBuf,
    f: Functions,
    /// Keeps the code mapped while any backend or wrapper uses it; `None` for functions linked
    /// into this process (tests).
    _lib: Option<libloading::Library>,
}

/// Why a plugin was refused, with the file.
#[derive(Clone, Debug)]
pub struct Refused {
    /// The plugin file.
    pub path: PathBuf,
    /// What is wrong and what to do.
    pub reason: String,
}

fn cstr_or(p: *const c_char, default: &str) -> String {
    if p.is_null() {
        return default.to_string();
    }
    // SAFETY: the ABI says these are NUL-terminated strings owned by the plugin.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

impl Library {
    /// Reads and frees a plugin error; `None` for success (null).
    fn take_error(&self, e: *mut RdError) -> Option<String> {
        if e.is_null() {
            return None;
        }
        // SAFETY: `e` came from this plugin and is freed exactly once, after reading.
        let msg = unsafe { cstr_or((self.f.error_message)(e), "(no message)") };
        // SAFETY: as above.
        unsafe { (self.f.error_free)(e) };
        Some(msg)
    }
}

/// Loads one plugin file.
///
/// # Errors
/// [`Refused`] when the file cannot be opened, is not an rdeploy plugin, speaks another ABI
/// version, or lacks a function.
pub fn load(path: &Path) -> std::result::Result<Arc<dyn BackendManager>, Refused> {
    let refuse = |reason: String| Refused {
        path: path.to_path_buf(),
        reason,
    };
    // SAFETY: loading a shared library runs its initializers; the user asked for this plugin.
    let lib = unsafe { libloading::Library::new(path) }
        .map_err(|e| refuse(format!("cannot load it: {e}")))?;
    // SAFETY: the symbol's type is the ABI's; a wrong type in a foreign library is the plugin's
    // bug, as for any C ABI.
    let version = unsafe { lib.get::<crate::abi::AbiVersionFn>(b"rdeploy_plugin_abi_version") }
        .map_err(|_| {
            refuse(
                "it is not an rdeploy plugin (it has no rdeploy_plugin_abi_version function)"
                    .into(),
            )
        })?;
    // SAFETY: a plain function returning an integer.
    let v = unsafe { version() };
    if v != ABI_VERSION {
        return Err(refuse(format!(
            "it was built for plugin ABI version {v}, but this rdeploy speaks version {ABI_VERSION}; rebuild it against the rdeploy_plugin.h of this rdeploy ({})",
            rdeploy_core::VERSION
        )));
    }
    macro_rules! sym {
        ($name:literal) => {
            // SAFETY: the ABI fixes each function's signature (see rdeploy_plugin.h).
            *unsafe { lib.get(concat!($name, "\0").as_bytes()) }.map_err(|_| {
                refuse(format!(
                    "it lacks {}, which plugin ABI version {ABI_VERSION} requires; rebuild it against rdeploy_plugin.h",
                    $name
                ))
            })?
        };
    }
    let f = Functions {
        name: sym!("rdeploy_plugin_name"),
        version: sym!("rdeploy_plugin_version"),
        device_kinds: sym!("rdeploy_plugin_device_kinds"),
        is_available: sym!("rdeploy_plugin_is_available"),
        error_message: sym!("rdeploy_plugin_error_message"),
        error_free: sym!("rdeploy_plugin_error_free"),
        to_backend: sym!("rdeploy_plugin_to_backend"),
        session_create: sym!("rdeploy_plugin_session_create"),
        session_destroy: sym!("rdeploy_plugin_session_destroy"),
        session_signature: sym!("rdeploy_plugin_session_signature"),
        session_run: sym!("rdeploy_plugin_session_run"),
    };
    // SAFETY: every pointer was resolved from `lib` by its ABI v1 symbol name after the ABI
    // version check, and `lib` moves into the backend, which keeps it loaded.
    unsafe { from_functions(path, f, Some(lib)) }.map_err(refuse)
}

/// A backend from plugin functions already in this process (what [`load`] does after `dlsym`);
/// for tests of plugins linked in rather than loaded.
///
/// # Safety
/// Every pointer in `f` must be a function implementing `rdeploy_plugin.h` ABI v1 with that
/// symbol's contract, and must stay callable as long as the returned backend (and any wrapper
/// it builds) lives; `lib`, when given, is the library they come from and is kept loaded for
/// that long. rdeploy calls these pointers as they are; it cannot check them.
///
/// # Errors
/// When the plugin's name is empty or not a valid backend name.
pub unsafe fn from_functions(
    path: &Path,
    f: Functions,
    lib: Option<libloading::Library>,
) -> std::result::Result<Arc<dyn BackendManager>, String> {
    // SAFETY: static strings per the ABI.
    let name = unsafe { cstr_or((f.name)(), "") };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "its rdeploy_plugin_name returned '{name}'; a backend name is letters, digits, '-' and '_'"
        ));
    }
    // SAFETY: static strings per the ABI.
    let version = unsafe { cstr_or((f.version)(), "unknown") };
    // SAFETY: static strings per the ABI.
    let kinds = unsafe { cstr_or((f.device_kinds)(), "cpu") };
    // Leaked once per loaded plugin: `device_kinds` hands out `&str`s for the process's life.
    let device_kinds: &'static [&'static str] = Box::leak(
        kinds
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|k| &*Box::leak(k.to_ascii_lowercase().into_boxed_str()))
            .collect::<Vec<&'static str>>()
            .into_boxed_slice(),
    );
    Ok(Arc::new(PluginBackend {
        name,
        version,
        device_kinds,
        lib: Arc::new(Library {
            path: path.to_path_buf(),
            f,
            _lib: lib,
        }),
    }))
}

/// The plugin files named by `RDEPLOY_PLUGIN_PATH` (files, or folders of `*.so`), sorted
/// within each folder.
pub fn paths_from_env() -> Vec<PathBuf> {
    let Some(v) = std::env::var_os(ENV_PLUGIN_PATH) else {
        return vec![];
    };
    let mut out = Vec::new();
    for p in std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()) {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&p)
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.is_file()
                        && f.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.ends_with(".so") || n.contains(".so."))
                })
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(p);
        }
    }
    out
}

/// Loads each plugin into `registry`. A plugin that cannot be loaded, or whose name is taken,
/// is registered as an unavailable backend (named after its file) carrying the reason, so
/// `check-env` shows it and using it says why; the others load regardless. Returns the
/// refusals.
pub fn install(registry: &mut Registry, paths: &[PathBuf]) -> Vec<Refused> {
    let mut refused = Vec::new();
    for p in paths {
        let result = load(p).and_then(|m| {
            registry.register(m).map_err(|e| Refused {
                path: p.clone(),
                reason: e.to_string(),
            })
        });
        if let Err(r) = result {
            tracing::warn!("plugin {} refused: {}", r.path.display(), r.reason);
            let name = stem_name(p);
            let unavailable = Arc::new(Unavailable {
                name: name.clone(),
                reason: format!("plugin {} refused: {}", r.path.display(), r.reason),
            });
            // If even the file's name is taken, the warning above is all there is.
            let _ = registry.register(unavailable);
            refused.push(r);
        }
    }
    refused
}

/// `libfoo_bar.so.1` → `foo_bar`.
fn stem_name(p: &Path) -> String {
    let n = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = n.strip_prefix("lib").unwrap_or(&n);
    let n = n.split(".so").next().unwrap_or(n);
    let n: String = n
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if n.is_empty() { "plugin".into() } else { n }
}

/// A plugin that could not be loaded: listed, never usable.
struct Unavailable {
    name: String,
    reason: String,
}

impl BackendManager for Unavailable {
    fn name(&self) -> &str {
        &self.name
    }
    fn check(&self) -> rdeploy_core::Availability {
        Err(self.reason.clone())
    }
    fn to_backend(
        &self,
        _: &[PathBuf],
        _: &DeployConfig,
        _: &Path,
        _: &Device,
    ) -> Result<Vec<PathBuf>> {
        self.ensure_available()?;
        Err(Error::backend(&self.name, "unavailable"))
    }
    fn build_wrapper(
        &self,
        _: &[PathBuf],
        _: &Device,
        _: &[String],
        _: &[String],
        _: &DeployConfig,
    ) -> Result<Box<dyn Wrapper>> {
        self.ensure_available()?;
        Err(Error::backend(&self.name, "unavailable"))
    }
}

/// A backend living in a plugin.
struct PluginBackend {
    name: String,
    version: String,
    device_kinds: &'static [&'static str],
    lib: Arc<Library>,
}

fn c_string(what: &str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::backend("plugin", format!("{what} contains a NUL byte")))
}

fn path_c_string(p: &Path) -> Result<CString> {
    let s = p
        .to_str()
        .ok_or_else(|| Error::model(p, "plugins take UTF-8 paths; rename the file or folder"))?;
    c_string("a path", s)
}

fn config_json(cfg: &DeployConfig) -> Result<CString> {
    c_string("the deploy config", &cfg.0.to_string())
}

/// Collects strings from a `rdeploy_file_fn` callback.
unsafe extern "C" fn collect_path(ctx: *mut c_void, path: *const c_char) {
    if ctx.is_null() || path.is_null() {
        return;
    }
    // SAFETY: ctx is the `Vec<PathBuf>` passed by `to_backend` below, alive during the call;
    // path is a NUL-terminated string valid during the callback.
    let (v, s) = unsafe { (&mut *ctx.cast::<Vec<PathBuf>>(), CStr::from_ptr(path)) };
    v.push(PathBuf::from(s.to_string_lossy().into_owned()));
}

fn dims_from(rank: usize, dims: *const i64) -> Vec<i64> {
    if rank == 0 || dims.is_null() {
        return vec![];
    }
    // SAFETY: the ABI says `dims` holds `rank` values, valid during the callback.
    unsafe { std::slice::from_raw_parts(dims, rank) }.to_vec()
}

/// Signature entries collected from `rdeploy_signature_fn` callbacks (errors kept for later).
#[derive(Default)]
struct RawSignature {
    inputs: Vec<std::result::Result<TensorInfo, String>>,
    outputs: Vec<std::result::Result<TensorInfo, String>>,
}

fn info_from(i: &RdTensorInfo) -> std::result::Result<TensorInfo, String> {
    let name = cstr_or(i.name, "");
    let dtype = DType::from_onnx_code(i.dtype).ok_or_else(|| {
        format!(
            "'{name}' has element type code {}, not one rdeploy holds",
            i.dtype
        )
    })?;
    let shape = dims_from(i.rank, i.dims)
        .into_iter()
        .map(|d| {
            if d < 0 {
                Dim::Symbolic(String::new())
            } else {
                Dim::Fixed(d as u64)
            }
        })
        .collect();
    Ok(TensorInfo {
        name,
        dtype,
        shape: Some(shape),
    })
}

unsafe extern "C" fn collect_input(ctx: *mut c_void, info: *const RdTensorInfo) {
    if ctx.is_null() || info.is_null() {
        return;
    }
    // SAFETY: ctx is the `RawSignature` passed by `build_wrapper`; info is valid during the call.
    let (sig, i) = unsafe { (&mut *ctx.cast::<RawSignature>(), &*info) };
    sig.inputs.push(info_from(i));
}

unsafe extern "C" fn collect_output(ctx: *mut c_void, info: *const RdTensorInfo) {
    if ctx.is_null() || info.is_null() {
        return;
    }
    // SAFETY: as for `collect_input`.
    let (sig, i) = unsafe { (&mut *ctx.cast::<RawSignature>(), &*info) };
    sig.outputs.push(info_from(i));
}

impl PluginBackend {
    fn fail(&self, what: &str, msg: String) -> Error {
        Error::backend(&self.name, format!("{what}: {msg}"))
    }
}

impl BackendManager for PluginBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self) -> rdeploy_core::Availability {
        // SAFETY: no arguments; the result is an owned error or null.
        let e = unsafe { (self.lib.f.is_available)() };
        match self.lib.take_error(e) {
            None => Ok(self.version.clone()),
            Some(reason) => Err(reason),
        }
    }

    fn check_env_line(&self) -> String {
        match self.check() {
            Ok(v) => format!("{}:\t{v} (plugin {})", self.name, self.lib.path.display()),
            Err(reason) => format!(
                "{}:\tNone ({reason}; plugin {})",
                self.name,
                self.lib.path.display()
            ),
        }
    }

    fn device_kinds(&self) -> &[&str] {
        self.device_kinds
    }

    fn to_backend(
        &self,
        ir_files: &[PathBuf],
        deploy_cfg: &DeployConfig,
        work_dir: &Path,
        device: &Device,
    ) -> Result<Vec<PathBuf>> {
        self.ensure_available()?;
        let ir = rdeploy_core::single_file(&self.name, "a plugin's to_backend", ir_files)?;
        let (ir_c, cfg_c, wd_c, dev_c) = (
            path_c_string(ir)?,
            config_json(deploy_cfg)?,
            path_c_string(work_dir)?,
            c_string("the device", &device.to_string())?,
        );
        let mut files: Vec<PathBuf> = Vec::new();
        // SAFETY: every pointer is valid for the call; the callback's ctx is `files`.
        let e = unsafe {
            (self.lib.f.to_backend)(
                ir_c.as_ptr(),
                cfg_c.as_ptr(),
                wd_c.as_ptr(),
                dev_c.as_ptr(),
                collect_path,
                (&raw mut files).cast(),
            )
        };
        if let Some(msg) = self.lib.take_error(e) {
            return Err(self.fail("converting", msg));
        }
        if files.is_empty() {
            return Err(self.fail("converting", "the plugin reported no files".into()));
        }
        for f in &files {
            if !f.is_file() {
                return Err(self.fail(
                    "converting",
                    format!("the plugin reported {} but did not write it", f.display()),
                ));
            }
        }
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
        self.ensure_available()?;
        device.ensure_supported(&self.name, self.device_kinds)?;
        let files_c = backend_files
            .iter()
            .map(|p| path_c_string(p))
            .collect::<Result<Vec<_>>>()?;
        let ptrs: Vec<*const c_char> = files_c.iter().map(|c| c.as_ptr()).collect();
        let (dev_c, cfg_c) = (
            c_string("the device", &device.to_string())?,
            config_json(deploy_cfg)?,
        );
        let mut session: *mut RdSession = std::ptr::null_mut();
        // SAFETY: pointers valid for the call; `session` is an out-parameter.
        let e = unsafe {
            (self.lib.f.session_create)(
                ptrs.as_ptr(),
                ptrs.len(),
                dev_c.as_ptr(),
                cfg_c.as_ptr(),
                &mut session,
            )
        };
        if let Some(msg) = self.lib.take_error(e) {
            return Err(self.fail("loading the model", msg));
        }
        if session.is_null() {
            return Err(self.fail(
                "loading the model",
                "the plugin returned no session and no error".into(),
            ));
        }
        // From here the session is owned by `guard` (destroyed on any error below).
        let guard = Session {
            ptr: session,
            lib: self.lib.clone(),
        };
        let mut sig = RawSignature::default();
        // SAFETY: a live session; callbacks get `sig` as ctx during the call.
        let e = unsafe {
            (self.lib.f.session_signature)(
                guard.ptr,
                collect_input,
                collect_output,
                (&raw mut sig).cast(),
            )
        };
        if let Some(msg) = self.lib.take_error(e) {
            return Err(self.fail("reading the model's signature", msg));
        }
        let collect = |v: Vec<std::result::Result<TensorInfo, String>>| {
            v.into_iter()
                .collect::<std::result::Result<Vec<_>, String>>()
                .map_err(|m| self.fail("reading the model's signature", m))
        };
        let (all_in, all_out) = (collect(sig.inputs)?, collect(sig.outputs)?);
        let sig = rdeploy_core::select_signature(
            &self.name,
            &all_in,
            &all_out,
            input_names,
            output_names,
            device,
        )?;
        Ok(Box::new(PluginWrapper {
            backend: self.name.clone(),
            sig,
            all_outputs: all_out,
            session: Mutex::new(guard),
        }))
    }
}

/// A plugin session, destroyed on drop.
struct Session {
    ptr: *mut RdSession,
    lib: Arc<Library>,
}

// SAFETY: the ABI lets a session be used from any thread, one thread at a time; the wrapper
// keeps it behind a Mutex.
unsafe impl Send for Session {}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: created by this plugin's session_create, destroyed once.
        unsafe { (self.lib.f.session_destroy)(self.ptr) };
    }
}

struct PluginWrapper {
    backend: String,
    sig: Signature,
    /// Every output the session emits, in its order (outputs may select some of them).
    all_outputs: Vec<TensorInfo>,
    session: Mutex<Session>,
}

/// Outputs collected from `rdeploy_tensor_fn` callbacks.
type Emitted = Vec<std::result::Result<(String, Tensor), String>>;

unsafe extern "C" fn collect_tensor(ctx: *mut c_void, t: *const RdTensor) {
    if ctx.is_null() || t.is_null() {
        return;
    }
    // SAFETY: ctx is the `Emitted` passed by `execute`; t and what it points to are valid
    // during the callback.
    let (out, t) = unsafe { (&mut *ctx.cast::<Emitted>(), &*t) };
    let name = cstr_or(t.name, "");
    // SAFETY: the ABI says what `t` points to is valid during the callback.
    let r = unsafe { t.to_tensor() }
        .map(|x| (name.clone(), x))
        .map_err(|e| format!("output '{name}': {e}"));
    out.push(r);
}

impl Wrapper for PluginWrapper {
    fn backend(&self) -> &str {
        &self.backend
    }
    fn signature(&self) -> &Signature {
        &self.sig
    }

    fn execute(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        let laid_out = inputs
            .iter()
            .zip(&self.sig.inputs)
            .map(|(t, spec)| ExportTensor::new(&spec.name, t))
            .collect::<std::result::Result<Vec<_>, String>>()
            .map_err(|m| Error::backend(&self.backend, m))?;
        let raw: Vec<RdTensor> = laid_out.iter().map(ExportTensor::raw).collect();
        let mut emitted: Emitted = Vec::new();
        let session = self
            .session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // SAFETY: `raw` and everything it points to live until after the call; the session is
        // exclusively ours while the lock is held.
        let e = unsafe {
            (session.lib.f.session_run)(
                session.ptr,
                raw.as_ptr(),
                raw.len(),
                collect_tensor,
                (&raw mut emitted).cast(),
            )
        };
        if let Some(msg) = session.lib.take_error(e) {
            return Err(Error::backend(
                &self.backend,
                format!("inference failed: {msg}"),
            ));
        }
        drop(session);
        let emitted = emitted
            .into_iter()
            .collect::<std::result::Result<Vec<_>, String>>()
            .map_err(|m| Error::backend(&self.backend, m))?;
        if emitted.len() != self.all_outputs.len() {
            return Err(Error::backend(
                &self.backend,
                format!(
                    "the plugin emitted {} outputs, its signature has {}",
                    emitted.len(),
                    self.all_outputs.len()
                ),
            ));
        }
        let mut emitted: Vec<Option<(String, Tensor)>> = emitted.into_iter().map(Some).collect();
        self.sig
            .outputs
            .iter()
            .map(|spec| {
                emitted
                    .iter_mut()
                    .find(|e| e.as_ref().is_some_and(|(n, _)| *n == spec.name))
                    .and_then(Option::take)
                    .map(|(_, t)| t)
                    .ok_or_else(|| {
                        Error::backend(
                            &self.backend,
                            format!("the plugin emitted no output named '{}'", spec.name),
                        )
                    })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_files() {
        assert_eq!(stem_name(Path::new("/x/libfoo_bar.so.1")), "foo_bar");
        assert_eq!(stem_name(Path::new("my plugin.so")), "my_plugin");
    }
}
