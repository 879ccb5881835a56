//! Every single-op case of `tests/data/generated/custom-ops` (written by
//! scripts/make_custom_op_models.py from numpy references independent of this crate) whose op
//! this crate implements: the node's own ONNX attributes build the kernel, the case's inputs (and
//! the graph's initializers) feed it, and the outputs must match within the case's tolerances.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use rdeploy_conformance::{compare, load_case, test_data_dir};
use rdeploy_core::Tensor;
use rdeploy_core::onnx::proto::attribute_proto::AttributeType;
use rdeploy_core::onnx::proto::{AttributeProto, NodeProto};
use rdeploy_ops::Attributes;
use std::collections::{BTreeSet, HashMap};

/// A node's attributes, read the way an engine adapter reads them: by name and type.
struct NodeAttributes<'a>(&'a NodeProto);

impl NodeAttributes<'_> {
    fn get(&self, name: &str, ty: AttributeType) -> Option<&AttributeProto> {
        self.0
            .attribute
            .iter()
            .find(|a| a.name.as_deref() == Some(name) && a.r#type == Some(ty as i32))
    }
}

impl Attributes for NodeAttributes<'_> {
    fn int(&self, name: &str) -> Option<i64> {
        self.get(name, AttributeType::Int)?.i
    }
    fn float(&self, name: &str) -> Option<f32> {
        self.get(name, AttributeType::Float)?.f
    }
    fn ints(&self, name: &str) -> Option<Vec<i64>> {
        Some(self.get(name, AttributeType::Ints)?.ints.clone())
    }
    fn floats(&self, name: &str) -> Option<Vec<f32>> {
        Some(self.get(name, AttributeType::Floats)?.floats.clone())
    }
    fn string(&self, name: &str) -> Option<String> {
        String::from_utf8(self.get(name, AttributeType::String)?.s.clone()?).ok()
    }
}

/// (rtol, atol) from the case's meta.json, without a JSON parser: the two numbers follow their
/// keys on their own lines.
fn tolerances(meta: &str) -> (f64, f64) {
    let num = |key: &str| -> f64 {
        let at = meta.find(&format!("\"{key}\":")).expect(key) + key.len() + 3;
        let rest = &meta[at..];
        let end = rest.find([',', '\n', '}']).unwrap();
        rest[..end].trim().parse().unwrap()
    };
    (num("rtol"), num("atol"))
}

#[test]
fn kernels_match_the_numpy_references() {
    let root = test_data_dir().join("custom-ops");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}; prepare the test data", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.onnx").exists())
        .collect();
    dirs.sort();
    let mut covered = BTreeSet::new();
    let mut checked = 0;
    for dir in &dirs {
        let model = rdeploy_core::onnx::load(&dir.join("model.onnx")).unwrap();
        let graph = model.graph.as_ref().unwrap();
        let [node] = graph.node.as_slice() else {
            continue; // a graph mixing standard ops: the engine backends' business
        };
        let (domain, op_type) = (
            node.domain.as_deref().unwrap_or(""),
            node.op_type.as_deref().unwrap_or(""),
        );
        // Every single-op case of the generator is an op rdeploy provides: a case without a
        // kernel is a failure, not a skip.
        let def = rdeploy_ops::find(domain, op_type).unwrap_or_else(|| {
            panic!(
                "{}: {domain}::{op_type} has a reference case but no kernel in rdeploy-ops",
                dir.display()
            )
        });
        let kernel = (def.build)(&NodeAttributes(node))
            .unwrap_or_else(|e| panic!("{}: {}", dir.display(), e.report()));
        let case = load_case(dir);
        let meta = std::fs::read_to_string(dir.join("meta.json")).unwrap();
        let (rtol, atol) = tolerances(&meta);
        let initializers: HashMap<&str, Tensor> = graph
            .initializer
            .iter()
            .map(|t| {
                (
                    t.name.as_deref().unwrap_or(""),
                    rdeploy_core::onnx::tensor_from_proto(t).unwrap(),
                )
            })
            .collect();
        for set in &case.data_sets {
            let by_name: HashMap<&str, &Tensor> = graph
                .input
                .iter()
                .filter_map(|i| i.name.as_deref())
                .zip(&set.inputs)
                .chain(initializers.iter().map(|(k, v)| (*k, v)))
                .collect();
            let inputs: Vec<Option<&Tensor>> = node
                .input
                .iter()
                .map(|n| {
                    if n.is_empty() {
                        None
                    } else {
                        Some(by_name[n.as_str()])
                    }
                })
                .collect();
            let outs = kernel
                .compute(&inputs)
                .unwrap_or_else(|e| panic!("{}: {}", set.dir.display(), e.report()));
            assert_eq!(outs.len(), set.outputs.len(), "{}", dir.display());
            for (i, (got, want)) in outs.iter().zip(&set.outputs).enumerate() {
                // Tolerances are the case's own (meta.json), numpy's allclose rule.
                if let Err(e) = compare(got, want, rtol, atol) {
                    panic!("{} output {i}: {e}", set.dir.display());
                }
            }
            checked += 1;
        }
        covered.insert(def.op_type);
    }
    let implemented: BTreeSet<&str> = rdeploy_ops::all().iter().map(|d| d.op_type).collect();
    assert_eq!(
        covered, implemented,
        "every op has at least one reference case"
    );
    assert!(checked >= implemented.len());
    eprintln!("{checked} data sets match their references");
}
