//! rdeploy's ONNX Runtime wrapper against bare `ort` on the same library, model, input and
//! thread count: the cost of rdeploy's layer (input validation, ordering, output copy).
//!
//! Models come from `scripts/make-bench-models.py` (target/bench-models, or
//! `RDEPLOY_BENCH_MODELS`); threads from `RDEPLOY_BENCH_THREADS` (default 2).
//! `scripts/bench-ort.sh` runs this and Python onnxruntime side by side.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "benchmark code"
)]

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ort::session::Session;
use ort::value::TensorRef;
use rdeploy_backend_ort::OrtBackend;
use rdeploy_core::{BackendManager, DType, DeployConfig, Device, Tensor};
use std::path::PathBuf;

fn models_dir() -> PathBuf {
    std::env::var_os("RDEPLOY_BENCH_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-models")
        })
}

fn threads() -> usize {
    std::env::var("RDEPLOY_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

fn bench_model(c: &mut Criterion, file: &str, shape: &[usize]) {
    let path = models_dir().join(file);
    assert!(
        path.exists(),
        "{} missing: run scripts/make-bench-models.py",
        path.display()
    );
    let n = threads();
    let cfg = DeployConfig(serde_json::json!({"backend_config": {"type": "onnxruntime",
        "common_config": {"intra_op_num_threads": n, "inter_op_num_threads": 1}}}));
    let wrapper = OrtBackend
        .build_wrapper(std::slice::from_ref(&path), &Device::cpu(), &[], &[], &cfg)
        .unwrap();
    let input_name = wrapper.inputs()[0].name.clone();
    let output_name = wrapper.outputs()[0].name.clone();
    let count: usize = shape.iter().product();
    let data: Vec<f32> = (0..count)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
        .collect();
    let x = Tensor::from_shape_vec(shape, data.clone()).unwrap();
    assert_eq!(x.dtype(), DType::F32);

    let env = rdeploy_backend_ort::environment().unwrap();
    let mut bare = Session::builder(env)
        .unwrap()
        .with_intra_threads(n)
        .unwrap()
        .with_inter_threads(1)
        .unwrap()
        .commit_from_file(&path)
        .unwrap();

    let mut g = c.benchmark_group(format!("{}_b{}", file.trim_end_matches(".onnx"), shape[0]));
    g.bench_function("rdeploy_forward", |b| {
        b.iter_batched(
            || vec![(input_name.clone(), x.clone())],
            |inputs| wrapper.forward(inputs).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("bare_ort_run", |b| {
        b.iter(|| {
            let t = TensorRef::from_array_view((shape.to_vec(), data.as_slice())).unwrap();
            let outs = bare.run(ort::inputs![input_name.as_str() => t]).unwrap();
            let (_, y) = outs[output_name.as_str()]
                .try_extract_tensor::<f32>()
                .unwrap();
            std::hint::black_box(y[0]);
        })
    });
    g.bench_function("bare_ort_run_fresh_input", |b| {
        b.iter_batched(
            || data.clone(),
            |d| {
                let t = TensorRef::from_array_view((shape.to_vec(), d.as_slice())).unwrap();
                let outs = bare.run(ort::inputs![input_name.as_str() => t]).unwrap();
                let (_, y) = outs[output_name.as_str()]
                    .try_extract_tensor::<f32>()
                    .unwrap();
                std::hint::black_box(y[0]);
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    if OrtBackend.check().is_err() {
        eprintln!("ONNX Runtime not found: {}", OrtBackend.check_env_line());
        return;
    }
    bench_model(c, "tiny.onnx", &[1, 3, 32, 32]);
    bench_model(c, "resnet18.onnx", &[1, 3, 224, 224]);
}

criterion_group! {
    name = overhead;
    config = Criterion::default().sample_size(30).warm_up_time(std::time::Duration::from_secs(2));
    targets = benches
}
criterion_main!(overhead);
