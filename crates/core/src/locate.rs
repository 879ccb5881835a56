//! Helpers for backends that load an engine's shared library at run time: the active Python
//! environment's package folders (where pip puts engine wheels) and versioned library files.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

static SITE_DIRS: OnceLock<(Vec<PathBuf>, String)> = OnceLock::new();

/// Sets the Python package folders engines are looked for in, when rdeploy runs inside a Python
/// interpreter (the `rdeploy` Python package passes its own `sys.path` and `sys.executable`), so
/// that the engines of the running environment are found. Returns false when the folders were
/// already asked for (the first answer stays).
pub fn set_python_site_dirs(dirs: Vec<PathBuf>, python: String) -> bool {
    SITE_DIRS.set((dirs, python)).is_ok()
}

/// The active Python environment's package folders (`site-packages` and the rest of
/// `sys.path`, so `PYTHONPATH` too), and its interpreter (`sys.executable`).
///
/// The interpreter asked is `RDEPLOY_PYTHON` when set, else `$VIRTUAL_ENV/bin/python` when a
/// virtual env is active, else `python3` on `PATH`. Asked once per process; an empty list when
/// there is no usable Python.
pub fn python_site_dirs() -> (&'static [PathBuf], &'static str) {
    let (dirs, python) = SITE_DIRS.get_or_init(|| {
        let python = match (
            std::env::var_os("RDEPLOY_PYTHON").filter(|p| !p.is_empty()),
            std::env::var_os("VIRTUAL_ENV"),
        ) {
            (Some(p), _) => PathBuf::from(p),
            (None, Some(v)) => PathBuf::from(v).join("bin/python"),
            (None, None) => PathBuf::from("python3"),
        };
        // After a marker line: a sitecustomize or .pth file may print before the script runs.
        let script = "import site, sys, sysconfig; p = sysconfig.get_paths(); \
                      print('\\n'.join(['--rdeploy-site-dirs--', sys.executable, p['purelib'], p['platlib']] + list(getattr(site, 'getsitepackages', lambda: [])()) + [d for d in sys.path if d]))";
        let lines: Vec<String> = match Command::new(&python).args(["-c", script]).output() {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
                .lines()
                .skip_while(|l| *l != "--rdeploy-site-dirs--")
                .skip(1)
                .map(str::to_string)
                .collect(),
            Ok(_) | Err(_) => vec![],
        };
        let exe = lines
            .first()
            .filter(|l| !l.is_empty())
            .cloned()
            .unwrap_or_else(|| python.display().to_string());
        let mut dirs: Vec<PathBuf> = Vec::new();
        for d in lines.iter().skip(1).map(PathBuf::from) {
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
        (dirs, exe)
    });
    (dirs, python)
}

/// Files in `dir` named `lib<stem>.so` or `lib<stem>.so.<version>` (pip wheels often ship only
/// the versioned name), newest version first. `exclude` drops names containing any of its
/// strings (for example provider libraries that share the stem).
pub fn shared_libs_in(dir: &Path, stem: &str, exclude: &[&str]) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let plain = format!("lib{stem}.so");
    let versioned = format!("lib{stem}.so.");
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                (n == plain || n.starts_with(&versioned)) && !exclude.iter().any(|x| n.contains(x))
            })
        })
        .collect();
    v.sort();
    v.reverse();
    v
}

/// `LD_LIBRARY_PATH`'s folders, then the usual system library folders, then `extra`.
pub fn system_lib_dirs(extra: &[&str]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("LD_LIBRARY_PATH")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    dirs.extend(
        [
            "/usr/local/lib",
            "/usr/lib",
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
        ]
        .iter()
        .chain(extra)
        .map(PathBuf::from),
    );
    dirs
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    #[test]
    fn finds_versioned_names_newest_first() {
        let d = std::env::temp_dir().join(format!("rdeploy-locate-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        for n in [
            "libfoo.so.1",
            "libfoo.so.2",
            "libfoo_bar.so",
            "libfoo.so.3.providers",
            "x",
        ] {
            std::fs::write(d.join(n), b"").unwrap();
        }
        let names: Vec<String> = shared_libs_in(&d, "foo", &["providers"])
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["libfoo.so.2", "libfoo.so.1"]);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
