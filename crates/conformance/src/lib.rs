//! The shared conformance suite: tests every rdeploy backend must pass, written once and called
//! from each backend crate's `tests/` (like object_store's `integration.rs`).
//!
//! Reference outputs are independent of rdeploy: the expected outputs shipped with ONNX's backend
//! test data (produced by PyTorch), or another engine's outputs. Test data is prepared by
//! `scripts/prepare-test-data.py` into `tests/data/generated/` (override with
//! `RDEPLOY_TEST_DATA`).
//!
//! Backend presence: a test of a backend that is not available here skips, unless the
//! comma-separated `RDEPLOY_REQUIRE_BACKENDS` names it, in which case it fails. CI names every
//! backend it installs, so a missing engine can never pass silently.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support code: panics are failures"
)]

pub mod custom_ops;

use rdeploy_core::{BackendManager, DType, DeployConfig, Device, NamedTensors, Tensor, Wrapper};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The root of the generated test data.
///
/// # Panics
/// When the data has not been prepared (the message says how).
pub fn test_data_dir() -> PathBuf {
    let dir = match std::env::var_os("RDEPLOY_TEST_DATA") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/generated"),
    };
    assert!(
        dir.join("onnx-backend").is_dir(),
        "test data missing at {}: run scripts/test.sh, or `python3 scripts/prepare-test-data.py` \
         in a Python environment with the onnx package",
        dir.display()
    );
    dir
}

/// Whether tests of `backend` should run: true if it is available; false (skip, with a note on
/// stderr) if not; a panic if `RDEPLOY_REQUIRE_BACKENDS` names it and it is not available.
pub fn backend_under_test(manager: &dyn BackendManager) -> bool {
    match manager.check() {
        Ok(_) => true,
        Err(reason) => {
            let name = manager.name();
            let required = std::env::var("RDEPLOY_REQUIRE_BACKENDS")
                .unwrap_or_default()
                .split(',')
                .any(|b| b.trim().eq_ignore_ascii_case(name));
            assert!(
                !required,
                "backend {name} is required (RDEPLOY_REQUIRE_BACKENDS) but unavailable: {reason}"
            );
            eprintln!("skipping tests of {name}: unavailable ({reason})");
            false
        }
    }
}

/// One set of inputs and expected outputs.
#[derive(Debug, Clone)]
pub struct DataSet {
    /// The folder (`test_data_set_N`).
    pub dir: PathBuf,
    /// Inputs in model input order (`input_0.pb`, `input_1.pb`...).
    pub inputs: Vec<Tensor>,
    /// Expected outputs in model output order.
    pub outputs: Vec<Tensor>,
}

/// A model with its data sets, in ONNX's backend-test layout.
#[derive(Debug, Clone)]
pub struct Case {
    /// The case name (`test_Conv2d`).
    pub name: String,
    /// The model file.
    pub model: PathBuf,
    /// Its data sets.
    pub data_sets: Vec<DataSet>,
}

fn read_numbered(dir: &Path, prefix: &str) -> Vec<Tensor> {
    let mut out = Vec::new();
    for i in 0.. {
        let p = dir.join(format!("{prefix}_{i}.pb"));
        if !p.exists() {
            break;
        }
        let mut v = rdeploy_core::io::read_tensor_file(&p).unwrap();
        out.push(v.remove(0).1);
    }
    out
}

/// Loads one case folder.
pub fn load_case(dir: &Path) -> Case {
    let mut sets: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("test_data_set_"))
        })
        .collect();
    sets.sort();
    let data_sets = sets
        .into_iter()
        .map(|d| DataSet {
            inputs: read_numbered(&d, "input"),
            outputs: read_numbered(&d, "output"),
            dir: d,
        })
        .collect();
    Case {
        name: dir.file_name().unwrap().to_string_lossy().into_owned(),
        model: dir.join("model.onnx"),
        data_sets,
    }
}

/// Every case under `onnx-backend/`, sorted by name.
pub fn onnx_backend_cases() -> Vec<Case> {
    let root = test_data_dir().join("onnx-backend");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.onnx").exists())
        .collect();
    dirs.sort();
    dirs.iter().map(|d| load_case(d)).collect()
}

/// The small CNN case (`cnn/`), whose expected outputs come from onnxruntime.
pub fn cnn_case() -> Case {
    load_case(&test_data_dir().join("cnn"))
}

/// numpy's `allclose` rule, `|got - want| <= atol + rtol * |want|`, element by element, with
/// shapes and dtypes equal; the error says where the worst element is.
///
/// # Errors
/// A message with the shapes, dtypes, or the worst element and its difference.
pub fn compare(got: &Tensor, want: &Tensor, rtol: f64, atol: f64) -> Result<f64, String> {
    if got.shape() != want.shape() {
        return Err(format!(
            "shape {:?}, expected {:?}",
            got.shape(),
            want.shape()
        ));
    }
    if got.dtype() != want.dtype() {
        return Err(format!("dtype {}, expected {}", got.dtype(), want.dtype()));
    }
    if let (Ok(g), Ok(w)) = (got.as_strings(), want.as_strings()) {
        // Strings: equal or not, whatever the tolerance.
        return match g.iter().zip(w.iter()).position(|(a, b)| a != b) {
            None => Ok(0.0),
            Some(i) => Err(format!(
                "string {i}: got {:?}, expected {:?}",
                g.iter().nth(i).map_or("", |s| s.as_str()),
                w.iter().nth(i).map_or("", |s| s.as_str())
            )),
        };
    }
    let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
    let mut max_abs = 0f64;
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        if a == b {
            // Equal values, infinities included (inf - inf would be NaN below).
            continue;
        }
        let d = (a - b).abs();
        if d.is_nan() && !(a.is_nan() && b.is_nan()) || d > atol + rtol * b.abs() {
            return Err(format!(
                "element {i}: got {a}, expected {b} (|diff| {d:e}, rtol {rtol}, atol {atol})"
            ));
        }
        if d.is_finite() {
            max_abs = max_abs.max(d);
        }
    }
    Ok(max_abs)
}

fn named(wrapper: &dyn Wrapper, inputs: &[Tensor]) -> NamedTensors {
    wrapper
        .inputs()
        .iter()
        .map(|s| s.name.clone())
        .zip(inputs.iter().cloned())
        .collect()
}

/// Builds a wrapper for a model file directly (its own name, no conversion).
pub fn wrapper_for(
    manager: &dyn BackendManager,
    model: &Path,
    work_dir: &Path,
) -> Result<Box<dyn Wrapper>, rdeploy_core::Error> {
    let cfg = DeployConfig::empty();
    let files = manager.to_backend(&[model.to_path_buf()], &cfg, work_dir, &Device::cpu())?;
    manager.build_wrapper(&files, &Device::cpu(), &[], &[], &cfg)
}

/// Runs every data set of a case and compares to the expected outputs.
///
/// # Errors
/// What failed: building, running, or which output differs and how.
pub fn run_case(
    manager: &dyn BackendManager,
    case: &Case,
    work_dir: &Path,
    rtol: f64,
    atol: f64,
) -> Result<f64, String> {
    let w = wrapper_for(manager, &case.model, work_dir).map_err(|e| format!("build: {e}"))?;
    let mut worst = 0f64;
    for ds in &case.data_sets {
        let outs = w
            .forward(named(w.as_ref(), &ds.inputs))
            .map_err(|e| format!("{}: {e}", ds.dir.display()))?;
        if outs.len() != ds.outputs.len() {
            return Err(format!(
                "{} outputs, expected {}",
                outs.len(),
                ds.outputs.len()
            ));
        }
        for ((name, got), want) in outs.iter().zip(&ds.outputs) {
            worst = worst.max(
                compare(got, want, rtol, atol)
                    .map_err(|e| format!("{}: output '{name}': {e}", ds.dir.display()))?,
            );
        }
    }
    Ok(worst)
}

/// The ONNX backend-test suite: every case not in `skip` must match its expected outputs within
/// `rtol`/`atol`, and at least `min_passing` cases must run.
///
/// # Panics
/// Listing every failing case.
pub fn onnx_backend_suite(
    manager: &dyn BackendManager,
    skip: &[(&str, &str)],
    rtol: f64,
    atol: f64,
    min_passing: usize,
) {
    let work = std::env::temp_dir().join(format!(
        "rdeploy-conformance-{}-{}",
        manager.name(),
        std::process::id()
    ));
    std::fs::create_dir_all(&work).unwrap();
    let mut failures = Vec::new();
    let mut passed = 0;
    for case in onnx_backend_cases() {
        if let Some((_, why)) = skip.iter().find(|(n, _)| *n == case.name) {
            eprintln!("{}: {} skipped: {why}", manager.name(), case.name);
            continue;
        }
        match run_case(manager, &case, &work, rtol, atol) {
            Ok(worst) => {
                passed += 1;
                eprintln!(
                    "{}: {} ok (max |diff| {worst:e})",
                    manager.name(),
                    case.name
                );
            }
            Err(e) => failures.push(format!("{}: {e}", case.name)),
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    assert!(
        failures.is_empty(),
        "{} cases failed on {}:\n{}",
        failures.len(),
        manager.name(),
        failures.join("\n")
    );
    assert!(
        passed >= min_passing,
        "only {passed} cases ran on {}, need {min_passing}",
        manager.name()
    );
}

/// Wrong input name, dtype, rank, fixed dim, and a missing input each give their own error
/// naming the input, from `forward`, before the engine runs.
pub fn forward_rejects_bad_inputs(manager: &dyn BackendManager) {
    let case = cnn_case();
    let work = tempdir(manager.name(), "bad-inputs");
    let w = wrapper_for(manager, &case.model, &work).unwrap();
    let x = case.data_sets[0].inputs[0].clone();
    let err = |inputs: NamedTensors| w.forward(inputs).unwrap_err().to_string();
    let e = err(vec![("nope".into(), x.clone())]);
    assert!(e.contains("'nope'") && e.contains("image"), "{e}");
    let e = err(vec![]);
    assert!(e.contains("'image'") && e.contains("missing"), "{e}");
    let e = err(vec![(
        "image".into(),
        x.cast(DType::F64, rdeploy_core::Cast::Unchecked).unwrap(),
    )]);
    assert!(
        e.contains("'image'") && e.contains("f32") && e.contains("f64"),
        "{e}"
    );
    let e = err(vec![(
        "image".into(),
        Tensor::zeros(DType::F32, &[2, 3, 32]),
    )]);
    // Backends whose own format drops dim names (OpenVINO IR) show the dim as `?`.
    assert!(
        e.contains("'image'") && (e.contains("[batch, 3, 32, 32]") || e.contains("[?, 3, 32, 32]")),
        "{e}"
    );
    let e = err(vec![(
        "image".into(),
        Tensor::zeros(DType::F32, &[2, 4, 32, 32]),
    )]);
    assert!(e.contains("'image'") && e.contains("[2, 4, 32, 32]"), "{e}");
    let _ = std::fs::remove_dir_all(&work);
}

/// A device the backend does not support is an error naming the device, never a silent
/// fallback.
pub fn unsupported_device_is_an_error(manager: &dyn BackendManager, device: &str) {
    let case = cnn_case();
    let d: Device = device.parse().unwrap();
    let cfg = DeployConfig::empty();
    let e = manager
        .build_wrapper(std::slice::from_ref(&case.model), &d, &[], &[], &cfg)
        .err()
        .expect("must fail")
        .to_string();
    assert!(e.contains(device), "{e}");
}

/// `forward` from 4 threads at once on one wrapper gives the same outputs as serial calls.
pub fn concurrent_forward_matches_serial(manager: &dyn BackendManager) {
    let case = cnn_case();
    let work = tempdir(manager.name(), "concurrent");
    let w: Arc<dyn Wrapper> = Arc::from(wrapper_for(manager, &case.model, &work).unwrap());
    let inputs: Vec<Tensor> = (0..4)
        .map(|i| {
            let x = case.data_sets[0].inputs[0].clone();
            let v: Vec<f32> = x
                .as_slice::<f32>()
                .unwrap()
                .iter()
                .map(|v| v * (1.0 + i as f32 * 0.25))
                .collect();
            Tensor::from_shape_vec(x.shape(), v).unwrap()
        })
        .collect();
    let serial: Vec<NamedTensors> = inputs
        .iter()
        .map(|x| w.forward(vec![("image".into(), x.clone())]).unwrap())
        .collect();
    let handles: Vec<_> = inputs
        .into_iter()
        .map(|x| {
            let w = w.clone();
            std::thread::spawn(move || {
                (0..5)
                    .map(|_| w.forward(vec![("image".into(), x.clone())]).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for (h, want) in handles.into_iter().zip(serial) {
        for got in h.join().unwrap() {
            assert_eq!(got, want);
        }
    }
    let _ = std::fs::remove_dir_all(&work);
}

/// A dynamic batch: the same model runs at batch 1, 2 and 5, and each row equals the row run
/// alone.
pub fn dynamic_batch_is_consistent(manager: &dyn BackendManager) {
    let case = cnn_case();
    let work = tempdir(manager.name(), "dynbatch");
    let w = wrapper_for(manager, &case.model, &work).unwrap();
    let x = case.data_sets[0].inputs[0].clone();
    let row = |i: usize| {
        let s = x.as_slice::<f32>().unwrap();
        let n = s.len() / x.shape()[0];
        s[i * n..(i + 1) * n].to_vec()
    };
    let alone: Vec<Tensor> = (0..2)
        .map(|i| {
            let t = Tensor::from_shape_vec(&[1, 3, 32, 32], row(i)).unwrap();
            w.forward(vec![("image".into(), t)]).unwrap().remove(0).1
        })
        .collect();
    let mut five = Vec::new();
    for i in [0, 1, 0, 1, 1] {
        five.extend(row(i));
    }
    let out = w
        .forward(vec![(
            "image".into(),
            Tensor::from_shape_vec(&[5, 3, 32, 32], five).unwrap(),
        )])
        .unwrap();
    let y = out[0].1.as_slice::<f32>().unwrap();
    assert_eq!(out[0].1.shape(), &[5, 10]);
    for (k, i) in [0, 1, 0, 1, 1].into_iter().enumerate() {
        let want = alone[i].as_slice::<f32>().unwrap();
        for (a, b) in y[k * 10..(k + 1) * 10].iter().zip(want) {
            assert!(
                (a - b).abs() <= 1e-5 + 1e-4 * b.abs(),
                "row {k}: {a} vs {b}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&work);
}

/// A fresh scratch folder for one test.
pub fn tempdir(backend: &str, what: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rdeploy-{backend}-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The Python that writes ONNX's node cases: `$VIRTUAL_ENV/bin/python`, else `python3`.
pub fn python() -> PathBuf {
    match std::env::var_os("VIRTUAL_ENV") {
        Some(v) => Path::new(&v).join("bin/python"),
        None => PathBuf::from("python3"),
    }
}

/// Writes ONNX's own node test cases whose inputs or outputs are strings, bfloat16, float8,
/// float8e8m0, int4, uint4, float4e2m1, int2 or uint2 into `dir` (by `dtype_cases.py`, with the `onnx`
/// package); returns their names.
///
/// # Panics
/// When the Python or its `onnx` package is missing (the message says what to set).
pub fn write_dtype_cases(dir: &Path) -> Vec<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("dtype_cases.py");
    let out = std::process::Command::new(python())
        .arg(&script)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}); set VIRTUAL_ENV to a Python environment with the onnx package",
                python().display()
            )
        });
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Tolerance for a node case's output: exact for casts and quantization (their results are
/// exact), integers, booleans and strings; for computed floats a few steps of the last bit.
pub fn dtype_case_tolerance(d: DType, case: &str) -> (f64, f64) {
    let computed = !case.starts_with("test_cast") && !case.contains("quantizelinear");
    match d {
        _ if !computed => (0.0, 0.0),
        DType::F32 | DType::F64 => (1e-3, 1e-4),
        DType::F16 => (1e-2, 1e-3),
        DType::BF16 => (2e-2, 2e-2),
        _ => (0.0, 0.0),
    }
}

/// What [`dtype_suite`] found.
#[derive(Debug, Default)]
pub struct DtypeSuite {
    /// Cases whose outputs matched ONNX's.
    pub passed: Vec<String>,
    /// Cases the engine refused to load or compile, with its message.
    pub refused: Vec<String>,
    /// Cases that ran and gave other outputs than ONNX's, or failed after loading.
    pub failed: Vec<String>,
}

/// Runs every case of [`write_dtype_cases`] on `manager` and sorts them into matched, refused
/// by the engine (the model does not build: an operator or type the engine lacks) and failed.
pub fn dtype_suite(manager: &dyn BackendManager) -> DtypeSuite {
    let dir = tempdir(manager.name(), "dtypes");
    let names = write_dtype_cases(&dir);
    assert!(names.len() > 100, "only {} cases were written", names.len());
    let mut r = DtypeSuite::default();
    for name in names {
        let case = load_case(&dir.join(&name));
        let out_dtype = case.data_sets[0].outputs[0].dtype();
        let (rtol, atol) = dtype_case_tolerance(out_dtype, &name);
        let work = dir.join(format!("{name}-work"));
        std::fs::create_dir_all(&work).unwrap();
        match run_case(manager, &case, &work, rtol, atol) {
            Ok(_) => r.passed.push(name),
            Err(e) if e.starts_with("build: ") => r.refused.push(format!("{name}: {e}")),
            Err(e) => r.failed.push(format!("{name}: {e}")),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "{}: {} matched: {}",
        manager.name(),
        r.passed.len(),
        r.passed.join(" ")
    );
    r
}
