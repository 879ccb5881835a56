//! Hostile and odd inputs to the graph passes, one test per failure class found by trying to
//! break them: each must end in a correct result or a clear error, never a panic, an abort, a
//! model no engine loads, or a silently wrong number. References: numpy-style definitions
//! written here, and ONNX Runtime on the original model.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

mod common;

use common::{fixed, model, ramp};
use rdeploy_conformance as conf;
use rdeploy_core::onnx::proto::OperatorSetIdProto;
use rdeploy_core::{Dim, Tensor};
use rdeploy_onnx::build::tensor_value_info;
use rdeploy_onnx::node;
use std::path::Path;

fn save(m: &rdeploy_core::onnx::proto::ModelProto, work: &Path, name: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(work).unwrap();
    let p = work.join(name);
    rdeploy_core::onnx::save(m, &p).unwrap();
    p
}

/// `y = Relu(x)`, `x: [2]`, opset 13.
fn relu_model() -> rdeploy_core::onnx::proto::ModelProto {
    model(
        13,
        vec![node::node("Relu", "", &["x"], &["y"], vec![])],
        &[Dim::Fixed(2)],
        vec![],
    )
}

fn deploy_err(backend: &str, path: &Path, dir: &Path, extra: serde_json::Value) -> String {
    match common::deploy(
        backend,
        path,
        dir,
        extra,
        &rdeploy::DeployOptions::default(),
    ) {
        Ok(_) => panic!("{backend}: {} deployed but should not have", path.display()),
        Err(e) => e,
    }
}

/// Opset-6 `Add(broadcast=1, axis=0)` whose B is a graph input: the upgrade writes the
/// target opset's `Unsqueeze` form, and the result matches the old definition.
#[test]
fn old_broadcast_with_a_runtime_b_upgrades_to_a_valid_model() {
    let work = conf::tempdir("all", "old-broadcast");
    let mut m = model(
        6,
        vec![node::node(
            "Add",
            "",
            &["x", "b"],
            &["y"],
            vec![node::int("broadcast", 1), node::int("axis", 0)],
        )],
        &fixed(&[2, 3]),
        vec![],
    );
    m.graph
        .as_mut()
        .unwrap()
        .input
        .push(tensor_value_info("b", 1, Some(&fixed(&[2]))));
    let path = save(&m, &work, "m.onnx");
    let x = ramp(&[2, 3]);
    let b = Tensor::from_shape_vec(&[2], vec![10f32, 20.]).unwrap();
    // B aligned at axis 0: y[i, j] = x[i, j] + b[i].
    let want: Vec<f32> = x
        .as_slice::<f32>()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(k, v)| v + [10f32, 20.][k / 3])
        .collect();
    let want = Tensor::from_shape_vec(&[2, 3], want).unwrap();
    for backend in ["tract", "onnxruntime"] {
        let (_, w) = common::deploy(
            backend,
            &path,
            &work.join(backend),
            serde_json::json!({}),
            &rdeploy::DeployOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{backend}: {e}"));
        let y = w
            .forward(vec![("x".into(), x.clone()), ("b".into(), b.clone())])
            .unwrap()
            .remove(0)
            .1;
        conf::compare(&y, &want, 0.0, 0.0).unwrap_or_else(|e| panic!("{backend}: {e}"));
    }
    let _ = std::fs::remove_dir_all(&work);
}

/// Forms the upgrade cannot carry over are refused naming the node and the reason.
#[test]
fn unupgradable_forms_are_refused_clearly() {
    let work = conf::tempdir("onnxruntime", "unupgradable");
    // PRelu with a per-channel slope on an input of unknown rank.
    let mut prelu = model(
        6,
        vec![node::node("PRelu", "p", &["x", "s"], &["y"], vec![])],
        &fixed(&[2, 3, 4]),
        vec![rdeploy_core::onnx::tensor_to_proto(
            "s",
            &Tensor::from_shape_vec(&[3], vec![0.1f32, 0.2, 0.3]).unwrap(),
        )],
    );
    prelu.graph.as_mut().unwrap().input[0] = tensor_value_info("x", 1, None);
    let p = save(&prelu, &work, "prelu.onnx");
    let e = deploy_err("onnxruntime", &p, &work.join("a"), serde_json::json!({}));
    assert!(e.contains("PRelu node 'p'") && e.contains("rank"), "{e}");
    // BatchNormalization with spatial=0, whatever the target.
    let bn = model(
        6,
        vec![node::node(
            "BatchNormalization",
            "bn",
            &["x", "s", "s", "s", "s"],
            &["y"],
            vec![node::int("spatial", 0)],
        )],
        &fixed(&[1, 3, 2, 2]),
        vec![rdeploy_core::onnx::tensor_to_proto(
            "s",
            &Tensor::from_shape_vec(&[3], vec![1f32; 3]).unwrap(),
        )],
    );
    let p = save(&bn, &work, "bn.onnx");
    for target in [8, 13] {
        let e = deploy_err(
            "onnxruntime",
            &p,
            &work.join(format!("bn{target}")),
            serde_json::json!({"rewrite_config": {"opset_upgrade": {"target": target}}}),
        );
        assert!(e.contains("spatial=0"), "{e}");
    }
    // An opset of 0 or below has no meaning.
    let mut zero = model(
        6,
        vec![node::node("Relu", "", &["x"], &["y"], vec![])],
        &fixed(&[2]),
        vec![],
    );
    zero.opset_import = vec![OperatorSetIdProto {
        domain: Some(String::new()),
        version: Some(0),
    }];
    let p = save(&zero, &work, "zero.onnx");
    let e = deploy_err("onnxruntime", &p, &work.join("z"), serde_json::json!({}));
    assert!(e.contains("opset 0"), "{e}");
    let _ = std::fs::remove_dir_all(&work);
}

/// A model upgraded to opset 18 or later keeps an even `Split` valid (`num_outputs`), and an
/// opset-6 `Dropout` whose mask is read keeps the mask's type.
#[test]
fn upgrades_past_later_changes_stay_loadable() {
    let work = conf::tempdir("onnxruntime", "later-changes");
    let split = model(
        11,
        vec![
            node::node(
                "Split",
                "s",
                &["x"],
                &["a", "b"],
                vec![node::int("axis", 1)],
            ),
            node::node("Sub", "", &["a", "b"], &["y"], vec![]),
        ],
        &fixed(&[2, 4]),
        vec![],
    );
    let p = save(&split, &work, "split.onnx");
    let x = ramp(&[2, 4]);
    let xs = x.as_slice::<f32>().unwrap();
    let want = Tensor::from_shape_vec(
        &[2, 2],
        vec![xs[0] - xs[2], xs[1] - xs[3], xs[4] - xs[6], xs[5] - xs[7]],
    )
    .unwrap();
    for target in [13, 18, 20] {
        let (_, w) = common::deploy(
            "onnxruntime",
            &p,
            &work.join(format!("t{target}")),
            serde_json::json!({"rewrite_config": {"opset_upgrade": {"target": target}}}),
            &rdeploy::DeployOptions::default(),
        )
        .unwrap_or_else(|e| panic!("target {target}: {e}"));
        let y = w
            .forward(vec![("x".into(), x.clone())])
            .unwrap()
            .remove(0)
            .1;
        conf::compare(&y, &want, 0.0, 0.0).unwrap();
    }
    // y = x * mask: the inference-mode mask is all ones.
    let dropout = model(
        6,
        vec![
            node::node(
                "Dropout",
                "d",
                &["x"],
                &["d", "mask"],
                vec![node::int("is_test", 1)],
            ),
            node::node("Mul", "", &["d", "mask"], &["y"], vec![]),
        ],
        &fixed(&[2, 3]),
        vec![],
    );
    let p = save(&dropout, &work, "dropout.onnx");
    let x = ramp(&[2, 3]);
    for backend in ["tract", "onnxruntime"] {
        let (_, w) = common::deploy(
            backend,
            &p,
            &work.join(format!("d-{backend}")),
            serde_json::json!({}),
            &rdeploy::DeployOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{backend}: {e}"));
        let y = w
            .forward(vec![("x".into(), x.clone())])
            .unwrap()
            .remove(0)
            .1;
        conf::compare(&y, &x, 0.0, 0.0).unwrap_or_else(|e| panic!("{backend}: {e}"));
    }
    let _ = std::fs::remove_dir_all(&work);
}

/// Shape arithmetic near the integer limits is left to the engine, not folded with an
/// overflow: `simplify` never panics.
#[test]
fn simplify_does_not_overflow() {
    let work = conf::tempdir("all", "simplify-overflow");
    let i64s = |name: &str, v: &[i64]| common::i64s(name, v);
    let cases = [
        (
            "div",
            vec![
                node::node("Div", "", &["min", "neg1"], &["q"], vec![]),
                node::node("Shape", "", &["x"], &["s"], vec![]),
                node::node("Add", "", &["q", "s"], &["z"], vec![]),
                node::node("Identity", "", &["x"], &["y"], vec![]),
            ],
            vec![i64s("min", &[i64::MIN]), i64s("neg1", &[-1])],
        ),
        (
            "range",
            vec![
                node::node("Range", "", &["a", "b", "c"], &["r"], vec![]),
                node::node("Identity", "", &["x"], &["y"], vec![]),
            ],
            vec![
                i64s("a", &[i64::MAX - 1]),
                i64s("b", &[i64::MIN]),
                i64s("c", &[-(1 << 62)]),
            ],
        ),
    ];
    for (name, nodes, inits) in cases {
        let mut m = model(13, nodes, &fixed(&[2]), inits);
        // The scalars of Range as 0-d tensors.
        if name == "range" {
            for t in &mut m.graph.as_mut().unwrap().initializer {
                t.dims.clear();
            }
        }
        let p = save(&m, &work, &format!("{name}.onnx"));
        let cfg = rdeploy_core::DeployConfig::empty();
        let cx = rdeploy_onnx::PassContext {
            model_path: &p,
            deploy_cfg: &cfg,
        };
        let mut mm = m.clone();
        use rdeploy_onnx::Pass;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rdeploy_onnx::SimplifyPass.run(&mut mm, &cx)
        }));
        assert!(r.is_ok(), "{name}: simplify panicked");
    }
    let _ = std::fs::remove_dir_all(&work);
}

/// A model whose value would not fit in memory is refused at deploy by tract, naming the node,
/// instead of tract aborting the process on the allocation.
#[test]
fn tract_refuses_values_larger_than_memory() {
    let work = conf::tempdir("tract", "huge-resize");
    let m = model(
        13,
        vec![node::node(
            "Resize",
            "up",
            &["x", "", "scales"],
            &["y"],
            vec![node::string("mode", "nearest")],
        )],
        &fixed(&[1, 1, 3, 4]),
        vec![rdeploy_core::onnx::tensor_to_proto(
            "scales",
            &Tensor::from_shape_vec(&[4], vec![1f32, 1., 1e9, 1e9]).unwrap(),
        )],
    );
    let p = save(&m, &work, "m.onnx");
    let e = deploy_err("tract", &p, &work.join("w"), serde_json::json!({}));
    assert!(e.contains("'up'") && e.contains("memory"), "{e}");
    let _ = std::fs::remove_dir_all(&work);
}

/// Misspelt `rewrite_config` keys are errors naming them, not silently ignored.
#[test]
fn rewrite_config_typos_are_errors() {
    let work = conf::tempdir("tract", "typos");
    let p = save(&relu_model(), &work, "m.onnx");
    for (cfg, key) in [
        (
            serde_json::json!({"disabled": ["simplify"]}),
            "rewrite_config.disabled",
        ),
        (
            serde_json::json!({"opset_upgrade": {"targt": 17}}),
            "rewrite_config.opset_upgrade.targt",
        ),
        (
            serde_json::json!({"opset_upgrade": 17}),
            "rewrite_config.opset_upgrade",
        ),
        (
            serde_json::json!({"enable": ["no_such_rule"]}),
            "rewrite_config",
        ),
    ] {
        let e = deploy_err(
            "tract",
            &p,
            &work.join("w"),
            serde_json::json!({ "rewrite_config": cfg }),
        );
        assert!(e.contains(key), "{e}");
    }
    let _ = std::fs::remove_dir_all(&work);
}

/// A different set of passes (a third party's rule added) is a different deploy: the work dir
/// is not reused.
#[test]
fn the_passes_that_run_are_part_of_the_work_dirs_identity() {
    let work = conf::tempdir("tract", "pass-identity");
    let p = save(&relu_model(), &work, "m.onnx");
    let dir = work.join("w");
    let plain = rdeploy::DeployOptions::default();
    let (first, _) = common::deploy("tract", &p, &dir, serde_json::json!({}), &plain).unwrap();
    assert!(!first.reused);
    let (again, _) = common::deploy("tract", &p, &dir, serde_json::json!({}), &plain).unwrap();
    assert!(again.reused);
    struct Nothing;
    impl rdeploy::Rewrite for Nothing {
        fn name(&self) -> &str {
            "nothing"
        }
        fn pattern(&self) -> rdeploy::passes::Pattern {
            rdeploy::passes::Pattern::op("Relu")
        }
        fn description(&self) -> &str {
            "declines every node"
        }
        fn rewrite(
            &self,
            _: &rdeploy_core::onnx::proto::NodeProto,
            _: &mut rdeploy::passes::RewriteCx<'_>,
        ) -> rdeploy::Result<Option<Vec<rdeploy_core::onnx::proto::NodeProto>>> {
            Ok(None)
        }
    }
    let mut rewrites = rdeploy::RewriteRegistry::builtin();
    rewrites.register(std::sync::Arc::new(Nothing));
    let with = rdeploy::DeployOptions {
        rewrites: Some(&rewrites),
        ..Default::default()
    };
    let (third, _) = common::deploy("tract", &p, &dir, serde_json::json!({}), &with).unwrap();
    assert!(!third.reused, "a new rule must make a new deploy");
    let _ = std::fs::remove_dir_all(&work);
}

/// OpenVINO hands back an empty output (NMS that keeps nothing) as an empty tensor; reading it
/// used to abort the process.
#[test]
fn openvino_empty_outputs_are_empty_tensors() {
    let ov = rdeploy_backend_openvino::OpenVinoBackend;
    if !conf::backend_under_test(&ov) {
        return;
    }
    let case = conf::test_data_dir().join("custom-ops/nms_rotated/model.onnx");
    let work = conf::tempdir("openvino", "empty-output");
    let (_, w) = common::deploy(
        "openvino",
        &case,
        &work.join("w"),
        serde_json::json!({}),
        &rdeploy::DeployOptions::default(),
    )
    .unwrap();
    // Scores all below any threshold: nothing is kept.
    let inputs: Vec<(String, Tensor)> = w
        .inputs()
        .iter()
        .map(|s| {
            let shape: Vec<usize> = s
                .shape
                .as_ref()
                .unwrap()
                .iter()
                .map(|d| d.fixed().unwrap() as usize)
                .collect();
            (
                s.name.clone(),
                Tensor::zeros(rdeploy_core::DType::F32, &shape),
            )
        })
        .collect();
    let out = w.forward(inputs).unwrap();
    assert_eq!(out[0].1.shape()[0], 0, "{:?}", out[0].1.shape());
    let _ = std::fs::remove_dir_all(&work);
}
