//! Graph rewrites through the deploy pipeline, each checked against ONNX Runtime running the
//! original model directly (no rdeploy pass): `simplify` folds shape subgraphs and removes dead
//! nodes; `decompose_lp_pool` / `decompose_center_crop_pad` make ops tract lacks run there.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

mod common;

use rdeploy_conformance as conf;
use rdeploy_core::onnx::proto::NodeProto;
use rdeploy_core::{BackendManager, Dim, Tensor};
use rdeploy_onnx::node;
use std::path::Path;

use common::{i64s, model, ramp};

/// ONNX Runtime on the original file (no passes): the reference.
fn reference(path: &Path, work: &Path, x: &Tensor) -> Option<Tensor> {
    let ort = rdeploy_backend_ort::OrtBackend;
    if !conf::backend_under_test(&ort) {
        return None;
    }
    let w = conf::wrapper_for(&ort, path, &work.join("ref")).unwrap();
    Some(
        w.forward(vec![("x".into(), x.clone())])
            .unwrap()
            .remove(0)
            .1,
    )
}

/// Deploys with `cfg_extra` merged into the config; returns the output and the deployed
/// graph's op types (of the file the passes wrote).
fn deployed(
    backend: &dyn BackendManager,
    path: &Path,
    work: &Path,
    cfg_extra: serde_json::Value,
    x: &Tensor,
) -> (Tensor, Vec<String>) {
    let dir = work.join(backend.name());
    let (_, w) = common::deploy(
        backend.name(),
        path,
        &dir,
        cfg_extra,
        &rdeploy::DeployOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", backend.name()));
    let y = w
        .forward(vec![("x".into(), x.clone())])
        .unwrap()
        .remove(0)
        .1;
    let onnx_file = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .max_by_key(|p| p.to_string_lossy().len())
        .unwrap();
    let m = rdeploy_core::onnx::load(&onnx_file).unwrap();
    let ops = m
        .graph
        .unwrap()
        .node
        .iter()
        .map(|n| n.op_type().to_string())
        .collect();
    (y, ops)
}

#[test]
fn simplify_folds_a_shape_chain_and_keeps_the_result() {
    // y = Reshape(x, Concat(Gather(Shape(x), 0), Mul(Gather(Shape(x), 1), Gather(Shape(x), 2))))
    // with a dynamic batch: dims 1 and 2 fold, dim 0 stays computed; plus a dead branch.
    let nodes = vec![
        node::node("Shape", "", &["x"], &["s"], vec![]),
        node::node(
            "Gather",
            "",
            &["s", "i0"],
            &["d0"],
            vec![node::int("axis", 0)],
        ),
        node::node(
            "Gather",
            "",
            &["s", "i1"],
            &["d1"],
            vec![node::int("axis", 0)],
        ),
        node::node(
            "Gather",
            "",
            &["s", "i2"],
            &["d2"],
            vec![node::int("axis", 0)],
        ),
        node::node("Mul", "", &["d1", "d2"], &["d12"], vec![]),
        node::node(
            "Concat",
            "",
            &["d0", "d12"],
            &["shape"],
            vec![node::int("axis", 0)],
        ),
        node::node("Reshape", "", &["x", "shape"], &["y"], vec![]),
        node::node("Relu", "", &["x"], &["unused"], vec![]),
    ];
    let dims = [Dim::Symbolic("batch".into()), Dim::Fixed(3), Dim::Fixed(4)];
    let m = model(
        13,
        nodes,
        &dims,
        vec![i64s("i0", &[0]), i64s("i1", &[1]), i64s("i2", &[2])],
    );
    let work = conf::tempdir("all", "simplify");
    std::fs::create_dir_all(&work).unwrap();
    let path = work.join("m.onnx");
    rdeploy_core::onnx::save(&m, &path).unwrap();
    let x = ramp(&[5, 3, 4]);
    let want = reference(&path, &work, &x);
    for b in [
        &rdeploy_backend_tract::TractBackend as &dyn BackendManager,
        &rdeploy_backend_ort::OrtBackend,
    ] {
        if !conf::backend_under_test(b) {
            continue;
        }
        let (y, ops) = deployed(
            b,
            &path,
            &work,
            serde_json::json!({"rewrite_config": {"enable": ["simplify"]}}),
            &x,
        );
        assert_eq!(y.shape(), &[5, 12]);
        if let Some(want) = &want {
            conf::compare(&y, want, 0.0, 0.0).unwrap();
        }
        // The dims-1-and-2 branch and the dead Relu are gone; dim 0 is still computed.
        assert!(!ops.contains(&"Mul".to_string()), "{ops:?}");
        assert!(!ops.contains(&"Relu".to_string()), "{ops:?}");
        assert_eq!(ops.iter().filter(|o| *o == "Gather").count(), 1, "{ops:?}");
    }
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn simplify_folds_everything_for_static_shapes() {
    let nodes = vec![
        node::node("Shape", "", &["x"], &["s"], vec![]),
        node::node("Slice", "", &["s", "st", "en"], &["hw"], vec![]),
        node::node(
            "ReduceProd",
            "",
            &["hw"],
            &["p"],
            vec![node::int("keepdims", 1)],
        ),
        node::node(
            "Gather",
            "",
            &["s", "i0"],
            &["n"],
            vec![node::int("axis", 0)],
        ),
        node::node(
            "Concat",
            "",
            &["n", "hw"],
            &["shape"],
            vec![node::int("axis", 0)],
        ),
        node::node("Reshape", "", &["x", "shape"], &["y"], vec![]),
    ];
    let dims = [Dim::Fixed(2), Dim::Fixed(3), Dim::Fixed(4)];
    let m = model(
        13,
        nodes,
        &dims,
        vec![i64s("i0", &[0]), i64s("st", &[1]), i64s("en", &[3])],
    );
    let work = conf::tempdir("tract", "simplify-static");
    std::fs::create_dir_all(&work).unwrap();
    let path = work.join("m.onnx");
    rdeploy_core::onnx::save(&m, &path).unwrap();
    let x = ramp(&[2, 3, 4]);
    let (y, ops) = deployed(
        &rdeploy_backend_tract::TractBackend,
        &path,
        &work,
        serde_json::json!({"rewrite_config": {"enable": ["simplify"]}}),
        &x,
    );
    // ReduceProd is not folded (not shape arithmetic rdeploy evaluates), so it stays, dead.
    assert_eq!(y.shape(), &[2, 3, 4]);
    conf::compare(&y, &x, 0.0, 0.0).unwrap();
    assert_eq!(
        ops,
        vec!["Reshape".to_string()],
        "everything but the Reshape folds or is dead"
    );
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn lp_pool_runs_on_tract_after_decomposition() {
    let work = conf::tempdir("tract", "lppool");
    std::fs::create_dir_all(&work).unwrap();
    for (p, pads, strides) in [
        (2i64, [0i64, 0, 0, 0], [1i64, 1]),
        (1, [1, 1, 1, 1], [2, 2]),
        (3, [0, 1, 0, 1], [2, 1]),
    ] {
        let n = node::node(
            "LpPool",
            "lp",
            &["x"],
            &["y"],
            vec![
                node::ints("kernel_shape", &[3, 2]),
                node::int("p", p),
                node::ints("pads", &pads),
                node::ints("strides", &strides),
            ],
        );
        let m = model(
            18,
            vec![n],
            &[Dim::Fixed(1), Dim::Fixed(2), Dim::Fixed(6), Dim::Fixed(5)],
            vec![],
        );
        let path = work.join(format!("lp{p}.onnx"));
        rdeploy_core::onnx::save(&m, &path).unwrap();
        let x = ramp(&[1, 2, 6, 5]);
        let (y, ops) = deployed(
            &rdeploy_backend_tract::TractBackend,
            &path,
            &work.join(format!("p{p}")),
            serde_json::json!({}),
            &x,
        );
        assert!(!ops.contains(&"LpPool".to_string()), "{ops:?}");
        if let Some(want) = reference(&path, &work.join(format!("p{p}")), &x) {
            // Pow/exp round-trips: float32 last bits.
            conf::compare(&y, &want, 1e-5, 1e-5).unwrap_or_else(|e| panic!("p={p}: {e}"));
        }
    }
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn center_crop_pad_runs_on_tract_after_decomposition() {
    let work = conf::tempdir("tract", "ccp");
    std::fs::create_dir_all(&work).unwrap();
    // Crop H (7 -> 4), pad W (5 -> 8).
    let n = node::node(
        "CenterCropPad",
        "c",
        &["x", "target"],
        &["y"],
        vec![node::ints("axes", &[2, 3])],
    );
    let m = model(
        18,
        vec![n],
        &[Dim::Fixed(1), Dim::Fixed(2), Dim::Fixed(7), Dim::Fixed(5)],
        vec![i64s("target", &[4, 8])],
    );
    let path = work.join("ccp.onnx");
    rdeploy_core::onnx::save(&m, &path).unwrap();
    let x = ramp(&[1, 2, 7, 5]);
    let (y, ops) = deployed(
        &rdeploy_backend_tract::TractBackend,
        &path,
        &work,
        serde_json::json!({}),
        &x,
    );
    assert!(!ops.contains(&"CenterCropPad".to_string()), "{ops:?}");
    assert_eq!(y.shape(), &[1, 2, 4, 8]);
    if let Some(want) = reference(&path, &work, &x) {
        conf::compare(&y, &want, 0.0, 0.0).unwrap();
    }
    let _ = std::fs::remove_dir_all(&work);
}

/// The example of docs/rewrites.md: a third party's rule, registered through the facade's
/// `DeployOptions::rewrites`, runs for its backend and keeps the output.
#[test]
fn a_third_party_rule_runs_for_its_backend() {
    use rdeploy::passes::{Pattern, Rewrite, RewriteCx};
    struct HardSwishToMul;
    impl Rewrite for HardSwishToMul {
        fn name(&self) -> &str {
            "hard_swish_to_mul"
        }
        fn pattern(&self) -> Pattern {
            Pattern::op("HardSwish").opsets(14..=i64::MAX)
        }
        fn backends(&self) -> &[&str] {
            &["tract"]
        }
        fn description(&self) -> &str {
            "HardSwish -> x * HardSigmoid(x, 1/6, 0.5)"
        }
        fn rewrite(
            &self,
            n: &NodeProto,
            cx: &mut RewriteCx<'_>,
        ) -> rdeploy::Result<Option<Vec<NodeProto>>> {
            let h = cx.fresh("hs");
            Ok(Some(vec![
                node::node(
                    "HardSigmoid",
                    "",
                    &[&n.input[0]],
                    &[&h],
                    vec![node::float("alpha", 1.0 / 6.0), node::float("beta", 0.5)],
                ),
                node::node("Mul", n.name(), &[&n.input[0], &h], &[&n.output[0]], vec![]),
            ]))
        }
    }
    let mut rewrites = rdeploy::RewriteRegistry::builtin();
    rewrites.register(std::sync::Arc::new(HardSwishToMul));
    let work = conf::tempdir("tract", "third-party-rule");
    std::fs::create_dir_all(&work).unwrap();
    let m = model(
        14,
        vec![node::node("HardSwish", "hs", &["x"], &["y"], vec![])],
        &[Dim::Fixed(2), Dim::Fixed(5)],
        vec![],
    );
    let path = work.join("hs.onnx");
    rdeploy_core::onnx::save(&m, &path).unwrap();
    let x = ramp(&[2, 5]);
    let (wd, w) = common::deploy(
        "tract",
        &path,
        &work.join("w"),
        serde_json::json!({}),
        &rdeploy::DeployOptions {
            rewrites: Some(&rewrites),
            ..Default::default()
        },
    )
    .unwrap();
    let rewrite = wd
        .manifest
        .passes
        .iter()
        .find(|p| p.name == "rewrite")
        .unwrap();
    assert_eq!(rewrite.outcome.details["hard_swish_to_mul"], 1);
    let y = w
        .forward(vec![("x".into(), x.clone())])
        .unwrap()
        .remove(0)
        .1;
    // Reference: the definition, x * max(0, min(1, x/6 + 1/2)).
    let want: Vec<f32> = x
        .as_slice::<f32>()
        .unwrap()
        .iter()
        .map(|v| v * (v / 6.0 + 0.5).clamp(0.0, 1.0))
        .collect();
    conf::compare(
        &y,
        &Tensor::from_shape_vec(&[2, 5], want).unwrap(),
        1e-6,
        1e-6,
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(&work);
}
