//! Builds the C test fixtures of `examples/ort-custom-op` with the C compiler `cc` finds (`CC`,
//! `CFLAGS` and the target's flags respected): the ONNX Runtime custom-op library
//! (`myops.c`, a shared library) and `layout_check.c` (a program printing the C header's
//! struct offsets). Their paths reach the crate as `RDEPLOY_TEST_ORT_OPS_LIB` and
//! `RDEPLOY_TEST_ORT_LAYOUT_CHECK`.
//!
//! `cc::Build::compile` makes static archives only, so the compiler command it configures is
//! run here directly with the flags for a shared library or a program.

use std::path::{Path, PathBuf};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/ort-custom-op");
    for f in ["myops.c", "layout_check.c", "ort_c_api_subset.h"] {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let (lib_name, exe_name) = match target_os.as_str() {
        "windows" => ("rdeploy_test_ops.dll", "layout_check.exe"),
        "macos" | "ios" => ("librdeploy_test_ops.dylib", "layout_check"),
        _ => ("librdeploy_test_ops.so", "layout_check"),
    };
    let lib = out.join(lib_name);
    let exe = out.join(exe_name);
    compile(&root, &root.join("myops.c"), &lib, true);
    compile(&root, &root.join("layout_check.c"), &exe, false);
    println!("cargo:rustc-env=RDEPLOY_TEST_ORT_OPS_LIB={}", lib.display());
    println!(
        "cargo:rustc-env=RDEPLOY_TEST_ORT_LAYOUT_CHECK={}",
        exe.display()
    );
}

/// Compiles one C file into a shared library (`shared`) or a program at `out`.
fn compile(include: &Path, src: &Path, out: &Path, shared: bool) {
    let tool = cc::Build::new()
        .include(include)
        .std("c11")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .pic(shared)
        .cargo_metadata(false)
        .try_get_compiler()
        .unwrap_or_else(|e| {
            panic!("no C compiler for the test fixtures (install gcc or set CC): {e}")
        });
    let mut cmd = tool.to_command();
    if tool.is_like_msvc() {
        if shared {
            cmd.arg("/LD");
        }
        cmd.arg(src).arg(format!("/Fe{}", out.display()));
    } else {
        if shared {
            cmd.arg("-shared");
        }
        cmd.arg(src).arg("-o").arg(out);
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {:?}: {e}", tool.path()));
    assert!(
        status.success(),
        "the C compiler failed on {} ({cmd:?})",
        src.display()
    );
}
