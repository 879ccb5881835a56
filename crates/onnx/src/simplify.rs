//! The `simplify` pass: constant folding of shape arithmetic and dead-node removal.
//!
//! Exporters write shape computations as subgraphs (`Shape -> Gather -> Unsqueeze -> Concat ->
//! Reshape`); when the dims involved are known (static inputs from `onnx_config`, or the
//! model's own), the result is a constant, and engines that cannot run shape subgraphs (or run
//! them slowly) get the constant instead. Folding covers the ops shape code uses, on integer
//! tensors of at most [`MAX_FOLDED`] elements: `Shape` (with `start`/`end`), `Size`, `Gather`,
//! `Unsqueeze`, `Squeeze`, `Concat`, `Slice`, `Cast`, `Identity`, `Add`, `Sub`, `Mul`, `Div`,
//! `Reshape`, `ConstantOfShape`, `Range`. A `Gather` of known dims out of a partly dynamic
//! `Shape` folds too. Then nodes whose outputs nothing reads, and initializers nothing reads,
//! are removed.
//!
//! Off by default; `rewrite_config = dict(enable=['simplify'])` or a backend's request turns it
//! on. Semantics follow the ONNX operator specification of each op.

use crate::node::{self, attr_int, attr_ints};
use crate::rewrite::{Facts, all_nodes};
use crate::{Pass, PassContext, PassOutcome};
use rdeploy_core::onnx::proto::{GraphProto, ModelProto, NodeProto};
use rdeploy_core::onnx::{tensor_from_proto, tensor_to_proto};
use rdeploy_core::{DType, Result, Tensor};
use std::collections::{HashMap, HashSet};

/// The largest tensor (in elements) the pass computes: shape arithmetic, not weights.
pub const MAX_FOLDED: usize = 4096;

/// See the module documentation.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimplifyPass;

impl Pass for SimplifyPass {
    fn name(&self) -> &str {
        "simplify"
    }

    fn run(&self, model: &mut ModelProto, _cx: &PassContext<'_>) -> Result<PassOutcome> {
        let facts = Facts::of(model);
        let Some(g) = model.graph.as_mut() else {
            return Ok(PassOutcome::default());
        };
        let folded = fold(g, &facts);
        let (nodes, inits) = remove_dead(g);
        let mut out = PassOutcome {
            changed: folded + nodes + inits > 0,
            ..Default::default()
        };
        out.details.insert("nodes_folded".into(), folded.into());
        out.details
            .insert("dead_nodes_removed".into(), nodes.into());
        out.details
            .insert("unused_initializers_removed".into(), inits.into());
        if out.changed {
            out.notes.push(format!(
                "simplify: {folded} node(s) folded to constants, {nodes} dead node(s) and {inits} unused initializer(s) removed"
            ));
        }
        Ok(out)
    }
}

/// Integer tensors as (dims, values) for folding.
#[derive(Clone, Debug, PartialEq)]
struct Val {
    dims: Vec<usize>,
    v: Vec<i64>,
    /// The ONNX element type to write back (7 int64, 6 int32, 1 float).
    elem: i32,
}

impl Val {
    fn vec(v: Vec<i64>) -> Val {
        Val {
            dims: vec![v.len()],
            v,
            elem: 7,
        }
    }
    fn to_tensor(&self) -> Option<Tensor> {
        match self.elem {
            7 => Tensor::from_shape_vec(&self.dims, self.v.clone()).ok(),
            6 => Tensor::from_shape_vec(
                &self.dims,
                self.v
                    .iter()
                    .map(|x| i32::try_from(*x).ok())
                    .collect::<Option<Vec<_>>>()?,
            )
            .ok(),
            1 => {
                Tensor::from_shape_vec(&self.dims, self.v.iter().map(|x| *x as f32).collect()).ok()
            }
            _ => None,
        }
    }
}

/// An integer constant (int64/int32, or float holding whole numbers) as a [`Val`].
fn val_of(t: &Tensor) -> Option<Val> {
    if t.len() > MAX_FOLDED {
        return None;
    }
    let elem = match t.dtype() {
        DType::I64 => 7,
        DType::I32 => 6,
        DType::F32 => 1,
        _ => return None,
    };
    let f = t.to_f64_vec();
    if f.iter().any(|x| x.fract() != 0.0 || !x.is_finite()) {
        return None;
    }
    Some(Val {
        dims: t.shape().to_vec(),
        v: f.iter().map(|x| *x as i64).collect(),
        elem,
    })
}

fn fold(g: &mut GraphProto, facts: &Facts) -> usize {
    let mut known: HashMap<String, Val> = HashMap::new();
    for t in &g.initializer {
        if let Some(v) = tensor_from_proto(t).ok().as_ref().and_then(val_of) {
            known.insert(t.name().to_string(), v);
        }
    }
    // Graph inputs may be fed other values: an initializer that is also an input is not known.
    for i in &g.input {
        known.remove(i.name());
    }
    // Outputs of plain `Shape` nodes, by the value whose shape they are.
    let shape_of: HashMap<String, String> = g
        .node
        .iter()
        .filter(|n| {
            n.op_type() == "Shape"
                && node::domain(n).is_empty()
                && node::attr(n, "start").is_none()
                && node::attr(n, "end").is_none()
        })
        .filter_map(|n| Some((n.output.first()?.clone(), n.input.first()?.clone())))
        .collect();
    let mut folded = 0;
    let mut new_inits = Vec::new();
    let mut keep = Vec::with_capacity(g.node.len());
    for n in std::mem::take(&mut g.node) {
        let outs = if node::domain(&n).is_empty() && n.output.len() == 1 {
            eval(&n, &known, facts, &shape_of)
        } else {
            None
        };
        match outs.and_then(|v| Some((v.to_tensor()?, v))) {
            Some((t, v)) => {
                let name = n.output[0].clone();
                new_inits.push(tensor_to_proto(&name, &t));
                known.insert(name, v);
                folded += 1;
            }
            None => keep.push(n),
        }
    }
    g.node = keep;
    let produced: HashSet<String> = new_inits.iter().map(|t| t.name().to_string()).collect();
    g.value_info.retain(|v| !produced.contains(v.name()));
    g.initializer.extend(new_inits);
    folded
}

/// The value of one node when its inputs are known.
fn eval(
    n: &NodeProto,
    known: &HashMap<String, Val>,
    facts: &Facts,
    shape_of: &HashMap<String, String>,
) -> Option<Val> {
    let input = |i: usize| -> Option<&Val> { known.get(n.input.get(i)?) };
    let out = match n.op_type() {
        "Constant" => {
            let t = node::attr(n, "value")
                .and_then(|a| a.t.as_ref())
                .and_then(|t| tensor_from_proto(t).ok());
            match t {
                Some(t) => val_of(&t)?,
                None => {
                    if let Some(v) = attr_ints(n, "value_ints") {
                        Val::vec(v)
                    } else {
                        let v = attr_int(n, "value_int")?;
                        Val {
                            dims: vec![],
                            v: vec![v],
                            elem: 7,
                        }
                    }
                }
            }
        }
        "Shape" => {
            let dims = facts.shapes.get(n.input.first()?)?;
            let r = dims.len() as i64;
            let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
            let s = clamp(attr_int(n, "start").unwrap_or(0));
            let e = clamp(attr_int(n, "end").unwrap_or(r));
            let dims = dims.get(s..e.max(s))?;
            Val::vec(
                dims.iter()
                    .map(|d| d.map(|d| d as i64))
                    .collect::<Option<Vec<_>>>()?,
            )
        }
        "Size" => {
            let dims = facts.shapes.get(n.input.first()?)?;
            let mut p: i64 = 1;
            for d in dims {
                p = p.checked_mul(i64::try_from((*d)?).ok()?)?;
            }
            Val {
                dims: vec![],
                v: vec![p],
                elem: 7,
            }
        }
        "Identity" => input(0)?.clone(),
        "Cast" => {
            let x = input(0)?;
            let elem = match attr_int(n, "to")? {
                7 => 7,
                6 => 6,
                1 => 1,
                _ => return None,
            };
            Val { elem, ..x.clone() }
        }
        "Gather" => {
            let idx = input(1)?;
            let axis = attr_int(n, "axis").unwrap_or(0);
            // The data: a known vector, or the dims of a Shape whose gathered dims are known.
            let data: Vec<Option<i64>> = match input(0) {
                Some(x) if x.dims.len() == 1 => x.v.iter().map(|v| Some(*v)).collect(),
                Some(_) => return None,
                None => {
                    let dims = facts.shapes.get(shape_of.get(n.input.first()?)?)?;
                    dims.iter().map(|d| d.map(|d| d as i64)).collect()
                }
            };
            if axis != 0 && axis != -1 {
                return None;
            }
            let len = data.len() as i64;
            let picked = idx
                .v
                .iter()
                .map(|i| {
                    let i = if *i < 0 { i + len } else { *i };
                    data.get(usize::try_from(i).ok()?).copied().flatten()
                })
                .collect::<Option<Vec<_>>>()?;
            Val {
                dims: idx.dims.clone(),
                v: picked,
                elem: input(0).map(|x| x.elem).unwrap_or(7),
            }
        }
        "Unsqueeze" | "Squeeze" => {
            let x = input(0)?;
            let axes = match attr_ints(n, "axes") {
                Some(a) => a,
                None => match n.input.get(1) {
                    Some(a) if !a.is_empty() => known.get(a)?.v.clone(),
                    _ if n.op_type() == "Squeeze" => Vec::new(),
                    _ => return None,
                },
            };
            let dims = if n.op_type() == "Unsqueeze" {
                let r = (x.dims.len() + axes.len()) as i64;
                let mut ax: Vec<usize> = axes
                    .iter()
                    .map(|a| usize::try_from(if *a < 0 { a + r } else { *a }).ok())
                    .collect::<Option<_>>()?;
                ax.sort_unstable();
                let mut d = x.dims.clone();
                for a in ax {
                    if a > d.len() {
                        return None;
                    }
                    d.insert(a, 1);
                }
                d
            } else {
                let r = x.dims.len() as i64;
                let ax: HashSet<usize> = axes
                    .iter()
                    .map(|a| usize::try_from(if *a < 0 { a + r } else { *a }).ok())
                    .collect::<Option<_>>()?;
                x.dims
                    .iter()
                    .enumerate()
                    .filter(|(i, d)| !(ax.contains(i) || (ax.is_empty() && **d == 1)))
                    .map(|(_, d)| *d)
                    .collect()
            };
            Val { dims, ..x.clone() }
        }
        "Concat" => {
            let parts: Vec<&Val> = n
                .input
                .iter()
                .map(|i| known.get(i))
                .collect::<Option<_>>()?;
            if parts.iter().any(|p| p.dims.len() != 1) {
                return None;
            }
            Val {
                elem: parts.first()?.elem,
                ..Val::vec(parts.iter().flat_map(|p| p.v.iter().copied()).collect())
            }
        }
        "Slice" => {
            let x = input(0)?;
            if x.dims.len() != 1 {
                return None;
            }
            let (starts, ends) = match (attr_ints(n, "starts"), attr_ints(n, "ends")) {
                (Some(s), Some(e)) => (s, e),
                _ => (input(1)?.v.clone(), input(2)?.v.clone()),
            };
            let step = n
                .input
                .get(4)
                .filter(|s| !s.is_empty())
                .map(|s| known.get(s).map(|v| v.v.first().copied()))
                .unwrap_or(Some(Some(1)))??;
            if step != 1 || starts.len() != 1 || ends.len() != 1 {
                return None;
            }
            let len = x.v.len() as i64;
            let c = |v: i64| (if v < 0 { v + len } else { v }).clamp(0, len) as usize;
            let (s, e) = (c(starts[0]), c(ends[0]));
            Val {
                elem: x.elem,
                ..Val::vec(x.v.get(s..e.max(s))?.to_vec())
            }
        }
        "Add" | "Sub" | "Mul" | "Div" => {
            let (a, b) = (input(0)?, input(1)?);
            let f = |x: i64, y: i64| -> Option<i64> {
                match n.op_type() {
                    "Add" => x.checked_add(y),
                    "Sub" => x.checked_sub(y),
                    "Mul" => x.checked_mul(y),
                    // Integer Div truncates (ONNX follows C for integers); float Div must not.
                    _ if a.elem == 1 => (y != 0 && x.checked_rem(y)? == 0)
                        .then(|| x.checked_div(y))
                        .flatten(),
                    _ => x.checked_div(y),
                }
            };
            let (dims, v) = if a.v.len() == b.v.len() && a.dims == b.dims {
                (
                    a.dims.clone(),
                    a.v.iter()
                        .zip(&b.v)
                        .map(|(x, y)| f(*x, *y))
                        .collect::<Option<Vec<_>>>()?,
                )
            } else if b.v.len() == 1 && b.dims.len() <= a.dims.len() {
                (
                    a.dims.clone(),
                    a.v.iter()
                        .map(|x| f(*x, b.v[0]))
                        .collect::<Option<Vec<_>>>()?,
                )
            } else if a.v.len() == 1 && a.dims.len() <= b.dims.len() {
                (
                    b.dims.clone(),
                    b.v.iter()
                        .map(|y| f(a.v[0], *y))
                        .collect::<Option<Vec<_>>>()?,
                )
            } else {
                return None;
            };
            Val {
                dims,
                v,
                elem: a.elem,
            }
        }
        "Reshape" => {
            let (x, shape) = (input(0)?, input(1)?);
            let total = x.v.len() as i64;
            let mut dims: Vec<i64> = shape
                .v
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    if *d == 0 {
                        x.dims.get(i).map(|v| *v as i64).unwrap_or(0)
                    } else {
                        *d
                    }
                })
                .collect();
            let known_prod = dims
                .iter()
                .filter(|d| **d > 0)
                .try_fold(1i64, |a, d| a.checked_mul(*d))?;
            if let Some(p) = dims.iter().position(|d| *d == -1) {
                if known_prod == 0 || total % known_prod != 0 {
                    return None;
                }
                dims[p] = total / known_prod;
            }
            let dims: Vec<usize> = dims
                .iter()
                .map(|d| usize::try_from(*d).ok())
                .collect::<Option<_>>()?;
            if dims.iter().try_fold(1usize, |a, d| a.checked_mul(*d)) != Some(x.v.len()) {
                return None;
            }
            Val { dims, ..x.clone() }
        }
        "ConstantOfShape" => {
            let shape = input(0)?;
            let dims: Vec<usize> = shape
                .v
                .iter()
                .map(|d| usize::try_from(*d).ok())
                .collect::<Option<_>>()?;
            let count = dims.iter().try_fold(1usize, |a, d| a.checked_mul(*d))?;
            if count > MAX_FOLDED {
                return None;
            }
            let value = match node::attr(n, "value").and_then(|a| a.t.as_ref()) {
                Some(t) => val_of(&tensor_from_proto(t).ok()?)?,
                None => Val {
                    dims: vec![1],
                    v: vec![0],
                    elem: 1,
                },
            };
            Val {
                dims,
                v: vec![*value.v.first()?; count],
                elem: value.elem,
            }
        }
        "Range" => {
            let (s, l, d) = (input(0)?, input(1)?, input(2)?);
            let (s, l, d) = (*s.v.first()?, *l.v.first()?, *d.v.first()?);
            if d == 0 {
                return None;
            }
            // In i128: the span of two i64s overflows i64.
            let span = i128::from(l) - i128::from(s);
            let d128 = i128::from(d);
            let count = if span == 0 || (span > 0) != (d128 > 0) {
                0
            } else {
                (span + d128 - d128.signum()) / d128
            };
            if !(0..=MAX_FOLDED as i128).contains(&count) {
                return None;
            }
            Val {
                elem: input(0)?.elem,
                ..Val::vec(
                    (0..count as i64)
                        .map(|i| i.checked_mul(d).and_then(|v| v.checked_add(s)))
                        .collect::<Option<Vec<_>>>()?,
                )
            }
        }
        _ => return None,
    };
    (out.v.len() <= MAX_FOLDED).then_some(out)
}

/// Removes nodes no graph output depends on and initializers nothing reads; returns the
/// counts.
fn remove_dead(g: &mut GraphProto) -> (usize, usize) {
    let outputs: HashSet<String> = g.output.iter().map(|o| o.name().to_string()).collect();
    let mut removed = 0;
    loop {
        let mut used: HashSet<String> = outputs.clone();
        for n in &g.node {
            used.extend(n.input.iter().cloned());
            for a in &n.attribute {
                for sub in a.g.iter().chain(&a.graphs) {
                    for m in all_nodes(sub) {
                        used.extend(m.input.iter().cloned());
                    }
                    used.extend(sub.output.iter().map(|o| o.name().to_string()));
                }
            }
        }
        let before = g.node.len();
        g.node
            .retain(|n| n.output.iter().any(|o| !o.is_empty() && used.contains(o)));
        let gone = before - g.node.len();
        removed += gone;
        if gone == 0 {
            let inputs: HashSet<&str> = g.input.iter().map(|i| i.name()).collect();
            let before = g.initializer.len();
            g.initializer
                .retain(|t| used.contains(t.name()) || inputs.contains(t.name()));
            return (removed, before - g.initializer.len());
        }
    }
}
