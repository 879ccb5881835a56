//! Loading a typical MMDeploy deploy config: classification_onnxruntime_dynamic.py inherits
//! classification_dynamic.py -> classification_static.py -> _base_/onnx_config.py, and
//! _base_/backends/onnxruntime.py (5 files, 3 levels). Target: under 1 ms.

#![allow(clippy::unwrap_used, missing_docs, reason = "benchmark code")]

use criterion::{Criterion, criterion_group, criterion_main};
use std::path::Path;

fn load(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cfg = root.join("configs/mmpretrain/classification_onnxruntime_dynamic.py");
    c.bench_function("load_classification_onnxruntime_dynamic", |b| {
        b.iter(|| {
            let c = rdeploy_config::Config::from_file(&cfg).unwrap();
            std::hint::black_box(c.onnx_config().unwrap());
        })
    });
    let literals = root.join("tests/data/configs/literals.py");
    c.bench_function("load_literals_corpus_file", |b| {
        b.iter(|| rdeploy_config::Config::from_file(&literals).unwrap())
    });
}

criterion_group!(benches, load);
criterion_main!(benches);
