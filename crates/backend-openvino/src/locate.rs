//! Finding `libopenvino_c` at run time and reading its version before the `openvino` crate loads
//! it (the crate loads one library per process and cannot unload a wrong one).

use std::ffi::{CStr, c_char};
use std::path::{Path, PathBuf};

/// The oldest OpenVINO the `openvino` crate supports (its `ov_element_type_e` changed in 2025.1).
pub const MIN_VERSION: (u32, u32) = (2025, 1);

/// Environment variable naming the `libopenvino_c` file to use.
pub const ENV_LIB: &str = "RDEPLOY_OPENVINO_LIB";

/// Environment variable replacing the search folders (`:`-separated), for tests and odd installs.
pub const ENV_SEARCH_PATH: &str = "RDEPLOY_OPENVINO_SEARCH_PATH";

/// A library found and probed.
#[derive(Clone, Debug)]
pub struct Found {
    /// The `libopenvino_c` file.
    pub path: PathBuf,
    /// Where it came from (`RDEPLOY_OPENVINO_LIB`, `python package`, `system`...).
    pub source: String,
    /// The release (`2026.4.1`).
    pub version: String,
    /// OpenVINO's full build number (`2026.4.1-20300-...`).
    pub build: String,
}

#[repr(C)]
struct OvVersion {
    build_number: *const c_char,
    description: *const c_char,
}

/// Reads the build number of an OpenVINO C library with `ov_get_openvino_version`.
///
/// # Errors
/// A message when the file cannot be loaded or is not OpenVINO's C library.
pub fn probe_version(path: &Path) -> Result<String, String> {
    // SAFETY: loading a shared library runs its initializers; this is the library the user named
    // or the pip package's, which the `openvino` crate would load the same way.
    let lib = unsafe { libloading::Library::new(path) }
        .map_err(|e| format!("cannot load {}: {e}", path.display()))?;
    type GetVersion = unsafe extern "C" fn(*mut OvVersion) -> i32;
    type FreeVersion = unsafe extern "C" fn(*mut OvVersion);
    // SAFETY: these are the C API's documented signatures (ov_core.h); the status is read as a
    // plain int so that an unexpected code is not an invalid enum value.
    let (get, free) = unsafe {
        let get: libloading::Symbol<GetVersion> =
            lib.get(b"ov_get_openvino_version").map_err(|_| {
                format!(
                    "{} is not OpenVINO's C library (no ov_get_openvino_version)",
                    path.display()
                )
            })?;
        let free: libloading::Symbol<FreeVersion> = lib
            .get(b"ov_version_free")
            .map_err(|_| format!("{} has no ov_version_free", path.display()))?;
        (get, free)
    };
    let mut v = OvVersion {
        build_number: std::ptr::null(),
        description: std::ptr::null(),
    };
    // SAFETY: `v` is a valid out-parameter; on success the library fills it with strings it owns
    // until `ov_version_free`.
    let status = unsafe { get(&mut v) };
    if status != 0 || v.build_number.is_null() {
        return Err(format!(
            "{}: ov_get_openvino_version failed (status {status})",
            path.display()
        ));
    }
    // SAFETY: non-null, NUL-terminated, owned by the library until freed below.
    let build = unsafe { CStr::from_ptr(v.build_number) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: frees what the successful call above allocated, once.
    unsafe { free(&mut v) };
    // Keep it loaded: the `openvino` crate opens the same file next, and unloading OpenVINO
    // (with its TBB threads) is not safe.
    std::mem::forget(lib);
    Ok(build)
}

/// `(year, minor)` and the release string (`2026.4.1`) of a build number.
pub fn parse_version(build: &str) -> Option<((u32, u32), String)> {
    let release = build.split('-').next()?;
    let mut parts = release.split('.');
    let year = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some(((year, minor), release.to_string()))
}

fn check(path: PathBuf, source: &str) -> Result<Found, String> {
    let build = probe_version(&path)?;
    let Some((ym, version)) = parse_version(&build) else {
        return Err(format!(
            "{}: cannot read OpenVINO's version from '{build}'",
            path.display()
        ));
    };
    if ym < MIN_VERSION {
        return Err(format!(
            "{} is OpenVINO {version}, older than {}.{} which rdeploy needs; install a newer one (pip install -U openvino)",
            path.display(),
            MIN_VERSION.0,
            MIN_VERSION.1
        ));
    }
    Ok(Found {
        path,
        source: source.to_string(),
        version,
        build,
    })
}

/// Finds and probes `libopenvino_c`, in order: `RDEPLOY_OPENVINO_LIB`; the `openvino` package
/// of the active Python environment (`openvino/libs/`, which holds only the versioned name
/// `libopenvino_c.so.<NNNN>`); an OpenVINO archive install (`$INTEL_OPENVINO_DIR`,
/// `/opt/intel/openvino`); system library folders. `RDEPLOY_OPENVINO_SEARCH_PATH` replaces all
/// but the first.
///
/// # Errors
/// Where it looked and what it found there, and how to install OpenVINO.
pub fn locate() -> Result<Found, String> {
    if let Some(p) = std::env::var_os(ENV_LIB).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            return Err(format!(
                "{ENV_LIB}={} does not exist; point it at libopenvino_c.so.<version> or unset it",
                p.display()
            ));
        }
        return check(p, ENV_LIB);
    }
    let mut dirs: Vec<(PathBuf, &str)> = Vec::new();
    let mut looked: Vec<String> = Vec::new();
    if let Some(v) = std::env::var_os(ENV_SEARCH_PATH) {
        dirs.extend(std::env::split_paths(&v).map(|d| (d, ENV_SEARCH_PATH)));
    } else {
        let (sites, python) = rdeploy_core::locate::python_site_dirs();
        if sites.is_empty() {
            looked.push(format!(
                "the openvino package of {python} (no usable Python)"
            ));
        }
        dirs.extend(
            sites
                .iter()
                .map(|s| (s.join("openvino/libs"), "python package")),
        );
        let mut archive: Vec<PathBuf> = std::env::var_os("INTEL_OPENVINO_DIR")
            .map(PathBuf::from)
            .into_iter()
            .collect();
        archive.push(PathBuf::from("/opt/intel/openvino"));
        for a in archive {
            dirs.push((a.join("runtime/lib/intel64"), "OpenVINO archive"));
        }
        dirs.extend(
            rdeploy_core::locate::system_lib_dirs(&[])
                .into_iter()
                .map(|d| (d, "system")),
        );
    }
    let mut problems = Vec::new();
    for (d, source) in dirs {
        looked.push(d.display().to_string());
        for p in rdeploy_core::locate::shared_libs_in(&d, "openvino_c", &[]) {
            match check(p, source) {
                Ok(f) => return Ok(f),
                Err(e) => problems.push(e),
            }
        }
    }
    let mut msg = format!("libopenvino_c not found (looked in: {})", looked.join(", "));
    if !problems.is_empty() {
        msg.push_str(&format!("; unusable: {}", problems.join("; ")));
    }
    msg.push_str(&format!(
        "; install it with `pip install openvino` in the active Python environment, or set {ENV_LIB} to the library file"
    ));
    Err(msg)
}

/// The `ovc` converter to run: `RDEPLOY_OVC`; else the one installed beside the library's Python
/// package (`<prefix>/bin/ovc` for `<prefix>/lib/pythonX.Y/site-packages/openvino/libs`); else
/// `ovc` on `PATH`.
///
/// # Errors
/// Where it looked, and how to get `ovc`.
pub fn ovc(lib: &Path) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("RDEPLOY_OVC").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "RDEPLOY_OVC={} does not exist; point it at OpenVINO's ovc converter or unset it",
                p.display()
            ))
        };
    }
    let mut looked = Vec::new();
    // libs -> openvino -> site-packages -> pythonX.Y -> lib -> prefix
    if let Some(prefix) = lib.ancestors().nth(6) {
        let p = prefix.join("bin/ovc");
        if p.is_file() {
            return Ok(p);
        }
        looked.push(p.display().to_string());
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let p = d.join("ovc");
            if p.is_file() {
                return Ok(p);
            }
        }
        looked.push("PATH".into());
    }
    Err(format!(
        "OpenVINO's `ovc` converter was not found (looked in: {}); it comes with `pip install openvino`; set RDEPLOY_OVC to its path, or set backend_config.model_format='onnx' to run the ONNX file directly without conversion",
        looked.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(
            parse_version("2026.4.1-20340-abcdef"),
            Some(((2026, 4), "2026.4.1".to_string()))
        );
        assert_eq!(
            parse_version("2024.6.0-17404-4c0f47d2335"),
            Some(((2024, 6), "2024.6.0".to_string()))
        );
        assert_eq!(parse_version("custom"), None);
        assert!((2024, 6) < MIN_VERSION && (2025, 1) >= MIN_VERSION);
    }
}
