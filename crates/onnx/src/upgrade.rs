//! The `opset_upgrade` pass: rewrites a model written at an old default-domain opset into an
//! equivalent one at a newer opset, for engines that lack the old operator versions (ONNX
//! Runtime has no kernels for several opset <= 6 forms) or mishandle old semantics (an
//! opset < 13 `Softmax` flattens from `axis`; pnnx reads it as the new per-axis form).
//!
//! Each adapter follows the operator changelog of the ONNX specification
//! (<https://github.com/onnx/onnx/blob/main/docs/Changelog.md>) and the adapters of ONNX's own
//! version converter (`onnx/version_converter/adapters/`), written here for rdeploy's graph:
//!
//! - every op: `consumed_inputs` (removed in opset 6) dropped;
//! - `Add`/`Sub`/`Mul`/`Div`/`Pow`/`And`/`Or`/`Xor`/`Equal`/`Greater`/`Less` (7): `broadcast` and
//!   `axis` dropped; a `B` aligned at `axis` instead of at the end is given trailing 1-dims;
//! - `Gemm` (7) `broadcast` dropped; `PRelu` (7): a per-channel slope `[C]` becomes `[C, 1, ...]`
//!   (opset 6 applied it along axis 1; opset 7 broadcasts like numpy);
//! - `BatchNormalization` (7, 9): `is_test`, `spatial` (only 1 is supported) dropped;
//!   `Dropout` (7, 12): becomes `Identity` unless its mask is used;
//! - `Concat` (4): the old default `axis=1` written out; `Reshape` (5): `shape` attribute to
//!   input; `Cast` (6): `to` as a name becomes the enum; `Pad` (2, 11): `paddings` renamed,
//!   `pads`/`value` to inputs; `Split` (2, 13): `split` input/attribute forms; `LpPool` (2): `p`
//!   as int;
//! - `Upsample` (deprecated in 10) and `Resize`-10 become `Resize` with
//!   `coordinate_transformation_mode='asymmetric'` (and `nearest_mode='floor'`): Upsample's
//!   coordinate rule, `x_in = x_out / scale`;
//! - `Slice` (10), `TopK` (10), `Clip` (11), `Squeeze`/`Unsqueeze`/`ReduceSum` (13), other
//!   `Reduce*` (18): attributes to inputs; `Scatter` (11) becomes `ScatterElements`;
//! - `Softmax`/`LogSoftmax`/`Hardmax` (13): kept per-axis when the dims after `axis` are 1 or
//!   `axis` is the last; otherwise `Flatten(axis)` -> op(axis=1) -> `Reshape` to `Shape(x)`,
//!   which is exactly the old definition.
//!
//! Ops with no adapter need none between the two opsets (their changes only widened types).

use crate::node::{self, attr_float, attr_int, attr_ints, attr_string, remove_attrs};
use crate::rewrite::{Facts, Pattern, Rewrite, RewriteCx};
use crate::{Pass, PassContext, PassOutcome};
use rdeploy_core::onnx::proto::{ModelProto, NodeProto, OperatorSetIdProto};
use rdeploy_core::{Error, Result, Tensor};

/// The opset the pass upgrades to unless configured: the first with today's `Softmax`,
/// `Squeeze`/`Unsqueeze` and `Split` forms, read by every engine rdeploy runs.
pub const DEFAULT_TARGET: i64 = 13;

/// Models below this opset are upgraded by default: ONNX Runtime has no kernels for several
/// opset <= 6 forms (`Add(6)` with `broadcast`, `BatchNormalization(6)`, `Gemm(6)`...).
pub const DEFAULT_BELOW: i64 = 7;

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct OpsetUpgradePass {
    /// Upgrade only models whose default-domain opset is below this (`None`: any model below
    /// `target`).
    pub below: Option<i64>,
    /// The opset to upgrade to.
    pub target: i64,
}

impl OpsetUpgradePass {
    /// The pass a backend asked for (`{"below": 7, "target": 13}`), with
    /// `rewrite_config.opset_upgrade = dict(target=.., below=..)` from the deploy config
    /// taking precedence.
    ///
    /// # Errors
    /// [`Error::Config`] for a target outside 7..=23 or values that are not integers.
    pub fn from_request(
        req: &rdeploy_core::PassRequest,
        cfg: &rdeploy_core::DeployConfig,
    ) -> Result<OpsetUpgradePass> {
        let mut p = OpsetUpgradePass {
            below: Some(DEFAULT_BELOW),
            target: DEFAULT_TARGET,
        };
        let read = |v: &serde_json::Value, key: &str| -> Result<Option<i64>> {
            match v.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(x) => x.as_i64().map(Some).ok_or_else(|| {
                    Error::config_key(
                        format!("rewrite_config.opset_upgrade.{key}"),
                        format!("must be an integer opset, got {x}"),
                    )
                }),
            }
        };
        if let Some(t) = read(&req.options, "target")? {
            p.target = t;
        }
        if let Some(b) = read(&req.options, "below")? {
            p.below = Some(b);
        }
        if let Some(o) = cfg
            .0
            .get("rewrite_config")
            .and_then(|r| r.get("opset_upgrade"))
        {
            if let Some(t) = read(o, "target")? {
                p.target = t;
                // An explicit target upgrades any model below it.
                p.below = None;
            }
            if let Some(b) = read(o, "below")? {
                p.below = Some(b);
            }
        }
        if !(7..=23).contains(&p.target) {
            return Err(Error::config_key(
                "rewrite_config.opset_upgrade.target",
                format!(
                    "{} is outside the opsets rdeploy can upgrade to (7 to 23)",
                    p.target
                ),
            ));
        }
        Ok(p)
    }
}

/// The model's default-domain opset (1 when it imports none).
pub fn default_opset(model: &ModelProto) -> i64 {
    model
        .opset_import
        .iter()
        .find(|o| matches!(o.domain(), "" | "ai.onnx"))
        .map(|o| o.version())
        .unwrap_or(1)
}

/// The lowest IR version that may declare `opset` (onnx's `helper.VERSION_TABLE`).
fn min_ir_version(opset: i64) -> i64 {
    match opset {
        ..=8 => 3,
        9 => 4,
        10 => 5,
        11 => 6,
        12..=14 => 7,
        15..=18 => 8,
        19..=20 => 9,
        21..=22 => 10,
        _ => 11,
    }
}

impl Pass for OpsetUpgradePass {
    fn name(&self) -> &str {
        "opset_upgrade"
    }

    fn is_noop(&self, model: &ModelProto) -> bool {
        let from = default_opset(model);
        from >= 1 && (from >= self.target || self.below.is_some_and(|b| from >= b))
    }

    fn run(&self, model: &mut ModelProto, cx: &PassContext<'_>) -> Result<PassOutcome> {
        let from = default_opset(model);
        if from < 1 {
            return Err(Error::model(
                cx.model_path,
                format!(
                    "the model imports the default ONNX domain at opset {from}; opset versions start at 1, so its operators' meaning is unknown (write the opset the exporter used in opset_import)"
                ),
            ));
        }
        let mut out = PassOutcome::default();
        out.details.insert("from".into(), from.into());
        let wanted = match self.below {
            Some(b) => from < b,
            None => true,
        };
        if !wanted || from >= self.target {
            out.details.insert("to".into(), from.into());
            return Ok(out);
        }
        let facts = Facts::of(model);
        let rule = UpgradeRule {
            from,
            target: self.target,
            model_path: cx.model_path.to_path_buf(),
        };
        let counts = crate::rewrite::apply(model, &[&rule], &facts)?;
        match model
            .opset_import
            .iter_mut()
            .find(|o| matches!(o.domain(), "" | "ai.onnx"))
        {
            Some(o) => o.version = Some(self.target),
            None => model.opset_import.push(OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(self.target),
            }),
        }
        let ir = min_ir_version(self.target);
        if model.ir_version() < ir {
            model.ir_version = Some(ir);
        }
        out.changed = true;
        out.details.insert("to".into(), self.target.into());
        out.details.insert(
            "nodes_rewritten".into(),
            counts.values().sum::<usize>().into(),
        );
        out.notes.push(format!(
            "opset_upgrade: model upgraded from opset {from} to {} ({} node(s) rewritten)",
            self.target,
            counts.values().sum::<usize>()
        ));
        Ok(out)
    }
}

/// Every default-domain node, from opset `from` to `target`.
struct UpgradeRule {
    from: i64,
    target: i64,
    model_path: std::path::PathBuf,
}

/// Ops whose opset-1 form had `broadcast`/`axis` (numpy broadcasting from opset 7).
const OLD_BROADCAST: &[&str] = &[
    "Add", "Sub", "Mul", "Div", "Pow", "And", "Or", "Xor", "Equal", "Greater", "Less",
];

impl Rewrite for UpgradeRule {
    fn name(&self) -> &str {
        "opset_upgrade"
    }

    fn pattern(&self) -> Pattern {
        Pattern::op("*")
    }

    fn description(&self) -> &str {
        "upgrades each default-domain node to the target opset"
    }

    fn rewrite(&self, n: &NodeProto, cx: &mut RewriteCx<'_>) -> Result<Option<Vec<NodeProto>>> {
        let (from, to) = (self.from, self.target);
        let crosses = |v: i64| from < v && to >= v;
        let mut n = n.clone();
        let mut before = Vec::new();
        let mut changed = false;
        if node::attr(&n, "consumed_inputs").is_some() {
            remove_attrs(&mut n, &["consumed_inputs"]);
            changed = true;
        }
        let what = node::describe(&n);
        let bad = |msg: String| {
            Error::model(
                &self.model_path,
                format!("opset_upgrade from {from} to {to}: {what}: {msg}"),
            )
        };
        let op = n.op_type().to_string();
        match op.as_str() {
            o if OLD_BROADCAST.contains(&o) && crosses(7) => {
                let broadcast = attr_int(&n, "broadcast").unwrap_or(0);
                let axis = attr_int(&n, "axis");
                if broadcast != 0
                    && let Some(axis) = axis
                    && n.input.len() == 2
                {
                    let ra = cx.rank(&n.input[0]).ok_or_else(|| {
                        bad("the rank of input A is unknown, so B's alignment at `axis` cannot be made numpy-style; give the model full shapes (onnx.shape_inference)".into())
                    })?;
                    let rb = cx.rank(&n.input[1]).ok_or_else(|| {
                        bad("the rank of input B is unknown, so its alignment at `axis` cannot be made numpy-style".into())
                    })?;
                    let axis = if axis < 0 { axis + ra as i64 } else { axis };
                    let trailing = ra as i64 - axis - rb as i64;
                    if axis < 0 || trailing < 0 {
                        return Err(bad(format!(
                            "axis {axis} does not fit A of rank {ra} and B of rank {rb}"
                        )));
                    }
                    if trailing > 0 {
                        let b = n.input[1].clone();
                        n.input[1] = append_ones(cx, &b, rb, trailing as usize, to, &mut before);
                    }
                }
                if node::attr(&n, "broadcast").is_some() || node::attr(&n, "axis").is_some() {
                    remove_attrs(&mut n, &["broadcast", "axis"]);
                    changed = true;
                }
            }
            "Gemm" if crosses(7) && node::attr(&n, "broadcast").is_some() => {
                remove_attrs(&mut n, &["broadcast"]);
                changed = true;
            }
            "PRelu" if crosses(7) => {
                let slope = cx.shape(&n.input[1]);
                let per_channel = slope
                    .as_ref()
                    .is_some_and(|s| s.len() == 1 && s[0] != Some(1));
                if per_channel {
                    // Opset 6 applied a [C] slope along axis 1; numpy broadcasting needs
                    // [C, 1, ...], so the input's rank must be known.
                    let rx = cx.rank(&n.input[0]).ok_or_else(|| {
                        bad("the rank of input X is unknown, so the per-channel slope cannot be aligned with axis 1; give the model full shapes (onnx.shape_inference)".into())
                    })?;
                    if rx >= 3 {
                        let s = n.input[1].clone();
                        n.input[1] = append_ones(cx, &s, 1, rx - 2, to, &mut before);
                        changed = true;
                    }
                }
            }
            "BatchNormalization" if crosses(7) || crosses(9) => {
                if attr_int(&n, "spatial").is_some_and(|s| s != 1) {
                    return Err(bad("spatial=0 (per-activation statistics) is not upgraded: opset 9 and later have no such form and engines read it differently before; export the model with spatial=1".into()));
                }
                let extra = n.output.iter().skip(1).any(|o| !o.is_empty());
                if extra && to >= 14 {
                    return Err(bad("training-mode outputs (running mean/var) are used; rdeploy deploys inference graphs".into()));
                }
                remove_attrs(&mut n, &["is_test"]);
                if crosses(9) {
                    remove_attrs(&mut n, &["spatial"]);
                }
                changed = true;
            }
            "Dropout" if crosses(7) || crosses(12) => {
                let mask_used = n.output.get(1).is_some_and(|o| !o.is_empty());
                if mask_used {
                    remove_attrs(&mut n, &["is_test"]);
                    if crosses(12) {
                        if let Some(r) = attr_float(&n, "ratio") {
                            remove_attrs(&mut n, &["ratio"]);
                            let t = Tensor::from_shape_vec(&[], vec![r])
                                .map_err(|e| bad(e.to_string()))?;
                            let name = cx.add_constant("ratio", &t);
                            n.input.truncate(1);
                            n.input.push(name);
                        }
                        // The mask was of the input's type before opset 12 and is bool from
                        // 12: cast it back for its readers.
                        let mask = n.output[1].clone();
                        let bool_mask = cx.fresh(&format!("{mask}_bool"));
                        n.output[1] = bool_mask.clone();
                        let to_type = cx.elem_type(&n.input[0]).unwrap_or(1);
                        let cast = node::node(
                            "Cast",
                            "",
                            &[&bool_mask],
                            &[&mask],
                            vec![node::int("to", i64::from(to_type))],
                        );
                        let mut out = before;
                        out.push(n);
                        out.push(cast);
                        return Ok(Some(out));
                    }
                } else {
                    // Inference-mode Dropout is the identity.
                    n = node::node(
                        "Identity",
                        n.name(),
                        &[n.input[0].as_str()],
                        &[n.output[0].as_str()],
                        Vec::new(),
                    );
                }
                changed = true;
            }
            "Concat" if crosses(4) && node::attr(&n, "axis").is_none() => {
                node::set_attr(&mut n, node::int("axis", 1));
                changed = true;
            }
            "Reshape" if crosses(5) => {
                if let Some(shape) = attr_ints(&n, "shape") {
                    remove_attrs(&mut n, &["shape"]);
                    let s = cx.add_i64("shape", &shape);
                    n.input.truncate(1);
                    n.input.push(s);
                    changed = true;
                }
            }
            "Cast" if crosses(6) => {
                if let Some(s) = attr_string(&n, "to") {
                    let code = cast_code(&s).ok_or_else(|| bad(format!("unknown type '{s}'")))?;
                    node::set_attr(&mut n, node::int("to", code));
                    changed = true;
                }
            }
            "LpPool" | "GlobalLpPool" if crosses(2) => {
                if let Some(p) = attr_float(&n, "p") {
                    node::set_attr(&mut n, node::int("p", p.round() as i64));
                    changed = true;
                }
            }
            "Pad" if crosses(2) || crosses(11) => {
                if let Some(p) = attr_ints(&n, "paddings") {
                    remove_attrs(&mut n, &["paddings"]);
                    node::set_attr(&mut n, node::ints("pads", &p));
                    changed = true;
                }
                if crosses(11)
                    && let Some(pads) = attr_ints(&n, "pads")
                {
                    let value = attr_float(&n, "value").unwrap_or(0.0);
                    remove_attrs(&mut n, &["pads", "value"]);
                    n.input.truncate(1);
                    let p = cx.add_i64("pads", &pads);
                    n.input.push(p);
                    if value != 0.0 {
                        let x = n.input[0].clone();
                        let v = cx
                            .add_scalar_like("pad_value", &x, value)
                            .map_err(|e| bad(e.to_string()))?;
                        n.input.push(v);
                    }
                    changed = true;
                }
            }
            "Split" if crosses(2) || crosses(13) => {
                // Opset 1 could take `split` as a second (constant) input.
                if n.input.len() > 1 && from < 2 {
                    let s = cx
                        .constant(&n.input[1])
                        .ok_or_else(|| bad("its `split` input is not a constant".into()))?;
                    let v: Vec<i64> = s.to_f64_vec().iter().map(|x| *x as i64).collect();
                    n.input.truncate(1);
                    node::set_attr(&mut n, node::ints("split", &v));
                    changed = true;
                }
                if crosses(13)
                    && let Some(v) = attr_ints(&n, "split")
                {
                    remove_attrs(&mut n, &["split"]);
                    let s = cx.add_i64("split", &v);
                    n.input.truncate(1);
                    n.input.push(s);
                    changed = true;
                }
                changed |= split_count(&mut n, to);
            }
            "Split" if from < 18 => {
                changed |= split_count(&mut n, to);
            }
            "Upsample" if to >= 10 => {
                n = upsample_to_resize(&n, from, to, cx).map_err(bad)?;
                changed = true;
            }
            "Upsample" if crosses(9) => {
                if let Some(scales) = attr_floats_or(&n, "scales") {
                    remove_attrs(&mut n, &["scales"]);
                    let s = cx.add_f32("scales", &scales);
                    n.input.truncate(1);
                    n.input.push(s);
                    changed = true;
                }
            }
            "Resize" if crosses(11) => {
                // Resize-10 is Upsample-9 under a new name.
                let mode = attr_string(&n, "mode").unwrap_or_else(|| "nearest".into());
                let mut r = resize(&n, &mode, to);
                r.input = vec![
                    n.input[0].clone(),
                    String::new(),
                    n.input.get(1).cloned().unwrap_or_default(),
                ];
                n = r;
                changed = true;
            }
            "Slice" if crosses(10) => {
                let starts = attr_ints(&n, "starts").unwrap_or_default();
                let ends = attr_ints(&n, "ends").unwrap_or_default();
                let axes = attr_ints(&n, "axes");
                remove_attrs(&mut n, &["starts", "ends", "axes"]);
                n.input.truncate(1);
                let s = cx.add_i64("starts", &starts);
                let e = cx.add_i64("ends", &ends);
                n.input.push(s);
                n.input.push(e);
                if let Some(a) = axes {
                    let a = cx.add_i64("axes", &a);
                    n.input.push(a);
                }
                changed = true;
            }
            "TopK" if crosses(10) => {
                let k = attr_int(&n, "k").ok_or_else(|| bad("no `k` attribute".into()))?;
                remove_attrs(&mut n, &["k"]);
                let k = cx.add_i64("k", &[k]);
                n.input.truncate(1);
                n.input.push(k);
                changed = true;
            }
            "Clip" if crosses(11) => {
                let min = attr_float(&n, "min");
                let max = attr_float(&n, "max");
                remove_attrs(&mut n, &["min", "max"]);
                n.input.truncate(1);
                let x = n.input[0].clone();
                match (min, max) {
                    (None, None) => {}
                    _ => {
                        let lo = match min {
                            Some(v) => cx
                                .add_scalar_like("clip_min", &x, v)
                                .map_err(|e| bad(e.to_string()))?,
                            None => String::new(),
                        };
                        n.input.push(lo);
                        if let Some(v) = max {
                            let hi = cx
                                .add_scalar_like("clip_max", &x, v)
                                .map_err(|e| bad(e.to_string()))?;
                            n.input.push(hi);
                        }
                    }
                }
                changed = true;
            }
            "Scatter" if crosses(11) => {
                n.op_type = Some("ScatterElements".into());
                changed = true;
            }
            "Squeeze" | "Unsqueeze" | "ReduceSum" if crosses(13) => {
                changed |= axes_to_input(&mut n, cx);
            }
            "ReduceMean" | "ReduceMax" | "ReduceMin" | "ReduceProd" | "ReduceL1" | "ReduceL2"
            | "ReduceLogSum" | "ReduceLogSumExp" | "ReduceSumSquare"
                if crosses(18) =>
            {
                changed |= axes_to_input(&mut n, cx);
            }
            "Softmax" | "LogSoftmax" | "Hardmax" if crosses(13) => {
                let axis = attr_int(&n, "axis").unwrap_or(1);
                let x = n.input[0].clone();
                let shape = cx.shape(&x);
                if let Some(r) = shape.as_ref().map(|s| s.len() as i64)
                    && !(-r..r).contains(&axis)
                {
                    return Err(bad(format!("axis {axis} is outside the input's rank {r}")));
                }
                let per_axis = shape.as_ref().and_then(|s| {
                    let r = s.len() as i64;
                    let a = if axis < 0 { axis + r } else { axis };
                    (0..r).contains(&a).then_some(())?;
                    let trailing_ones = s[(a as usize + 1)..].iter().all(|d| *d == Some(1));
                    trailing_ones.then_some(a)
                });
                match per_axis {
                    Some(a) => {
                        node::set_attr(&mut n, node::int("axis", a));
                    }
                    None => {
                        // The old definition, spelled out: softmax over everything from `axis`.
                        let flat = cx.fresh(&format!("{x}_flat"));
                        let soft = cx.fresh(&format!("{x}_soft"));
                        let shp = cx.fresh(&format!("{x}_shape"));
                        let y = n.output[0].clone();
                        let name = n.name().to_string();
                        return Ok(Some(vec![
                            node::node(
                                "Flatten",
                                &node::suffixed(&name, "flatten"),
                                &[&x],
                                &[&flat],
                                vec![node::int("axis", axis)],
                            ),
                            node::node(&op, &name, &[&flat], &[&soft], vec![node::int("axis", 1)]),
                            node::node(
                                "Shape",
                                &node::suffixed(&name, "shape"),
                                &[&x],
                                &[&shp],
                                vec![],
                            ),
                            node::node(
                                "Reshape",
                                &node::suffixed(&name, "reshape"),
                                &[&soft, &shp],
                                &[&y],
                                vec![],
                            ),
                        ]));
                    }
                }
                changed = true;
            }
            "Tile" if crosses(6) && n.input.len() == 3 => {
                return Err(bad("opset-1 Tile (tiles and axis inputs) has no adapter; re-export the model at opset 7 or later".into()));
            }
            _ => {}
        }
        if !changed && before.is_empty() {
            return Ok(None);
        }
        before.push(n);
        Ok(Some(before))
    }
}

/// A FLOATS attribute as `Vec<f32>`, when present and non-empty.
fn attr_floats_or(n: &NodeProto, name: &str) -> Option<Vec<f32>> {
    node::attr_floats(n, name).filter(|v| !v.is_empty())
}

/// `b` with `extra` trailing 1-dims: a reshaped copy of a constant, or an `Unsqueeze` node
/// (added to `before`) in the form the target opset takes.
fn append_ones(
    cx: &mut RewriteCx<'_>,
    b: &str,
    rank: usize,
    extra: usize,
    opset: i64,
    before: &mut Vec<NodeProto>,
) -> String {
    if let Some(t) = cx.constant(b) {
        let mut shape = t.shape().to_vec();
        shape.extend(std::iter::repeat_n(1, extra));
        if let Ok(r) = t.reshape(&shape) {
            return cx.add_constant(b, &r);
        }
    }
    let axes: Vec<i64> = (rank..rank + extra).map(|a| a as i64).collect();
    let out = cx.fresh(&format!("{b}_unsqueezed"));
    let node = cx.unsqueeze(b, &axes, &out, opset);
    before.push(node);
    out
}

/// Moves an `axes` attribute to the second input (opset 13/18 forms).
fn axes_to_input(n: &mut NodeProto, cx: &mut RewriteCx<'_>) -> bool {
    let Some(axes) = attr_ints(n, "axes") else {
        return false;
    };
    remove_attrs(n, &["axes"]);
    let a = cx.add_i64("axes", &axes);
    n.input.truncate(1);
    n.input.push(a);
    true
}

/// A `Resize` node with Upsample's coordinate rule, inputs to be filled in by the caller.
fn resize(n: &NodeProto, mode: &str, to: i64) -> NodeProto {
    let mut attrs = vec![node::string(
        "mode",
        if mode == "bilinear" || mode == "linear" {
            "linear"
        } else {
            "nearest"
        },
    )];
    if to >= 11 {
        attrs.push(node::string("coordinate_transformation_mode", "asymmetric"));
        if mode == "nearest" {
            attrs.push(node::string("nearest_mode", "floor"));
        }
    }
    node::node("Resize", n.name(), &[], &[n.output[0].as_str()], attrs)
}

fn upsample_to_resize(
    n: &NodeProto,
    from: i64,
    to: i64,
    cx: &mut RewriteCx<'_>,
) -> std::result::Result<NodeProto, String> {
    let mode = attr_string(n, "mode").unwrap_or_else(|| "nearest".into());
    if !matches!(mode.as_str(), "nearest" | "linear" | "bilinear") {
        return Err(format!(
            "mode '{mode}' is not one of Upsample's modes (nearest, linear)"
        ));
    }
    let scales = if from < 9 {
        let s = match attr_floats_or(n, "scales") {
            Some(s) => s,
            None => {
                // Upsample-1: height_scale/width_scale over NCHW.
                let h = attr_float(n, "height_scale")
                    .ok_or("neither `scales` nor `height_scale`/`width_scale` is given")?;
                let w = attr_float(n, "width_scale").unwrap_or(h);
                vec![1.0, 1.0, h, w]
            }
        };
        if s.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
            return Err(format!("scales {s:?} must be positive, finite numbers"));
        }
        cx.add_f32("scales", &s)
    } else {
        n.input
            .get(1)
            .cloned()
            .ok_or("no `scales` input (opset 9 form)")?
    };
    let mut r = resize(n, &mode, to);
    r.input = if to >= 11 {
        vec![n.input[0].clone(), String::new(), scales]
    } else {
        vec![n.input[0].clone(), scales]
    };
    Ok(r)
}

/// `TensorProto.DataType` of an opset-1 `Cast`'s type name.
fn cast_code(s: &str) -> Option<i64> {
    Some(match s.to_ascii_uppercase().as_str() {
        "FLOAT" => 1,
        "UINT8" => 2,
        "INT8" => 3,
        "UINT16" => 4,
        "INT16" => 5,
        "INT32" => 6,
        "INT64" => 7,
        "STRING" => 8,
        "BOOL" => 9,
        "FLOAT16" => 10,
        "DOUBLE" => 11,
        "UINT32" => 12,
        "UINT64" => 13,
        _ => return None,
    })
}

/// From opset 18 a `Split` with no `split` input states its output count (`num_outputs`).
fn split_count(n: &mut NodeProto, to: i64) -> bool {
    if to < 18
        || n.input.get(1).is_some_and(|s| !s.is_empty())
        || node::attr(n, "num_outputs").is_some()
    {
        return false;
    }
    n.input.truncate(1);
    node::set_attr(n, node::int("num_outputs", n.output.len() as i64));
    true
}
