//! Finding `libonnxruntime` at run time and reading its version without initializing `ort`.

use std::ffi::CStr;
use std::path::{Path, PathBuf};

/// The ONNX Runtime API version the `ort` crate is built for; older libraries cannot be used.
pub const MIN_MINOR: u32 = ort::MINOR_VERSION;

/// A library found and probed.
#[derive(Clone, Debug)]
pub struct Found {
    /// The library file.
    pub path: PathBuf,
    /// Where it came from (`ORT_DYLIB_PATH`, `python package`, `system`).
    pub source: String,
    /// Its version string (`1.32.0`).
    pub version: String,
}

/// Reads the version of an ONNX Runtime library through `OrtGetApiBase()->GetVersionString()`.
///
/// # Errors
/// A message when the file cannot be loaded or is not ONNX Runtime.
pub fn probe_version(path: &Path) -> Result<String, String> {
    // SAFETY: loading a shared library runs its initializers; this is the library the user asked
    // rdeploy to use (or the pip package's), which `ort` would load the same way.
    let lib = unsafe { libloading::Library::new(path) }
        .map_err(|e| format!("cannot load {}: {e}", path.display()))?;
    type GetApiBase = unsafe extern "C" fn() -> *const ort::sys::OrtApiBase;
    // SAFETY: OrtGetApiBase has this signature in every ONNX Runtime release.
    let getter: libloading::Symbol<GetApiBase> = unsafe { lib.get(b"OrtGetApiBase") }
        .map_err(|_| format!("{} is not ONNX Runtime (no OrtGetApiBase)", path.display()))?;
    // SAFETY: calling the documented entry point; it returns a static struct or null.
    let base = unsafe { getter() };
    if base.is_null() {
        return Err(format!("{}: OrtGetApiBase returned null", path.display()));
    }
    // SAFETY: base is non-null and points to the library's static OrtApiBase; the version string
    // is a static NUL-terminated string owned by the library, which stays loaded (`ort` loads it
    // again and keeps it).
    let v = unsafe { CStr::from_ptr(((*base).GetVersionString)()) };
    let version = v
        .to_str()
        .map_err(|_| format!("{}: malformed version string", path.display()))?
        .to_string();
    // Keep the library loaded: `ort` will open the same file, and unloading ORT is unsafe.
    std::mem::forget(lib);
    Ok(version)
}

fn minor(version: &str) -> u32 {
    version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(0)
}

/// Finds and probes the library, in order: `ORT_DYLIB_PATH`; the `onnxruntime` package of the
/// active Python environment; system library folders. `RDEPLOY_ORT_SEARCH_PATH` (folders,
/// `:`-separated) replaces the last two, for tests and unusual installs.
///
/// # Errors
/// Where it looked and what it found there, and how to install ONNX Runtime.
pub fn locate() -> Result<Found, String> {
    let check = |path: PathBuf, source: &str| -> Result<Found, String> {
        let version = probe_version(&path)?;
        if minor(&version) < MIN_MINOR {
            return Err(format!(
                "{} is ONNX Runtime {version}, older than 1.{MIN_MINOR} which rdeploy needs; install a newer one (pip install -U onnxruntime)",
                path.display()
            ));
        }
        Ok(Found {
            path,
            source: source.to_string(),
            version,
        })
    };
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            return Err(format!(
                "ORT_DYLIB_PATH={} does not exist; point it at libonnxruntime.so.<version> or unset it",
                p.display()
            ));
        }
        return check(p, "ORT_DYLIB_PATH");
    }
    let mut looked: Vec<String> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut candidates: Vec<(PathBuf, &str)> = Vec::new();
    if let Some(dirs) = std::env::var_os("RDEPLOY_ORT_SEARCH_PATH") {
        for d in std::env::split_paths(&dirs) {
            looked.push(d.display().to_string());
            candidates.extend(
                rdeploy_core::locate::shared_libs_in(&d, "onnxruntime", &["providers"])
                    .into_iter()
                    .map(|p| (p, "RDEPLOY_ORT_SEARCH_PATH")),
            );
        }
    } else {
        let (sites, python) = rdeploy_core::locate::python_site_dirs();
        if sites.is_empty() {
            looked.push(format!(
                "the onnxruntime package of {python} (no usable Python)"
            ));
        }
        for s in sites {
            let d = s.join("onnxruntime/capi");
            looked.push(d.display().to_string());
            candidates.extend(
                rdeploy_core::locate::shared_libs_in(&d, "onnxruntime", &["providers"])
                    .into_iter()
                    .map(|p| (p, "python package")),
            );
        }
        let sys_dirs = rdeploy_core::locate::system_lib_dirs(&["/opt/onnxruntime/lib"]);
        for d in sys_dirs {
            looked.push(d.display().to_string());
            candidates.extend(
                rdeploy_core::locate::shared_libs_in(&d, "onnxruntime", &["providers"])
                    .into_iter()
                    .map(|p| (p, "system")),
            );
        }
    }
    for (p, source) in candidates {
        match check(p, source) {
            Ok(f) => return Ok(f),
            Err(e) => problems.push(e),
        }
    }
    let mut msg = format!(
        "libonnxruntime not found (looked in: {})",
        looked.join(", ")
    );
    if !problems.is_empty() {
        msg.push_str(&format!("; unusable: {}", problems.join("; ")));
    }
    msg.push_str("; install it with `pip install onnxruntime` in the active Python environment, or set ORT_DYLIB_PATH to the library file");
    Err(msg)
}
