//! The `fold_batchnorm` pass: a `BatchNormalization` whose input is a `Conv`'s output (read by
//! nothing else), with constant weights and statistics, is folded into that `Conv`: per output
//! channel `m`, with `s = scale[m] / sqrt(var[m] + epsilon)` (ONNX's `BatchNormalization`,
//! inference mode: `y = scale * (x - mean) / sqrt(var + epsilon) + B`),
//! `W'[m, ...] = W[m, ...] * s` and `b'[m] = (b[m] - mean[m]) * s + B[m]`.
//!
//! ONNX Runtime and OpenVINO fold these themselves; tract runs them as an elementwise `Mul` and
//! `Add` over the whole activation (a third of ResNet-50's time, docs/benchmarks.md), so tract
//! asks for this pass. float32 only; a folded Conv gets new weight and bias initializers (the old
//! ones go when nothing else reads them).

use crate::node::{attr_float, attr_int};
use crate::{Pass, PassContext, PassOutcome};
use rdeploy_core::onnx::proto::{GraphProto, ModelProto, TensorProto};
use rdeploy_core::onnx::{tensor_from_proto, tensor_to_proto};
use rdeploy_core::{DType, Result, Tensor};
use std::collections::{HashMap, HashSet};

/// See the module documentation.
#[derive(Clone, Copy, Debug, Default)]
pub struct FoldBatchNormPass;

impl Pass for FoldBatchNormPass {
    fn name(&self) -> &str {
        "fold_batchnorm"
    }

    fn run(&self, model: &mut ModelProto, _cx: &PassContext<'_>) -> Result<PassOutcome> {
        let g = model.graph.get_or_insert_with(Default::default);
        let folded = fold(g);
        let mut out = PassOutcome {
            changed: folded > 0,
            ..Default::default()
        };
        out.details.insert("folded".into(), folded.into());
        Ok(out)
    }
}

/// A float32 initializer's shape and values.
fn f32s(t: &TensorProto) -> Option<(Vec<usize>, Vec<f32>)> {
    let t = tensor_from_proto(t).ok()?;
    if t.dtype() != DType::F32 {
        return None;
    }
    Some((t.shape().to_vec(), t.as_slice::<f32>().ok()?.to_vec()))
}

/// One fold to make: (conv index, batchnorm index, weight name, bias name, output name).
type Fold = (usize, usize, String, String, String);

/// Folds every eligible pair in `g` (not in subgraphs); returns how many.
fn fold(g: &mut GraphProto) -> usize {
    let mut uses: HashMap<String, usize> = HashMap::new();
    for n in &g.node {
        for i in &n.input {
            *uses.entry(i.clone()).or_default() += 1;
        }
    }
    for o in &g.output {
        *uses.entry(o.name().to_string()).or_default() += 1;
    }
    let inits: HashMap<String, usize> = g
        .initializer
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name().to_string(), i))
        .collect();
    let producer: HashMap<String, usize> = g
        .node
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.output.iter().map(move |o| (o.clone(), i)))
        .collect();
    let default_domain = |d: &str| d.is_empty() || d == "ai.onnx";
    let init = |name: &str| inits.get(name).map(|&i| &g.initializer[i]);
    let mut new_inits: Vec<TensorProto> = Vec::new();
    let mut folds: Vec<Fold> = Vec::new();
    for (bi, bn) in g.node.iter().enumerate() {
        if bn.op_type() != "BatchNormalization"
            || !default_domain(bn.domain())
            || bn.input.len() < 5
        {
            continue;
        }
        // Inference only: training mode, or its extra outputs read, stay as they are.
        if attr_int(bn, "training_mode").unwrap_or(0) != 0
            || bn
                .output
                .iter()
                .skip(1)
                .any(|o| !o.is_empty() && uses.get(o).copied().unwrap_or(0) > 0)
        {
            continue;
        }
        let x = &bn.input[0];
        let Some(&ci) = producer.get(x) else { continue };
        let conv = &g.node[ci];
        if conv.op_type() != "Conv"
            || !default_domain(conv.domain())
            || uses.get(x).copied() != Some(1)
            || conv.input.len() < 2
        {
            continue;
        }
        let Some((wshape, w)) = init(&conv.input[1]).and_then(f32s) else {
            continue;
        };
        let bias = match conv.input.get(2).filter(|b| !b.is_empty()) {
            Some(b) => match init(b).and_then(f32s) {
                Some((_, v)) => Some(v),
                None => continue,
            },
            None => None,
        };
        let params: Option<Vec<Vec<f32>>> = bn.input[1..5]
            .iter()
            .map(|p| init(p).and_then(f32s).map(|(_, v)| v))
            .collect();
        let Some(params) = params else { continue };
        let (scale, beta, mean, var) = (&params[0], &params[1], &params[2], &params[3]);
        let m = wshape.first().copied().unwrap_or(0);
        if m == 0
            || [scale, beta, mean, var].iter().any(|v| v.len() != m)
            || bias.as_ref().is_some_and(|b| b.len() != m)
            || w.len() % m != 0
        {
            continue;
        }
        let eps = f64::from(attr_float(bn, "epsilon").unwrap_or(1e-5));
        let per = w.len() / m;
        let s: Vec<f64> = (0..m)
            .map(|c| f64::from(scale[c]) / (f64::from(var[c]) + eps).sqrt())
            .collect();
        #[allow(
            clippy::cast_possible_truncation,
            reason = "computed in f64, stored as the model's f32"
        )]
        let folded_w: Vec<f32> = w
            .iter()
            .enumerate()
            .map(|(i, &v)| (f64::from(v) * s[i / per]) as f32)
            .collect();
        #[allow(
            clippy::cast_possible_truncation,
            reason = "computed in f64, stored as the model's f32"
        )]
        let folded_b: Vec<f32> = (0..m)
            .map(|c| {
                let b = bias.as_ref().map_or(0.0, |b| f64::from(b[c]));
                ((b - f64::from(mean[c])) * s[c] + f64::from(beta[c])) as f32
            })
            .collect();
        let (Ok(wt), Ok(bt)) = (
            Tensor::from_shape_vec(&wshape, folded_w),
            Tensor::from_shape_vec(&[m], folded_b),
        ) else {
            continue;
        };
        let base = if bn.name().is_empty() {
            bn.output[0].clone()
        } else {
            bn.name().to_string()
        };
        let (wn, bname) = (format!("{base}.folded_w"), format!("{base}.folded_b"));
        if inits.contains_key(&wn) || inits.contains_key(&bname) {
            continue;
        }
        new_inits.push(tensor_to_proto(&wn, &wt));
        new_inits.push(tensor_to_proto(&bname, &bt));
        folds.push((ci, bi, wn, bname, bn.output[0].clone()));
    }
    let count = folds.len();
    let mut dropped: HashSet<usize> = HashSet::new();
    for (ci, bi, wn, bname, out) in folds {
        let conv = &mut g.node[ci];
        conv.input.truncate(2);
        conv.input[1] = wn;
        conv.input.push(bname);
        conv.output[0] = out;
        dropped.insert(bi);
    }
    let mut i = 0;
    g.node.retain(|_| {
        let keep = !dropped.contains(&i);
        i += 1;
        keep
    });
    g.initializer.extend(new_inits);
    // Initializers nothing reads any more (the old weights, the statistics); a graph with
    // subgraphs keeps them (a body may read an outer initializer).
    let subgraphs = g.node.iter().any(|n| {
        n.attribute
            .iter()
            .any(|a| a.g.is_some() || !a.graphs.is_empty())
    });
    if count > 0 && !subgraphs {
        let read: HashSet<String> = g
            .node
            .iter()
            .flat_map(|n| n.input.iter().cloned())
            .chain(g.output.iter().map(|o| o.name().to_string()))
            .collect();
        let inputs: HashSet<String> = g.input.iter().map(|v| v.name().to_string()).collect();
        g.initializer
            .retain(|t| read.contains(t.name()) || inputs.contains(t.name()));
    }
    count
}
