//! The ONNX graph and every transform rdeploy makes on it, each a named [`Pass`].
//!
//! Nothing else in rdeploy edits a graph: the deploy pipeline (in the `rdeploy` facade) runs
//! the `onnx_config` pass to make the IR (`end2end.onnx`), then the passes the backend asks for
//! ([`rdeploy_core::BackendManager::ir_passes`], e.g. `fp16` for ONNX Runtime's
//! `precision='fp16'`). Every pass run is logged and returned as a [`PassRecord`], which the
//! manifest lists.
//!
//! ```
//! use rdeploy_core::DeployConfig;
//! use rdeploy_onnx::{PassRegistry, PassRequest};
//!
//! let passes = PassRegistry::builtin();
//! assert!(passes.names().contains(&"fp16"));
//! let cfg = DeployConfig(serde_json::json!({"backend_config": {"type": "onnxruntime"}}));
//! let fp16 = passes.resolve(&PassRequest::new("fp16"), &cfg)?;
//! assert_eq!(fp16.name(), "fp16");
//! assert!(passes.resolve(&PassRequest::new("nope"), &cfg).is_err());
//! # Ok::<(), rdeploy_core::Error>(())
//! ```
//!
//! Passes: [`NormalizePass`] (`normalize`: trailing empty optional inputs dropped, outputs made
//! by a lone `Identity`/`Dropout` produced directly), [`OnnxConfigPass`] (`onnx_config`: names,
//! `input_shape`, `dynamic_axes`, static shapes from `model_inputs`) and [`Fp16Pass`] (`fp16`:
//! float32 computation to float16).
//!
//! Design: a pass is a value with a name and a `run` over the protobuf, so that rewrites,
//! normalisations and opset upgrades added later share logging, timing and the manifest entry;
//! backends name the passes they need and never link this crate (they depend on core alone).

pub mod build;
pub mod edit;
pub mod flops;
pub mod fold_bn;
pub mod fp16;
pub mod node;
mod normalize;
mod onnx_config;
pub mod rewrite;
mod rules;
pub mod shapes;
pub mod simplify;
pub mod upgrade;

pub use fold_bn::FoldBatchNormPass;
pub use fp16::Fp16Pass;
pub use normalize::NormalizePass;
pub use onnx_config::OnnxConfigPass;
pub use rewrite::{Pattern, Rewrite, RewriteCx, RewritePass, RewriteRegistry};
pub use simplify::SimplifyPass;
pub use upgrade::OpsetUpgradePass;

/// Names of passes (besides rewrite rules) that `rewrite_config.enable`/`disable` may name.
pub const KNOWN_PASS_NAMES: &[&str] = &["opset_upgrade", "rewrite", "simplify", "fold_batchnorm"];
pub use rdeploy_core::PassRequest;

use rdeploy_core::onnx::proto::ModelProto;
use rdeploy_core::{DeployConfig, Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// What a pass sees besides the model.
#[derive(Clone, Copy, Debug)]
pub struct PassContext<'a> {
    /// The model file the graph came from (for error messages).
    pub model_path: &'a Path,
    /// The merged deploy config.
    pub deploy_cfg: &'a DeployConfig,
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PassOutcome {
    /// Whether the graph changed.
    pub changed: bool,
    /// Lines worth telling the user (renamed tensors, nodes kept in float32...).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Figures of the pass (counts), for the manifest.
    #[serde(default)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

/// A graph transform with a name.
pub trait Pass: Send + Sync {
    /// The name used in logs, the manifest and configs (`onnx_config`, `fp16`).
    fn name(&self) -> &str;

    /// Transforms `model` in place.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key whose value does not fit the model, or
    /// [`Error::Model`] naming the model file when the graph cannot be transformed.
    fn run(&self, model: &mut ModelProto, cx: &PassContext<'_>) -> Result<PassOutcome>;

    /// What identifies the pass's behaviour in a work dir's cache key: its name by default; a
    /// pass made of parts (the rewrite rules) names them too.
    fn identity(&self) -> String {
        self.name().to_string()
    }

    /// Whether the pass would certainly leave `model` unchanged (a cheap look, so callers can
    /// skip copying the model); `false` when unsure.
    fn is_noop(&self, model: &ModelProto) -> bool {
        let _ = model;
        false
    }
}

/// The manifest's entry for one pass run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PassRecord {
    /// The pass's name.
    pub name: String,
    /// Where it ran: `ir` (making `end2end.onnx`) or `backend` (asked for by the backend).
    pub stage: String,
    /// What it did.
    #[serde(flatten)]
    pub outcome: PassOutcome,
    /// Wall time of the pass, in milliseconds.
    pub ms: f64,
}

/// Runs passes in order over `model`, logging each, and returns their records. In the
/// `backend` stage a pass must keep the graph's input and output names (the manifest's
/// signature), so one that renames or drops them fails here, named.
///
/// # Errors
/// The first pass's error; the model is then partly transformed and must be dropped.
pub fn run_passes(
    model: &mut ModelProto,
    passes: &[Arc<dyn Pass>],
    stage: &str,
    cx: &PassContext<'_>,
) -> Result<Vec<PassRecord>> {
    let mut records = Vec::with_capacity(passes.len());
    let names = |m: &ModelProto| -> (Vec<String>, Vec<String>) {
        let g = m.graph.as_ref();
        let inits: std::collections::HashSet<&str> = g
            .iter()
            .flat_map(|g| &g.initializer)
            .map(|t| t.name())
            .collect();
        (
            g.iter()
                .flat_map(|g| &g.input)
                .map(|v| v.name())
                .filter(|n| !inits.contains(n))
                .map(str::to_string)
                .collect(),
            g.iter()
                .flat_map(|g| &g.output)
                .map(|v| v.name().to_string())
                .collect(),
        )
    };
    let signature = (stage == "backend").then(|| names(model));
    for p in passes {
        let started = std::time::Instant::now();
        let outcome = p.run(model, cx)?;
        if let Some(before) = &signature {
            let after = names(model);
            if &after != before {
                return Err(Error::model(
                    cx.model_path,
                    format!(
                        "the graph pass '{}' changed the model's inputs/outputs from {:?} -> {:?} to {:?} -> {:?}; a pass must keep the names the deploy's signature uses",
                        p.name(),
                        before.0,
                        before.1,
                        after.0,
                        after.1
                    ),
                ));
            }
        }
        let ms = started.elapsed().as_secs_f64() * 1e3;
        tracing::info!(
            "pass {} ({stage}): {}{}",
            p.name(),
            if outcome.changed {
                "changed the graph"
            } else {
                "nothing to do"
            },
            if outcome.details.is_empty() {
                String::new()
            } else {
                format!(" {}", serde_json::Value::Object(outcome.details.clone()))
            }
        );
        for n in &outcome.notes {
            tracing::debug!("pass {}: {n}", p.name());
        }
        records.push(PassRecord {
            name: p.name().to_string(),
            stage: stage.to_string(),
            outcome,
            ms,
        });
    }
    Ok(records)
}

/// Builds a pass from its request and the deploy config.
pub type PassFactory = fn(&PassRequest, &DeployConfig) -> Result<Arc<dyn Pass>>;

/// Passes by name, for backends to ask for (like MMDeploy's rewriter registry).
#[derive(Clone)]
pub struct PassRegistry {
    factories: Vec<(&'static str, PassFactory)>,
}

impl PassRegistry {
    /// The passes rdeploy ships that a backend can ask for by name.
    pub fn builtin() -> PassRegistry {
        PassRegistry {
            factories: vec![
                ("fp16", |req, cfg| {
                    Ok(Arc::new(Fp16Pass::from_request(req, cfg)?))
                }),
                ("opset_upgrade", |req, cfg| {
                    Ok(Arc::new(OpsetUpgradePass::from_request(req, cfg)?))
                }),
                ("simplify", |_, _| Ok(Arc::new(SimplifyPass))),
                ("fold_batchnorm", |_, _| Ok(Arc::new(FoldBatchNormPass))),
            ],
        }
    }

    /// Adds (or replaces) a pass by name; third parties add theirs here.
    pub fn register(&mut self, name: &'static str, factory: PassFactory) {
        self.factories.retain(|(n, _)| *n != name);
        self.factories.push((name, factory));
    }

    /// The registered names.
    pub fn names(&self) -> Vec<&'static str> {
        self.factories.iter().map(|(n, _)| *n).collect()
    }

    /// The pass a request names, configured.
    ///
    /// # Errors
    /// [`Error::Backend`] for a name no pass has (a backend asked for a pass this build lacks);
    /// the factory's error for bad options.
    pub fn resolve(&self, req: &PassRequest, cfg: &DeployConfig) -> Result<Arc<dyn Pass>> {
        let (_, f) = self
            .factories
            .iter()
            .find(|(n, _)| *n == req.name)
            .ok_or_else(|| {
                Error::backend(
                    "rdeploy",
                    format!(
                        "a graph pass named '{}' was asked for, but this build has only: {}",
                        req.name,
                        self.names().join(", ")
                    ),
                )
            })?;
        f(req, cfg)
    }
}

impl Default for PassRegistry {
    fn default() -> Self {
        Self::builtin()
    }
}

#[cfg(test)]
mod testutil;
