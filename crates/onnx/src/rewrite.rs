//! Pattern rewrites: a rule matches nodes (domain, op type, opset range, its own conditions)
//! and replaces each with an equivalent subgraph, for the backends it is registered for, like
//! MMDeploy's `FUNCTION_REWRITER.register_rewriter(func_name, backend=...)` but on the ONNX
//! graph rdeploy starts from.
//!
//! Rules live in a [`RewriteRegistry`]; [`RewritePass`] (`rewrite`) applies the rules that
//! match a backend, so the manifest lists one `rewrite` entry with a count per rule. Rules whose
//! replacement needs a newer default-domain opset ([`Rewrite::needs_opset`], e.g. `GridSample`
//! is opset 16) are applied after the model is upgraded ([`crate::OpsetUpgradePass`]). A
//! replacement must produce the node's outputs under the same names with the same types and
//! shapes, so the graph's signature and every recorded shape stay valid; value infos of
//! values that no longer exist are dropped.
//!
//! `rewrite_config` in the deploy config switches rules by name:
//! `rewrite_config = dict(disable=['mmcv_roi_align_to_roi_align'])`; `enable=[...]` turns on
//! rules that are off by default.

use crate::node;
use crate::{Pass, PassContext, PassOutcome};
use rdeploy_core::onnx::proto::{GraphProto, ModelProto, NodeProto, TensorProto};
use rdeploy_core::onnx::{tensor_from_proto, tensor_to_proto};
use rdeploy_core::{DeployConfig, Error, Result, Tensor};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::RangeInclusive;
use std::sync::Arc;

/// Which nodes a rule looks at: domain (`""` is `ai.onnx`), op type, and the range of the
/// model's opset for that domain. [`Rewrite::rewrite`] may still decline a node (returning
/// `None`) on attribute or shape conditions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    /// The node's domain (`""` for the default domain).
    pub domain: String,
    /// The node's op type (`*`: every op of the domain).
    pub op_type: String,
    /// The opset versions (of `domain`'s import) the rule applies to.
    pub opsets: RangeInclusive<i64>,
}

impl Pattern {
    /// A pattern on the default domain at any opset.
    pub fn op(op_type: &str) -> Pattern {
        Pattern {
            domain: String::new(),
            op_type: op_type.to_string(),
            opsets: 1..=i64::MAX,
        }
    }

    /// A pattern on a custom domain at any of its versions.
    pub fn custom(domain: &str, op_type: &str) -> Pattern {
        Pattern {
            domain: domain.to_string(),
            ..Pattern::op(op_type)
        }
    }

    /// Restricts the opset range.
    pub fn opsets(mut self, r: RangeInclusive<i64>) -> Pattern {
        self.opsets = r;
        self
    }

    fn matches(&self, n: &NodeProto, opset_of: &dyn Fn(&str) -> i64) -> bool {
        (self.op_type == "*" || n.op_type() == self.op_type)
            && node::domain(n) == self.domain
            && self.opsets.contains(&opset_of(&self.domain))
    }
}

/// One rewrite rule.
pub trait Rewrite: Send + Sync {
    /// The rule's name (logs, manifest, `rewrite_config`).
    fn name(&self) -> &str;

    /// What the rule matches.
    fn pattern(&self) -> Pattern;

    /// The backends the rule is for; empty means every backend.
    fn backends(&self) -> &[&str] {
        &[]
    }

    /// The default-domain opset the replacement needs, if any.
    fn needs_opset(&self) -> Option<i64> {
        None
    }

    /// Whether the rule runs unless `rewrite_config.disable` names it.
    fn enabled_by_default(&self) -> bool {
        true
    }

    /// One line for `rdeploy rewrite --list` and docs.
    fn description(&self) -> &str;

    /// The replacement for `node`, or `None` to leave it.
    ///
    /// # Errors
    /// [`Error::Model`] when the node matches but is malformed in a way no engine could run.
    fn rewrite(&self, node: &NodeProto, cx: &mut RewriteCx<'_>) -> Result<Option<Vec<NodeProto>>>;
}

/// What a rule can see and add while rewriting one graph.
pub struct RewriteCx<'a> {
    facts: &'a Facts,
    initializers: HashMap<String, usize>,
    graph_initializers: &'a [TensorProto],
    constants: HashMap<String, TensorProto>,
    added: Vec<TensorProto>,
    used: HashSet<String>,
    counter: usize,
    /// The default-domain opset the graph is at (after any upgrade).
    pub opset: i64,
}

impl RewriteCx<'_> {
    /// The rank of a value, when known (declared, inferred, or an initializer's).
    pub fn rank(&self, name: &str) -> Option<usize> {
        self.shape(name).map(|s| s.len())
    }

    /// The dims of a value, when its rank is known (`None` for an unknown dim).
    pub fn shape(&self, name: &str) -> Option<Vec<Option<u64>>> {
        if let Some(s) = self.facts.shapes.get(name) {
            return Some(s.clone());
        }
        let t = self.tensor_proto(name)?;
        Some(
            t.dims
                .iter()
                .map(|d| u64::try_from(*d).ok())
                .collect::<Vec<_>>(),
        )
    }

    fn tensor_proto(&self, name: &str) -> Option<&TensorProto> {
        if let Some(i) = self.initializers.get(name) {
            return self.graph_initializers.get(*i);
        }
        self.constants
            .get(name)
            .or_else(|| self.added.iter().find(|t| t.name() == name))
    }

    /// The value of a constant (an initializer or a `Constant` node's output).
    pub fn constant(&self, name: &str) -> Option<Tensor> {
        self.tensor_proto(name)
            .and_then(|t| tensor_from_proto(t).ok())
    }

    /// Whether `name` is an initializer of the graph (so it may be replaced by a reshaped copy).
    pub fn is_initializer(&self, name: &str) -> bool {
        self.initializers.contains_key(name)
    }

    /// A value name not used anywhere in the model, starting with `hint`.
    pub fn fresh(&mut self, hint: &str) -> String {
        loop {
            self.counter += 1;
            let n = format!("{hint}__rd{}", self.counter);
            if self.used.insert(n.clone()) {
                return n;
            }
        }
    }

    /// Adds `t` as a new initializer and returns its (fresh) name.
    pub fn add_constant(&mut self, hint: &str, t: &Tensor) -> String {
        let name = self.fresh(hint);
        self.added.push(tensor_to_proto(&name, t));
        name
    }

    /// Adds an int64 1-D initializer (axes, shapes, pads as inputs).
    pub fn add_i64(&mut self, hint: &str, v: &[i64]) -> String {
        // A 1-D vector of its own length cannot fail to build.
        let t = Tensor::from_shape_vec(&[v.len()], v.to_vec())
            .unwrap_or_else(|_| Tensor::zeros(rdeploy_core::DType::I64, &[0]));
        self.add_constant(hint, &t)
    }

    /// Adds a float32 1-D initializer.
    pub fn add_f32(&mut self, hint: &str, v: &[f32]) -> String {
        let t = Tensor::from_shape_vec(&[v.len()], v.to_vec())
            .unwrap_or_else(|_| Tensor::zeros(rdeploy_core::DType::F32, &[0]));
        self.add_constant(hint, &t)
    }

    /// Adds a scalar (0-d) initializer holding `v` in the element type of the value `like`
    /// (float32 when unknown): an attribute turned into an input must keep its operand's type.
    ///
    /// # Errors
    /// When `v` cannot be cast to that type.
    pub fn add_scalar_like(&mut self, hint: &str, like: &str, v: f32) -> Result<String> {
        let t = Tensor::from_shape_vec(&[], vec![v])?;
        let dt = match self.elem_type(like) {
            Some(10) => rdeploy_core::DType::F16,
            Some(11) => rdeploy_core::DType::F64,
            Some(6) => rdeploy_core::DType::I32,
            Some(7) => rdeploy_core::DType::I64,
            Some(3) => rdeploy_core::DType::I8,
            Some(2) => rdeploy_core::DType::U8,
            _ => return Ok(self.add_constant(hint, &t)),
        };
        let t = t.cast(dt, rdeploy_core::Cast::Unchecked)?;
        Ok(self.add_constant(hint, &t))
    }

    /// `Unsqueeze(x, axes) -> y` in the form of default-domain `opset` (axes as an input from
    /// 13, an attribute before).
    pub fn unsqueeze(&mut self, x: &str, axes: &[i64], y: &str, opset: i64) -> NodeProto {
        if opset >= 13 {
            let a = self.add_i64("axes", axes);
            node::node("Unsqueeze", "", &[x, &a], &[y], vec![])
        } else {
            node::node("Unsqueeze", "", &[x], &[y], vec![node::ints("axes", axes)])
        }
    }

    /// The ONNX element type of a value (`TensorProto.DataType`), when known.
    pub fn elem_type(&self, name: &str) -> Option<i32> {
        self.facts
            .elem_types
            .get(name)
            .copied()
            .or_else(|| self.tensor_proto(name).and_then(|t| t.data_type))
    }
}

/// Applies `rules` to every node of `model` (subgraphs included), at the model's current
/// opsets. Returns how often each rule fired, by name.
///
/// # Errors
/// The first rule's error.
pub fn apply(
    model: &mut ModelProto,
    rules: &[&dyn Rewrite],
    facts: &Facts,
) -> Result<BTreeMap<String, usize>> {
    let opsets: HashMap<String, i64> = model
        .opset_import
        .iter()
        .map(|o| {
            let d = match o.domain() {
                "ai.onnx" => "",
                d => d,
            };
            (d.to_string(), o.version())
        })
        .collect();
    let opset = opsets.get("").copied().unwrap_or(1);
    let mut used = HashSet::new();
    if let Some(g) = &model.graph {
        collect_names(g, &mut used);
    }
    let mut counts = BTreeMap::new();
    let mut counter = 0;
    if let Some(g) = model.graph.as_mut() {
        apply_graph(
            g,
            rules,
            facts,
            &opsets,
            opset,
            &mut used,
            &mut counter,
            &mut counts,
        )?;
    }
    Ok(counts)
}

#[allow(
    clippy::too_many_arguments,
    reason = "the recursion's state, kept as plain arguments"
)]
fn apply_graph(
    g: &mut GraphProto,
    rules: &[&dyn Rewrite],
    facts: &Facts,
    opsets: &HashMap<String, i64>,
    opset: i64,
    used: &mut HashSet<String>,
    counter: &mut usize,
    counts: &mut BTreeMap<String, usize>,
) -> Result<()> {
    // Subgraphs first: their nodes see the outer scope's values, which are unchanged by name.
    for n in &mut g.node {
        for a in &mut n.attribute {
            if let Some(sub) = a.g.as_mut() {
                apply_graph(sub, rules, facts, opsets, opset, used, counter, counts)?;
            }
            for sub in &mut a.graphs {
                apply_graph(sub, rules, facts, opsets, opset, used, counter, counts)?;
            }
        }
    }
    let opset_of = |d: &str| opsets.get(d).copied().unwrap_or(1);
    let nodes = std::mem::take(&mut g.node);
    let initializers = std::mem::take(&mut g.initializer);
    let constants = nodes
        .iter()
        .filter(|n| n.op_type() == "Constant" && node::domain(n).is_empty())
        .filter_map(|n| {
            let t = node::attr(n, "value")?.t.clone()?;
            Some((n.output.first()?.clone(), t))
        })
        .collect();
    let mut cx = RewriteCx {
        facts,
        initializers: initializers
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name().to_string(), i))
            .collect(),
        graph_initializers: &initializers,
        constants,
        added: Vec::new(),
        used: std::mem::take(used),
        counter: *counter,
        opset,
    };
    let mut out = Vec::with_capacity(nodes.len());
    let mut changed = false;
    for n in nodes {
        let mut replaced = None;
        for r in rules {
            if !r.pattern().matches(&n, &opset_of) {
                continue;
            }
            if let Some(new) = r.rewrite(&n, &mut cx)? {
                *counts.entry(r.name().to_string()).or_insert(0) += 1;
                replaced = Some(new);
                break;
            }
        }
        match replaced {
            Some(new) => {
                changed = true;
                out.extend(new);
            }
            None => out.push(n),
        }
    }
    *used = std::mem::take(&mut cx.used);
    *counter = cx.counter;
    let added = std::mem::take(&mut cx.added);
    drop(cx);
    g.node = out;
    g.initializer = initializers;
    g.initializer.extend(added);
    if changed {
        drop_stale_value_info(g);
    }
    Ok(())
}

/// Removes value infos of values no node, input or initializer produces any more.
fn drop_stale_value_info(g: &mut GraphProto) {
    let produced: HashSet<&str> = g
        .node
        .iter()
        .flat_map(|n| n.output.iter().map(String::as_str))
        .collect();
    let keep: HashSet<String> = g
        .value_info
        .iter()
        .filter(|v| produced.contains(v.name()))
        .map(|v| v.name().to_string())
        .collect();
    g.value_info.retain(|v| keep.contains(v.name()));
}

fn collect_names(g: &GraphProto, used: &mut HashSet<String>) {
    for v in g.input.iter().chain(&g.output).chain(&g.value_info) {
        used.insert(v.name().to_string());
    }
    for t in &g.initializer {
        used.insert(t.name().to_string());
    }
    for n in &g.node {
        used.extend(n.input.iter().cloned());
        used.extend(n.output.iter().cloned());
        for a in &n.attribute {
            if let Some(sub) = &a.g {
                collect_names(sub, used);
            }
            for sub in &a.graphs {
                collect_names(sub, used);
            }
        }
    }
}

/// Rewrite rules by name, with the backends each applies to, and whole-model passes of third
/// parties (a Python function over the serialized model, say) likewise.
#[derive(Clone, Default)]
pub struct RewriteRegistry {
    rules: Vec<Arc<dyn Rewrite>>,
    passes: Vec<(Arc<dyn Pass>, Vec<String>)>,
}

impl RewriteRegistry {
    /// An empty registry.
    pub fn new() -> RewriteRegistry {
        RewriteRegistry::default()
    }

    /// The rules rdeploy ships (see `docs/rewrites.md`).
    pub fn builtin() -> RewriteRegistry {
        let mut r = RewriteRegistry::new();
        for rule in crate::rules::builtin() {
            r.register(rule);
        }
        r
    }

    /// Adds (or replaces, by name) a rule; third parties add theirs here.
    pub fn register(&mut self, rule: Arc<dyn Rewrite>) {
        self.rules.retain(|r| r.name() != rule.name());
        self.rules.push(rule);
    }

    /// Every registered rule.
    pub fn rules(&self) -> &[Arc<dyn Rewrite>] {
        &self.rules
    }

    /// Adds (or replaces, by name) a whole-model pass run for `backends` (empty: every
    /// backend) after the rules; `rewrite_config.disable` switches it off by name.
    pub fn register_pass(&mut self, pass: Arc<dyn Pass>, backends: Vec<String>) {
        self.passes.retain(|(p, _)| p.name() != pass.name());
        self.passes.push((pass, backends));
    }

    /// Removes the whole-model pass named `name`; whether there was one.
    pub fn unregister_pass(&mut self, name: &str) -> bool {
        let n = self.passes.len();
        self.passes.retain(|(p, _)| p.name() != name);
        self.passes.len() != n
    }

    /// Every registered whole-model pass, with its backends.
    pub fn passes(&self) -> &[(Arc<dyn Pass>, Vec<String>)] {
        &self.passes
    }

    /// The whole-model passes for `backend` that `rewrite_config` leaves on.
    ///
    /// # Errors
    /// As [`RewriteRegistry::for_backend`].
    pub fn passes_for_backend(
        &self,
        backend: &str,
        deploy_cfg: &DeployConfig,
    ) -> Result<Vec<Arc<dyn Pass>>> {
        let switches = RewriteSwitches::from_config(deploy_cfg)?;
        Ok(self
            .passes
            .iter()
            .filter(|(_, b)| b.is_empty() || b.iter().any(|b| b == backend))
            .filter(|(p, _)| !switches.disabled(p.name()))
            .map(|(p, _)| p.clone())
            .collect())
    }

    /// The rules for `backend` that `deploy_cfg`'s `rewrite_config` leaves on, in registration
    /// order.
    ///
    /// # Errors
    /// [`Error::Config`] when `rewrite_config` names a rule that does not exist, or is not a
    /// dict of `enable`/`disable` lists.
    pub fn for_backend(
        &self,
        backend: &str,
        deploy_cfg: &DeployConfig,
    ) -> Result<Vec<Arc<dyn Rewrite>>> {
        let switches = RewriteSwitches::from_config(deploy_cfg)?;
        for n in switches.enable.iter().chain(&switches.disable) {
            if !self.rules.iter().any(|r| r.name() == n)
                && !self.passes.iter().any(|(p, _)| p.name() == n)
                && !crate::KNOWN_PASS_NAMES.contains(&n.as_str())
            {
                return Err(Error::config_key(
                    "rewrite_config",
                    format!(
                        "no rewrite or pass is named '{n}'; `rdeploy rewrite --list` lists them: {}",
                        self.rules
                            .iter()
                            .map(|r| r.name())
                            .chain(self.passes.iter().map(|(p, _)| p.name()))
                            .chain(crate::KNOWN_PASS_NAMES.iter().copied())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        for r in &self.rules {
            if switches.enable.iter().any(|n| n == r.name())
                && !(r.backends().is_empty() || r.backends().contains(&backend))
            {
                tracing::warn!(
                    "rewrite_config.enable names '{}', which is for {} only, not {backend}: it does not run",
                    r.name(),
                    r.backends().join(", ")
                );
            }
        }
        Ok(self
            .rules
            .iter()
            .filter(|r| r.backends().is_empty() || r.backends().contains(&backend))
            .filter(|r| {
                let n = r.name().to_string();
                if switches.disable.contains(&n) {
                    false
                } else {
                    r.enabled_by_default() || switches.enable.contains(&n)
                }
            })
            .cloned()
            .collect())
    }
}

/// `rewrite_config = dict(enable=[...], disable=[...], opset_upgrade=dict(target=13))`.
#[derive(Debug, Default)]
pub struct RewriteSwitches {
    /// Names switched on.
    pub enable: Vec<String>,
    /// Names switched off.
    pub disable: Vec<String>,
}

impl RewriteSwitches {
    /// Reads `rewrite_config` (absent: nothing switched).
    ///
    /// # Errors
    /// [`Error::Config`] naming the key for a value of the wrong type.
    pub fn from_config(cfg: &DeployConfig) -> Result<RewriteSwitches> {
        let Some(rc) = cfg.0.get("rewrite_config") else {
            return Ok(RewriteSwitches::default());
        };
        if rc.is_null() {
            return Ok(RewriteSwitches::default());
        }
        let obj = rc.as_object().ok_or_else(|| {
            Error::config_key(
                "rewrite_config",
                "must be a dict, e.g. dict(disable=['opset_upgrade'])",
            )
        })?;
        // A misspelt key would otherwise switch nothing, silently.
        for k in obj.keys() {
            if !["enable", "disable", "opset_upgrade"].contains(&k.as_str()) {
                return Err(Error::config_key(
                    format!("rewrite_config.{k}"),
                    "is not a key rdeploy reads; rewrite_config takes enable, disable and opset_upgrade",
                ));
            }
        }
        match obj.get("opset_upgrade") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Object(o)) => {
                for k in o.keys() {
                    if !["target", "below"].contains(&k.as_str()) {
                        return Err(Error::config_key(
                            format!("rewrite_config.opset_upgrade.{k}"),
                            "is not a key rdeploy reads; opset_upgrade takes target and below",
                        ));
                    }
                }
            }
            Some(other) => {
                return Err(Error::config_key(
                    "rewrite_config.opset_upgrade",
                    format!("must be a dict such as dict(target=13), not {other}"),
                ));
            }
        }
        let list = |key: &str| -> Result<Vec<String>> {
            match obj.get(key) {
                None | Some(serde_json::Value::Null) => Ok(Vec::new()),
                Some(serde_json::Value::Array(a)) => a
                    .iter()
                    .map(|v| {
                        v.as_str().map(str::to_string).ok_or_else(|| {
                            Error::config_key(
                                format!("rewrite_config.{key}"),
                                "must be a list of pass names (strings)",
                            )
                        })
                    })
                    .collect(),
                Some(_) => Err(Error::config_key(
                    format!("rewrite_config.{key}"),
                    "must be a list of pass names (strings)",
                )),
            }
        };
        Ok(RewriteSwitches {
            enable: list("enable")?,
            disable: list("disable")?,
        })
    }

    /// Whether `name` is switched off.
    pub fn disabled(&self, name: &str) -> bool {
        self.disable.iter().any(|n| n == name)
    }
}

/// The `rewrite` pass: applies the rules a backend's registry selection holds, upgrading the
/// model first when a rule that matched needs a newer opset.
pub struct RewritePass {
    /// The rules, as [`RewriteRegistry::for_backend`] selected them.
    pub rules: Vec<Arc<dyn Rewrite>>,
}

impl Pass for RewritePass {
    fn name(&self) -> &str {
        "rewrite"
    }

    fn identity(&self) -> String {
        let names: Vec<&str> = self.rules.iter().map(|r| r.name()).collect();
        format!("rewrite[{}]", names.join(","))
    }

    fn is_noop(&self, model: &ModelProto) -> bool {
        let ops: HashSet<(&str, &str)> = model
            .graph
            .iter()
            .flat_map(all_nodes)
            .map(|n| (node::domain(n), n.op_type()))
            .collect();
        !self.rules.iter().any(|r| {
            let p = r.pattern();
            ops.contains(&(p.domain.as_str(), p.op_type.as_str()))
                || (p.op_type == "*" && ops.iter().any(|(d, _)| *d == p.domain))
        })
    }

    fn run(&self, model: &mut ModelProto, cx: &PassContext<'_>) -> Result<PassOutcome> {
        let relocate = |e: Error| match e {
            Error::Model { path, msg, source } if path.as_os_str() == "<graph>" => Error::Model {
                path: cx.model_path.to_path_buf(),
                msg,
                source,
            },
            other => other,
        };
        let mut out = PassOutcome::default();
        let current = crate::upgrade::default_opset(model);
        // Rules whose replacement needs a newer opset run only when the model may be upgraded
        // (`rewrite_config.disable=['opset_upgrade']` keeps its opset).
        let may_upgrade = !RewriteSwitches::from_config(cx.deploy_cfg)?.disabled("opset_upgrade");
        let rules: Vec<&dyn Rewrite> = self
            .rules
            .iter()
            .map(|r| r.as_ref())
            .filter(|r| may_upgrade || r.needs_opset().is_none_or(|n| n <= current))
            .collect();
        // A dry run on a copy: which rules fire (they may decline on attributes), and so
        // whether an upgrade is needed at all.
        let mut trial = model.clone();
        let facts = Facts::of(model);
        let fired = apply(&mut trial, &rules, &facts).map_err(relocate)?;
        if fired.is_empty() {
            return Ok(out);
        }
        let need = rules
            .iter()
            .filter(|r| fired.contains_key(r.name()))
            .filter_map(|r| r.needs_opset())
            .max();
        let counts = match need {
            Some(need) if need > current => {
                let up = crate::OpsetUpgradePass {
                    below: None,
                    target: need,
                };
                up.run(model, cx)?;
                out.notes.push(format!(
                    "rewrite: the model was upgraded from opset {current} to {need} for {}",
                    rules
                        .iter()
                        .filter(|r| fired.contains_key(r.name()) && r.needs_opset() == Some(need))
                        .map(|r| r.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                out.details.insert("upgraded_to_opset".into(), need.into());
                let facts = Facts::of(model);
                apply(model, &rules, &facts).map_err(relocate)?
            }
            _ => {
                *model = trial;
                fired
            }
        };
        for (name, n) in &counts {
            out.notes
                .push(format!("rewrite: {name} replaced {n} node(s)"));
            out.details.insert(name.clone(), (*n).into());
        }
        out.changed = !counts.is_empty();
        Ok(out)
    }
}

/// Every node of a graph and its subgraphs.
pub(crate) fn all_nodes(g: &GraphProto) -> Vec<&NodeProto> {
    let mut v = Vec::new();
    for n in &g.node {
        v.push(n);
        for a in &n.attribute {
            if let Some(sub) = &a.g {
                v.extend(all_nodes(sub));
            }
            for sub in &a.graphs {
                v.extend(all_nodes(sub));
            }
        }
    }
    v
}

/// What is known of a model's values: dims (`None` for an unknown dim) and ONNX element types,
/// from its declarations, its initializers and tract's analysis.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// Dims by value name.
    pub shapes: HashMap<String, Vec<Option<u64>>>,
    /// `TensorProto.DataType` by value name.
    pub elem_types: HashMap<String, i32>,
}

impl Facts {
    /// The facts of `model`: the declared shapes of graph inputs and initializers (they define
    /// the values), tract's analysis, and the declared value infos and outputs where the
    /// analysis found nothing (an exporter's intermediate shapes can be stale).
    pub fn of(model: &ModelProto) -> Facts {
        let d = declared(model);
        let mut f = d.clone();
        let inferred = crate::shapes::infer_values(model);
        f.shapes.extend(inferred.shapes);
        f.elem_types.extend(inferred.elem_types);
        if let Some(g) = &model.graph {
            for name in g
                .input
                .iter()
                .map(|v| v.name())
                .chain(g.initializer.iter().map(|t| t.name()))
            {
                if let Some(s) = d.shapes.get(name) {
                    f.shapes.insert(name.to_string(), s.clone());
                }
                if let Some(e) = d.elem_types.get(name) {
                    f.elem_types.insert(name.to_string(), *e);
                }
            }
        }
        f
    }
}

/// Shapes and types the model declares (inputs, outputs, value infos, initializers).
pub(crate) fn declared(model: &ModelProto) -> Facts {
    use rdeploy_core::onnx::proto::{tensor_shape_proto::dimension::Value as DV, type_proto};
    let mut f = Facts::default();
    let Some(g) = &model.graph else {
        return f;
    };
    for v in g.input.iter().chain(&g.output).chain(&g.value_info) {
        let Some(type_proto::Value::TensorType(tt)) =
            v.r#type.as_ref().and_then(|t| t.value.as_ref())
        else {
            continue;
        };
        if let Some(e) = tt.elem_type.filter(|e| *e != 0) {
            f.elem_types.insert(v.name().to_string(), e);
        }
        let Some(s) = &tt.shape else { continue };
        f.shapes.insert(
            v.name().to_string(),
            s.dim
                .iter()
                .map(|d| match d.value {
                    Some(DV::DimValue(n)) => u64::try_from(n).ok(),
                    _ => None,
                })
                .collect(),
        );
    }
    for t in &g.initializer {
        f.shapes.insert(
            t.name().to_string(),
            t.dims.iter().map(|d| u64::try_from(*d).ok()).collect(),
        );
        if let Some(e) = t.data_type {
            f.elem_types.insert(t.name().to_string(), e);
        }
    }
    f
}
